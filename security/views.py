from datetime import timedelta
from functools import cached_property

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Exists, OuterRef
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views.generic import FormView, ListView, TemplateView, View

from accounts.mixins import AccountViewMixin
from accounts.paging import Paginator
from accounts.params import uuid_or_404
from members.models import Membership

from . import support, throttle
from .activity import event_record
from .forms import SecurityPolicyForm, SupportRequestForm
from .middleware import SECOND_FACTORS
from .models import SecurityEvent, SupportAccess
from .policy import effective_policy
from .services import mfa_reset, policy_update
from .sessions import device_name, end_other_sessions, end_session, sessions_of


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's reset-by-email link; a successful reset is recorded and lifts the address's sign-in lockout
    (whoever reads the mailbox has proved more than a password would)."""

    def form_valid(self, form):
        response = super().form_valid(form)
        throttle.clear(email=self.user.email)
        event_record(kind=SecurityEvent.Kind.PASSWORD_RESET, request=self.request, user=self.user)
        return response


class ActivityView(LoginRequiredMixin, ListView):
    """The signed-in person's login activity over the last SECURITY_ACTIVITY_DAYS: sign-ins (and attempts on
    their address), password and email changes, factors added or removed. Only their own events."""

    template_name = "security/activity.html"
    paginate_by = 50

    def get_queryset(self):
        since = timezone.now() - timedelta(days=settings.SECURITY_ACTIVITY_DAYS)
        return (SecurityEvent.objects.filter(user=self.request.user, created_at__gte=since)
                .select_related("by").order_by("-created_at", "-pk"))

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "days": settings.SECURITY_ACTIVITY_DAYS}


class SessionListView(LoginRequiredMixin, TemplateView):
    """Where the person is signed in: browser and device, IP, sign-in time and last activity, this session
    marked. POST ``session`` (an id of one of their other sessions) signs that one out; ``all_others`` every
    other one. A signed-out session finds itself signed out on its next request. Someone else's session id
    is a 404."""

    template_name = "security/sessions.html"

    def get_context_data(self, **kwargs):
        sessions = sessions_of(self.request)
        return {**super().get_context_data(**kwargs), "sessions": sessions,
                "others": sum(1 for s in sessions if not s.is_this_one)}

    def post(self, request, *args, **kwargs):
        if request.POST.get("all_others"):
            ended = end_other_sessions(request)
            if ended:
                event_record(kind=SecurityEvent.Kind.SESSION_REVOKED, request=request, user=request.user,
                             detail=f"{ended} other session{'s' if ended != 1 else ''}")
            messages.success(request, f"Signed out {ended} other session{'s' if ended != 1 else ''}."
                             if ended else "There were no other sessions to sign out.")
            return redirect("usersessions_list")
        try:
            session_id = int(request.POST.get("session", ""))
        except ValueError:
            raise Http404("No such session.") from None
        ended = end_session(request, session_id)
        if ended is None:
            raise Http404("No such session.")
        device = device_name(ended.user_agent)
        event_record(kind=SecurityEvent.Kind.SESSION_REVOKED, request=request, user=request.user,
                     detail=f"{device}, {ended.ip}")
        messages.success(request, f"Signed out the session on {device} ({ended.ip}).")
        return redirect("usersessions_list")


class SecurityPolicyView(AccountViewMixin, FormView):
    """Settings → Security: the policy that applies here (the strictest of this account's and its ancestors'),
    where each rule comes from, and this account's own policy (edited with settings management). Owners see
    who has a second factor and can reset a member's."""

    template_name = "security/policy.html"
    form_class = SecurityPolicyForm
    permission_required = "view_settings"
    members_per_page = 25

    def get_initial(self):
        return SecurityPolicyForm.initial_from(self.policy.own)

    @cached_property
    def policy(self):
        found = getattr(self.request, "security_policy", None)  # the middleware's, for this account
        return found if found is not None and found.account.pk == self.account.pk else effective_policy(self.account)

    def post(self, request, *args, **kwargs):
        if not self.access.has("manage_settings"):
            raise PermissionDenied("Your role cannot edit this account's security policy.")
        if self.access.is_delegated:
            raise PermissionDenied("The account's own Owners and Admins set its security policy.")
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        try:
            policy_update(account=self.account, by=self.request.user, request=self.request, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
            return self.form_invalid(form)
        messages.success(self.request, "Security policy saved.")
        return redirect("security:policy", account_id=self.account.public_id)

    def _source(self, account) -> str:
        """Who imposes a rule, said so the reader may read it (R6)."""
        if account.pk == self.account.pk:
            return "this account"
        return account.name if self.access.reaches(account) else "an account above this one"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        policy = self.policy
        rules = []
        scope = policy.mfa_scope
        if scope:
            deadlines = [(role, policy.mfa_for_role(role)) for role in ("owner", "member")]
            rules.append(("Two-factor authentication", f"required for {scope.value.label.lower()}",
                          self._source(scope.source), [r for _, r in deadlines if r]))
        for label, rule, unit in (("Sign out after inactivity", policy.idle_timeout, "minutes"),
                                  ("Sign out after sign-in", policy.session_lifetime, "hours")):
            if rule:
                rules.append((label, f"{rule.value} {unit}", self._source(rule.source), []))
        for rule in policy.domain_rules:
            rules.append(("Invitations only to", ", ".join(rule.value), self._source(rule.source), []))
        ctx.update(rules=rules, own=policy.own,
                   may_edit=self.access.has("manage_settings") and not self.access.is_delegated,
                   may_reset=self.access.role.id == "owner" and not self.access.is_delegated
                   and self.access.has("manage_members"))
        if self.access.has("view_members"):
            page = Paginator(members_with_factors(self.account), self.members_per_page).get_page(
                self.request.GET.get("page"))
            ctx.update(members_page=page, me=self.request.user.pk,
                       page_obj=page, paginator=page.paginator, is_paginated=page.has_other_pages())
        return ctx


def members_with_factors(account):
    """The account's own members, each with whether they have a second factor (one query a page)."""
    factors = Authenticator.objects.filter(user=OuterRef("user_id"), type__in=SECOND_FACTORS)
    return (Membership.objects.filter(account=account).select_related("user")
            .annotate(has_second_factor=Exists(factors)).order_by("user__email", "pk"))


class MfaResetView(AccountViewMixin, View):
    """An Owner resets a member's second factor (POST only); ``security.services.mfa_reset`` decides who may."""

    permission_required = "manage_members"
    http_method_names = ["post"]

    def check_permission(self) -> None:
        super().check_permission()
        if self.access.role.id != "owner" or self.access.is_delegated:
            raise PermissionDenied("Only an Owner of this account can reset someone's second factor.")

    def post(self, request, *args, **kwargs):
        membership = get_object_or_404(Membership.objects.select_related("user", "account"), account=self.account,
                                       public_id=kwargs["membership_id"])
        try:
            removed = mfa_reset(membership=membership, by=request.user, request=request)
        except (ValidationError, PermissionDenied) as exc:
            messages.error(request, " ".join(getattr(exc, "messages", None) or [str(exc)]))
        else:
            messages.success(request, f"Second factor of {membership.user.email} reset ({removed} removed); "
                                      "they were told by email.")
        return redirect("security:policy", account_id=self.account.public_id)


class SupportAccessView(AccountViewMixin, TemplateView):
    """Settings → Support access: platform staff's requests for this account, the access active now and past
    ones. The Owner approves (choosing whether subaccounts are included), declines or ends it (POST ``action``
    and ``support``, the request's public id; another account's is a 404)."""

    template_name = "security/support.html"
    permission_required = "view_settings"
    shown = 20

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        rows = list(SupportAccess.objects.filter(account=self.account).select_related("requested_by", "decided_by")
                    .order_by("-created_at", "-pk")[:self.shown])
        ctx.update(pending=[r for r in rows if r.status == SupportAccess.Status.REQUESTED],
                   active=[r for r in rows if r.is_active],
                   past=[r for r in rows if r.status != SupportAccess.Status.REQUESTED and not r.is_active],
                   may_decide=support.may_decide(self.request.user, self.account),
                   has_subaccounts=self.account.numchild > 0)
        return ctx

    def post(self, request, *args, **kwargs):
        target = get_object_or_404(SupportAccess, account=self.account,
                                   public_id=uuid_or_404(request.POST.get("support"), "No such request."))
        action = request.POST.get("action")
        try:
            if action in ("approve", "decline"):
                support.support_decide(support=target, approve=action == "approve", by=request.user, request=request,
                                       include_subaccounts=request.POST.get("include_subaccounts") == "on")
            elif action == "end":
                support.support_end(support=target, by=request.user, request=request)
            else:
                raise Http404("No such action.")
        except (ValidationError, PermissionDenied) as exc:
            messages.error(request, " ".join(getattr(exc, "messages", None) or [str(exc)]))
        else:
            messages.success(request, {"approve": "Support access approved.", "decline": "Request declined.",
                                       "end": "Support access ended."}[action])
        return redirect("security:support", account_id=self.account.public_id)


class StaffSupportView(LoginRequiredMixin, FormView):
    """For platform staff: ask an account's Owner for support access, and see one's requests (links to the
    accounts while access is active). Anyone else gets a 404: the page does not exist for them."""

    template_name = "security/staff_support.html"
    form_class = SupportRequestForm

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not request.user.is_staff:
            raise Http404("No such page.")
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["mine"] = list(SupportAccess.objects.filter(requested_by=self.request.user).select_related("account")
                           .order_by("-created_at", "-pk")[:50])
        return ctx

    def form_valid(self, form):
        data = form.cleaned_data
        try:
            support.support_request(account=data["account"], by=self.request.user, level=data["level"],
                                    reason=data["reason"], hours=data["hours"], request=self.request)
        except (ValidationError, PermissionDenied) as exc:
            form.add_error(None, " ".join(getattr(exc, "messages", None) or [str(exc)]))
            return self.form_invalid(form)
        messages.success(self.request, f"Asked the Owner of {data['account'].name}. Nothing is reachable until "
                                       "they approve.")
        return redirect("security-staff-support")
