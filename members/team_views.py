"""Settings → Members: the team of the current account, invitations, roles, removal, ownership."""

from django.contrib import messages
from django.contrib.auth import login, logout
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.views.generic import FormView, ListView, TemplateView, View

from accounts.baked import Baked
from accounts.mixins import AccountViewMixin
from accounts.params import search_text
from accounts.sorting import Column, Sorting

from . import invitations as inv
from .forms import AgencyChoiceForm, BulkInviteForm, InvitationSignupForm, InviteForm, RoleForm, TransferOwnershipForm
from .grants import assignable_roles
from .models import Invitation, Membership, User
from .roles import ROLES, RoleId
from .services import descendant_memberships, membership_change_role, membership_remove, ownership_transfer


def _members_url(account):
    return reverse("members:list", kwargs={"account_id": account.public_id})


def _error_text(exc) -> str:
    return " ".join(getattr(exc, "messages", None) or [str(exc)])


MEMBER_SORTS = Sorting(
    Column("name", "user__name", "user__email"),
    Column("email", "user__email"),
    Column("joined", "created_at", descending_first=True),
    Column("active", F("last_active_at").asc(nulls_first=True), descending_first=True),  # never: oldest
    default="name",
)


def _members_query(account_id, text, *, search, sort):
    qs = Membership.objects.filter(account_id=account_id).select_related("user", "via_grant__agency", "agency_account")
    if search:
        qs = qs.filter(Q(user__email__icontains=text) | Q(user__name__icontains=text))
    return qs.order_by(*MEMBER_SORTS.parse({MEMBER_SORTS.param: sort}).order_by)


_members = Baked(_members_query)  # the Members page's count and page: compiled once (``accounts.baked``)
# and for those who manage members, the pending invitations and the memberships inherited from above
_pending = Baked(lambda account_id: Invitation.objects.filter(
    account_id=account_id, status=Invitation.Status.PENDING).select_related("invited_by").order_by("-created_at")[:100])
_inherited = Baked(lambda ancestor_ids: Membership.objects.filter(account_id__in=ancestor_ids)
                   .select_related("user", "account").order_by("account__depth", "user__email")[:100])


class MemberListView(AccountViewMixin, ListView):
    permission_required = "view_members"
    template_name = "members/member_list.html"
    paginate_by = 25

    def get_queryset(self):
        self.q = search_text(self.request.GET)
        self.sort = MEMBER_SORTS.parse(self.request.GET)
        return _members.pages(self.account.pk, self.q, search=bool(self.q), sort=self.sort.value)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        can_manage = self.access.has("manage_members")
        role = self.access.role
        ctx.update(
            q=self.q, sort=self.sort, extra_query=self.sort.extra_query,
            me=self.access.direct_membership,
            assignable=(assignable := assignable_roles(self.access) if can_manage else []),
            assignable_ids=[r.id for r in assignable],
            my_role=role,
            invite_form=InviteForm(roles=invite_roles(self.access, self.account, assignable)) if can_manage else None,
            # R6: an ancestor the reader does not reach themselves is not named
            reach_depth=min(m.account.depth for m in self.access.memberships),
        )
        if can_manage:
            ctx["pending"] = _pending(self.account.pk)
            ancestors = [a.pk for a in self.access.ancestors]
            ctx["inherited"] = _inherited(ancestors) if ancestors else []
        return ctx


class AccessListView(AccountViewMixin, ListView):
    """Who has access here, and why: every person who reaches the account, once, with how, their effective
    level per category and what caps it (``members.who``). ``?format=csv`` downloads every row."""

    permission_required = "view_members"
    template_name = "members/access_list.html"
    paginate_by = 50

    def get_queryset(self):
        from .who import HOW, people_reaching

        self.q = search_text(self.request.GET)
        self.how = self.request.GET.get("how", "")
        if self.how not in HOW:
            self.how = ""
        self.lineage = [*self.access.ancestors, self.account]
        return people_reaching(self.account, self.lineage, how=self.how, q=self.q)

    def render_to_response(self, context, **kwargs):
        if self.request.GET.get("format") == "csv":
            return self._csv()
        return super().render_to_response(context, **kwargs)

    def get_context_data(self, **kwargs):
        from accounts.permissions import CATEGORIES

        from .who import HOW, entries_for

        ctx = super().get_context_data(**kwargs)
        ctx.update(q=self.q, how=self.how, hows=HOW, categories=CATEGORIES,
                   entries=entries_for(list(ctx["object_list"]), self.account, self.lineage,
                                       reader_reaches=self.access.reaches),
                   may_govern_agency=self.account.is_root() and self.access.may_govern_agency)
        return ctx

    def _csv(self):
        from accounts.downloads import csv_download
        from accounts.permissions import CATEGORIES

        from .who import entries_for

        people = list(self.get_queryset()[:5000])  # the page says so when there are more
        rows = [["Email", "Name", "How", "Role", "Through", "Until", *[c.label for c in CATEGORIES], "Capped by"]]
        for start in range(0, len(people), 500):
            for e in entries_for(people[start:start + 500], self.account, self.lineage,
                                 reader_reaches=self.access.reaches):
                rows.append([e.user.email, e.user.name, e.how_label, e.role, e.agency or e.source,
                             e.until.date().isoformat() if e.until else ("until revoked" if e.how == "agency" else ""),
                             *[e.levels.get(c.key).label for c in CATEGORIES],
                             "; ".join(f"{c.category}: {c.level.label} ({c.cause})" for c in e.caps)])
        return csv_download(f"access-{self.account.name}.csv", rows)


