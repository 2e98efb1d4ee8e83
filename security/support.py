"""Consented support access (issue 13 part 6): platform staff reach one account only when its Owner said yes.

Staff ask for read-only or full access to one account, with a reason and at most 72 hours
(``support_request``); the account's Owner approves, choosing whether its subaccounts are included, or
declines (``support_decide``); the Owner or the staff member can end it early (``support_end``). While it is
active the staff member who asked, and nobody else, reaches that account (and its subaccounts if chosen),
never its parent or siblings, through ``support_access_source``, which ``accounts.access`` asks for staff
without a membership. Expiry and revocation are read on every request (``SupportAccess.objects.active()``),
so access ends on the next one. Full access is delegated access: it never grants roles above Member or
Viewer, governs agency access, sets the security policy or resets a second factor. Every write is audited in
the account; every request made through it is audited as support by ``AccountPolicyMiddleware``.
"""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.access import AccountAccess, register_access_source, resolve_access
from accounts.audit import audit
from accounts.models import Account
from accounts.permissions import ALL_CODENAMES, PERMISSIONS, Level, cap, clean_matrix, compose
from members.models import Membership
from members.roles import RoleId

from .models import SupportAccess

READ_PERMISSIONS = frozenset(p.codename for p in PERMISSIONS if p.level == Level.READ)
FULL_PERMISSIONS = ALL_CODENAMES - {"manage_billing"}  # like an Agency Admin: never billing ownership


@register_access_source
def support_access_source(user, account: Account, ancestors: tuple[Account, ...]) -> AccountAccess | None:
    """The access a staff member holds in ``account`` through an active support access they asked for: on the
    account itself, or on an ancestor whose Owner included subaccounts. One query; capped like the account's
    own members (the access categories above the account it was granted on)."""
    by_id = {a.pk: a for a in (*ancestors, account)}
    grants = list(SupportAccess.objects.active().filter(requested_by=user).filter(
        Q(account_id=account.pk) | Q(account_id__in=[a.pk for a in ancestors], include_subaccounts=True)))
    if not grants:
        return None
    grant = max(grants, key=lambda g: (g.level == SupportAccess.Level.FULL, by_id[g.account_id].depth))
    granted_on = by_id[grant.account_id]
    grant.account = granted_on
    caps = compose(*(clean_matrix(a.access_categories) for a in (*ancestors, account)
                     if 1 < a.depth <= granted_on.depth and a.access_categories))
    full = grant.level == SupportAccess.Level.FULL
    membership = Membership(user=user, account=granted_on, role=RoleId.ADMIN if full else RoleId.VIEWER)
    return AccountAccess(account, ancestors, (membership,), cap(FULL_PERMISSIONS if full else READ_PERMISSIONS, caps),
                         support=grant)


def _notify(subject: str, body: str, recipients: list[str]) -> None:
    if recipients:
        transaction.on_commit(lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients))


def owners_to_ask(account: Account) -> list[str]:
    """Who is asked: the account's own Owners, or, for a subaccount without any, the nearest Owners above (who
    reach it and own it)."""
    owners = (Membership.objects.filter(account__path__in=account.lineage_paths, role=RoleId.OWNER, is_agency=False)
              .select_related("user", "account").order_by("-account__depth"))
    found = []
    for m in owners:
        if found and m.account.depth < found[0].account.depth:
            break
        found.append(m)
    return [m.user.email for m in found]


