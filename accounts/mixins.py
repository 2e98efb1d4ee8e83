from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone

from .access import access_or_404
from .paging import Paginator


class AccountViewMixin(LoginRequiredMixin):
    """Loads the URL's account (``account_id``) with the person's access, once per request.

    Another tenant's account is a 404 (DESIGN rule 5); a reachable account where the
    person lacks ``permission_required`` is a 403 naming what is missing. Set
    ``permission_required`` to a codename or a tuple of codenames.
    """

    permission_required: str | tuple[str, ...] = ()
    paginator_class = Paginator  # (list views) a first page that holds every row costs no COUNT

    def get_permission_required(self) -> tuple[str, ...]:
        perms = self.permission_required
        return (perms,) if isinstance(perms, str) else tuple(perms)

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        try:
            self.access = access_or_404(request.user, kwargs["account_id"])
        except Http404:
            ended = ended_agency_access(request.user, kwargs["account_id"])
            if ended is not None:  # say it ended and when, and nothing else about the account
                return TemplateResponse(request, "accounts/access_ended.html", {"grant": ended}, status=403)
            if request.session.get("last_account") == str(kwargs["account_id"]):
                # They were working here and lost access (removed, demoted out, agency access
                # revoked): say so and fall back, rather than a bare 404.
                del request.session["last_account"]
                messages.warning(request, "You no longer have access to the account you were working in.")
                return redirect("home")
            raise
        touch_membership(self.access)
        self.account = self.access.account
        request.account = self.account
        request.account_access = self.access
        if self.access.is_locked_out:
            return TemplateResponse(request, "accounts/suspended.html",
                                    {"suspended_account": self.access.suspended_at}, status=403)
        self.check_permission()
        return super().dispatch(request, *args, **kwargs)

    def check_permission(self) -> None:
        """Refuse (403 naming what is missing) unless the person holds ``permission_required`` here."""
        self.access.require(*self.get_permission_required())

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.setdefault("account", self.account)
        return ctx


def ended_agency_access(user, public_id):
    """The agency grant through which ``user``'s agency (an account they belong to) reached this account, when it
    has ended (revoked, or expired) and no other grant of theirs is active; or, when a grant is still in force,
    the one their own agency membership here comes through if its agency is suspended (``agency_suspended`` set on
    it: paused, not ended); None otherwise. One query, two when a grant is in force."""
    from agency.models import AgencyGrant
    from members.models import Membership

    grants = list(AgencyGrant.objects.filter(client__public_id=public_id, agency__memberships__user=user,
                                             agency__memberships__is_agency=False,
                                             status__in=[AgencyGrant.Status.ACTIVE, AgencyGrant.Status.REVOKED])
                  .select_related("agency", "client").distinct()[:20])
    if not grants:
        return None  # never had one
    in_force = [g for g in grants if g.is_effective]
    if in_force:  # the refusal is about something else, unless the person's own agency access here is paused
        through = (Membership.objects.filter(account__public_id=public_id, user=user, is_agency=True)
                   .values_list("agency_account_id", flat=True).first())
        paused = next((g for g in in_force if g.agency_id == through and g.agency.is_suspended), None)
        if paused is not None:
            paused.agency_suspended = True
        return paused
    return max(grants, key=lambda g: g.decided_at if g.status == AgencyGrant.Status.REVOKED else g.expires_at)


def touch_membership(access) -> None:
    """Record "last active" on the person's own membership, at most once per interval."""
    membership = access.direct_membership
    if membership is None or membership.pk is None:  # no stored membership (platform support)
        return
    now = timezone.now()
    interval = timedelta(seconds=settings.MEMBERSHIP_ACTIVITY_INTERVAL_SECONDS)
    if membership.last_active_at is None or now - membership.last_active_at > interval:
        from members.models import Membership

        Membership.objects.filter(pk=membership.pk).update(last_active_at=now)
        membership.last_active_at = now