def invite_roles(access, account, assignable=None):
    """Roles the person may invite with (R1); Agency Admin (it brings an agency in) only for those who govern
    agency access in an independent account. ``assignable``: ``assignable_roles(access)`` when already known."""
    roles = list(assignable if assignable is not None else assignable_roles(access))
    if account.is_root() and access.may_govern_agency:
        roles.append(ROLES[RoleId.AGENCY_ADMIN])
    return roles


class InviteView(AccountViewMixin, FormView):
    permission_required = "manage_members"
    template_name = "members/invite.html"
    form_class = InviteForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "roles": invite_roles(self.access, self.account)}

    def form_valid(self, form):
        data = form.cleaned_data
        try:
            invitation = inv.invitation_create(account=self.account, email=data["email"], role=data["role"],
                                               is_agency=data["role"] == "agency_admin", by=self.request.user,
                                               request=self.request)
        except (ValidationError, PermissionDenied) as exc:
            form.add_error(None, _error_text(exc))
            return self.form_invalid(form)
        days = (invitation.expires_at - invitation.created_at).days
        messages.success(self.request, f"Invitation sent to {invitation.email}. The link expires in "
                                       f"{days} day{pluralize(days)}.")
        return redirect(_members_url(self.account))


class BulkInviteView(AccountViewMixin, FormView):
    permission_required = "manage_members"
    template_name = "members/invite_bulk.html"
    form_class = BulkInviteForm

    def get_form_kwargs(self):
        roles = [r for r in invite_roles(self.access, self.account) if r.id != "agency_admin"]
        return {**super().get_form_kwargs(), "roles": roles}

    def form_valid(self, form):
        try:
            created = inv.invitations_create_bulk(account=self.account, text=form.cleaned_data["emails"],
                                                  role=form.cleaned_data["role"], by=self.request.user,
                                                  request=self.request)
        except inv.BulkInviteError as exc:
            return self.render_to_response(self.get_context_data(form=form, line_errors=exc.line_errors))
        except (ValidationError, PermissionDenied) as exc:
            form.add_error(None, _error_text(exc))
            return self.form_invalid(form)
        messages.success(self.request, f"{len(created)} invitation{pluralize(len(created))} sent.")
        return redirect(_members_url(self.account))


class MembershipActionMixin(AccountViewMixin):
    def get_membership(self) -> Membership:
        return get_object_or_404(Membership.objects.select_related("user", "account"), account=self.account,
                                 public_id=self.kwargs["membership_id"])


class RoleChangeView(MembershipActionMixin, View):
    permission_required = "manage_members"
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        membership = self.get_membership()
        form = RoleForm(request.POST, roles=assignable_roles(self.access))
        if not form.is_valid():
            messages.error(request, "Choose a role you are allowed to give.")
            return redirect(_members_url(self.account))
        try:
            membership_change_role(membership=membership, role=form.cleaned_data["role"], by=request.user,
                                   request=request)
        except (ValidationError, PermissionDenied) as exc:
            messages.error(request, _error_text(exc))
        else:
            messages.success(request, f"{membership.user.email} is now {membership.get_role_display()}.")
        return redirect(_members_url(self.account))


def _selected_below(request, membership):
    """The memberships below that the confirmation offered and the person left ticked (R4)."""
    below = {str(m.public_id): m for m in descendant_memberships(membership)}
    return [below[i] for i in request.POST.getlist("also") if i in below]


class RemoveMemberView(MembershipActionMixin, TemplateView):
    """GET asks for confirmation and lists the person's memberships in subaccounts below, all selected (R4);
    POST removes. Access ends on the person's next request."""

    permission_required = "manage_members"
    template_name = "members/confirm_remove.html"

    def get_context_data(self, **kwargs):
        membership = self.get_membership()
        return super().get_context_data(membership=membership, below=list(descendant_memberships(membership)[:500]),
                                        **kwargs)

    def post(self, request, *args, **kwargs):
        membership = self.get_membership()
        try:
            removed = membership_remove(membership=membership, by=request.user,
                                        also=_selected_below(request, membership), request=request)
        except (ValidationError, PermissionDenied) as exc:
            messages.error(request, _error_text(exc))
        else:
            extra = f" and {len(removed) - 1} subaccount(s) below it" if len(removed) > 1 else ""
            messages.success(request, f"{membership.user.email} was removed from {self.account.name}{extra}.")
        return redirect(_members_url(self.account))