@transaction.atomic
def support_request(*, account: Account, by, level: str, reason: str, hours: int, request=None) -> SupportAccess:
    """Platform staff ask one account's Owner for access. Nothing is reachable until the Owner approves."""
    if by is None or not (by.is_active and by.is_staff):
        raise PermissionDenied("Only platform staff ask for support access.")
    if level not in SupportAccess.Level.values:
        raise ValidationError("Choose read-only or full access.")
    reason = " ".join((reason or "").split())
    if len(reason) < 10:
        raise ValidationError("Say why you need access (at least 10 characters): the Owner decides on it.")
    if len(reason) > 500:
        raise ValidationError("Keep the reason under 500 characters.")
    if not isinstance(hours, int) or not 1 <= hours <= SupportAccess.MAX_HOURS:
        raise ValidationError(f"Support access lasts between 1 and {SupportAccess.MAX_HOURS} hours.")
    account = Account.objects.select_for_update().get(pk=account.pk)
    open_ = SupportAccess.objects.filter(account=account, requested_by=by,
                                         status__in=[SupportAccess.Status.REQUESTED, SupportAccess.Status.ACTIVE])
    if any(s.status == SupportAccess.Status.REQUESTED or s.is_active for s in open_):
        raise ValidationError(f"You already have an open support access request for {account.name}.")
    support = SupportAccess.objects.create(account=account, requested_by=by, level=level, reason=reason, hours=hours)
    audit(account=account, actor=by, request=request, action="support.requested",
          summary=f"Platform support ({by.email}) asks for {support.get_level_display().lower()} access for "
                  f"{hours} hours: {reason}", level=level, hours=hours)
    _notify(f"Platform support asks for access to {account.name}",
            f"{by.email} of platform support asks for {support.get_level_display().lower()} access to "
            f"{account.name} for {hours} hours.\n\nReason: {reason}\n\nApprove or decline it in the app: "
            f"{account.name} → Settings → Support access. Nothing is reachable until you approve.\n",
            owners_to_ask(account))
    return support


def may_decide(by, account: Account) -> bool:
    """Only an Owner of the account (direct or from above) with access of their own decides on support access."""
    access = resolve_access(by, account) if by is not None else None
    return access is not None and access.role.id == RoleId.OWNER and not access.is_delegated


def _locked(support: SupportAccess) -> SupportAccess:
    return SupportAccess.objects.select_for_update().select_related("account", "requested_by").get(pk=support.pk)


@transaction.atomic
def support_decide(*, support: SupportAccess, approve: bool, by, include_subaccounts: bool = False,
                   request=None) -> SupportAccess:
    """The Owner approves (the clock starts now) or declines a request."""
    support = _locked(support)
    account = support.account
    if not may_decide(by, account):
        raise PermissionDenied(f"Only an Owner of {account.name} decides on platform support access.")
    if support.status != SupportAccess.Status.REQUESTED:
        raise ValidationError(f"This request was already {support.get_status_display().lower()}.")
    now = timezone.now()
    support.decided_by, support.decided_at = by, now
    if approve:
        support.status = SupportAccess.Status.ACTIVE
        support.expires_at = now + timedelta(hours=support.hours)
        support.include_subaccounts = bool(include_subaccounts)
    else:
        support.status = SupportAccess.Status.DECLINED
    support.save()
    scope = " and its subaccounts" if support.include_subaccounts else ""
    verb = "approved" if approve else "declined"
    audit(account=account, actor=by, request=request, action=f"support.{verb}",
          summary=f"{support.get_level_display()} support access for {support.requested_by.email} {verb}"
                  + (f" until {support.expires_at:%Y-%m-%d %H:%M} UTC{scope}" if approve else ""),
          staff=support.requested_by.email, include_subaccounts=support.include_subaccounts)
    _notify(f"Support access to {account.name} {verb}",
            f"{by.email} {verb} your {support.get_level_display().lower()} access to {account.name}{scope}"
            + (f", until {support.expires_at:%Y-%m-%d %H:%M} UTC.\n" if approve else ".\n"),
            [support.requested_by.email])
    return support


@transaction.atomic
def support_end(*, support: SupportAccess, by, request=None) -> SupportAccess:
    """End active support access at once (the Owner, or the staff member who holds it)."""
    support = _locked(support)
    account = support.account
    if not (may_decide(by, account) or (by is not None and by.pk == support.requested_by_id)):
        raise PermissionDenied(f"Only an Owner of {account.name} or the staff member ends support access.")
    if not support.is_active:
        raise ValidationError("This support access is not active.")
    support.status = SupportAccess.Status.REVOKED
    support.ended_by, support.ended_at = by, timezone.now()
    support.save()
    audit(account=account, actor=by, request=request, action="support.revoked",
          summary=f"Support access for {support.requested_by.email} ended by {by.email}",
          staff=support.requested_by.email)
    return support