class LeaveView(AccountViewMixin, TemplateView):
    template_name = "members/confirm_leave.html"

    def get_context_data(self, **kwargs):
        membership = self.access.direct_membership
        below = list(descendant_memberships(membership)[:500]) if membership else []
        return super().get_context_data(below=below, **kwargs)

    def post(self, request, *args, **kwargs):
        membership = self.access.direct_membership
        if membership is None:
            messages.error(request, "You reach this account through a parent account; leave that one instead.")
            return redirect(self.account)
        try:
            membership_remove(membership=membership, by=request.user, also=_selected_below(request, membership),
                              request=request)
        except ValidationError as exc:
            messages.error(request, _error_text(exc))
            return redirect(_members_url(self.account))
        request.session.pop("last_account", None)
        messages.success(request, f"You left {self.account.name}.")
        return redirect("home")


class TransferOwnershipView(AccountViewMixin, FormView):
    template_name = "members/transfer_ownership.html"
    form_class = TransferOwnershipForm

    def get_form_kwargs(self):
        me = self.access.direct_membership
        if me is None or me.role != "owner":
            raise PermissionDenied("Only an Owner of this account can transfer ownership.")
        candidates = (Membership.objects.filter(account=self.account, is_agency=False).exclude(pk=me.pk)
                      .select_related("user").order_by("user__email"))
        return {**super().get_form_kwargs(), "candidates": candidates}

    def form_valid(self, form):
        try:
            to = ownership_transfer(account=self.account, to=form.cleaned_data["member"], by=self.request.user,
                                    request=self.request)
        except (ValidationError, PermissionDenied) as exc:
            form.add_error(None, _error_text(exc))
            return self.form_invalid(form)
        messages.success(self.request, f"{to.user.email} now owns {self.account.name}. You are an Admin.")
        return redirect(_members_url(self.account))


class InvitationActionView(AccountViewMixin, View):
    permission_required = "manage_members"
    http_method_names = ["post"]
    action = None  # "resend" or "revoke"

    def post(self, request, *args, **kwargs):
        invitation = get_object_or_404(Invitation, account=self.account, public_id=kwargs["invitation_id"])
        service = inv.invitation_resend if self.action == "resend" else inv.invitation_revoke
        try:
            service(invitation=invitation, by=request.user, request=request)
        except (ValidationError, PermissionDenied) as exc:
            messages.error(request, _error_text(exc))
        else:
            messages.success(request, f"Invitation to {invitation.email} "
                                      f"{'sent again with a new link' if self.action == 'resend' else 'withdrawn'}.")
        return redirect(_members_url(self.account))


def accept_invitation(request, token):
    """The link in the email. Anyone may open it; only the invited email can accept."""
    try:
        invitation = inv.invitation_from_token(token)
    except inv.InvitationInvalid as exc:
        return render(request, "members/invitation_invalid.html", {"reason": str(exc)}, status=410)
    existing = User.objects.filter(email__iexact=invitation.email).first()
    ctx = {"invitation": invitation, "existing": existing}
    user = request.user if request.user.is_authenticated else None

    if user is not None and user.email.lower() != invitation.email:
        ctx["wrong_user"] = True
        if request.method == "POST" and request.POST.get("action") == "switch-user":
            logout(request)
            return redirect(request.path)
        return render(request, "members/invitation_accept.html", ctx, status=403 if request.method == "POST" else 200)

    if user is None and existing is not None:
        return redirect(f"{reverse('login')}?next={request.path}")

    agencies = inv.agency_accounts_of(user) if (user is not None and invitation.is_agency) else []
    signup_form = InvitationSignupForm(request.POST or None, email=invitation.email,
                                       agency=invitation.is_agency) if user is None else None
    agency_form = AgencyChoiceForm(request.POST or None, agencies=agencies) if (user and invitation.is_agency) else None
    ctx.update(form=signup_form or agency_form)
    if request.method == "POST":
        agency_account = None
        if user is None and not signup_form.is_valid():
            return render(request, "members/invitation_accept.html", ctx)
        if agency_form is not None:
            if not agency_form.is_valid():
                return render(request, "members/invitation_accept.html", ctx)
            agency_account = agency_form.cleaned_data["agency"]
        try:
            if user is None:  # R8: the new person and their membership are created together or not at all
                data = signup_form.cleaned_data
                membership = inv.invitation_accept_signup(invitation=invitation, name=data["name"],
                                                          password=data["password"],
                                                          agency_name=data.get("agency_name", ""), request=request)
                user = membership.user
            else:
                membership = inv.invitation_accept(invitation=invitation, user=user, agency_account=agency_account,
                                                   request=request)
        except ValidationError as exc:
            return render(request, "members/invitation_invalid.html", {"reason": _error_text(exc)}, status=409)
        if not request.user.is_authenticated:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        request.session["last_account"] = str(membership.account.public_id)
        messages.success(request, f"Welcome to {membership.account.name}! "
                                  f"You joined as {membership.get_role_display()}.")
        return redirect(membership.account)
    return render(request, "members/invitation_accept.html", ctx)
