"""Agency access: requests, approval, narrowing, expiry, revocation, agency settings and baseline.

Every function is atomic, names ``by``, writes audit rows on both sides (the client's and the
agency's) and re-syncs the affected permission rows in the same transaction.
"""

import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.access import resolve_access
from accounts.audit import audit, staff_acting
from accounts.models import Account, subtree_q
from accounts.permissions import clean_matrix, compose, matrix_of
from developers import webhooks
from developers.models import WebhookEvent
from members.grants import check_grant, grant_ceiling
from members.models import Membership
from members.roles import ROLES, RoleId
from members.services import (
    account_sync_permissions,
    check_not_last_owner,
    membership_add,
    membership_end,
    membership_remove,
)

from . import notices
from .models import AgencyBaseline, AgencyGrant, AgencySettings

OPEN = [AgencyGrant.Status.REQUESTED, AgencyGrant.Status.ACTIVE]


def _stored(matrix: dict) -> dict[str, str]:
    return {k: v.name.lower() for k, v in clean_matrix(matrix).items()}


def _both_sides(grant: AgencyGrant, *, by, action: str, summary: str, request=None, **data) -> None:
    for account in (grant.client, grant.agency):
        audit(account=account, actor=by, request=request, action=action, summary=summary,
              client=str(grant.client.public_id), agency=str(grant.agency.public_id), **data)
        webhooks.emit(account, WebhookEvent.AGENCY_ACCESS_CHANGED, {
            "change": action, "client_account_id": str(grant.client.public_id),
            "agency_account_id": str(grant.agency.public_id), "status": grant.status,
            "expires_at": grant.expires_at})


AGENCY_ADMIN_MATRIX = matrix_of(ROLES[RoleId.AGENCY_ADMIN].permissions)


def may_govern(client: Account, by) -> bool:
    """R2: the client's direct Owner always may (whatever the agency settings say); otherwise a direct,
    non-agency Admin whose membership no agency user created."""
    access = resolve_access(by, client)
    return access is not None and access.may_govern_agency


def _require_governor(client: Account, by) -> None:
    if not may_govern(client, by):
        raise PermissionDenied(f"Only the Owner or an Admin of {client.name} (not one added through an agency) "
                               "decides on agency access.")


def grant_matrix_ceiling(client: Account, by):
    """What a governor may let an agency do: what they hold there (R1), and never more than Agency Admin."""
    access = resolve_access(by, client)
    held = grant_ceiling(access) if access is not None else dict(AGENCY_ADMIN_MATRIX)
    return {k: min(v, AGENCY_ADMIN_MATRIX[k]) for k, v in held.items()}


def added_through(grant: AgencyGrant):
    """Members of the client and of its subaccounts that agency users added (directly or through people they
    added, who may have invited people into the client's subaccounts) under this agency's grants: what revoking
    offers to remove (R3)."""
    return (Membership.objects.filter(subtree_q(grant.client.path, "account__path"), is_agency=False,
                                      via_agency=True, via_grant__agency=grant.agency)
            .select_related("user", "account").order_by("account__path", "user__email"))


def _require_agency_manager(agency: Account, by) -> None:
    if by is None:
        return  # the platform (provisioning, commands, the admin)
    access = resolve_access(by, agency)
    if access is None or not access.has("manage_members"):
        raise PermissionDenied(f"Your role in {agency.name} does not allow managing agency access.")


def _check_expiry(expires_at) -> None:
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError("The expiry must be in the future.")


def settings_for(client: Account) -> AgencySettings:
    row, _ = AgencySettings.objects.get_or_create(account=client)
    return row


def _enable(client: Account, agency: Account) -> None:
    """Turn agency access on; the first time, the agency settings start from the agency's baseline."""
    row = AgencySettings.objects.select_for_update().filter(account=client).first() or settings_for(client)
    if not row.enabled:
        if not row.matrix:
            baseline = AgencyBaseline.objects.filter(account=agency).first()
            row.matrix = dict(baseline.matrix) if baseline else {}
        row.enabled = True
        row.save()


def _disable_if_unused(client: Account) -> None:
    if not AgencyGrant.objects.filter(client=client, status=AgencyGrant.Status.ACTIVE).exists():
        AgencySettings.objects.filter(account=client).update(enabled=False)


def _check_pair(agency: Account, client: Account) -> None:
    if not client.is_root() or not agency.is_root():
        raise ValidationError("Agency access joins two independent accounts: a subaccount is already managed by "
                              "its parent.")
    if client.pk == agency.pk:
        raise ValidationError("An account cannot grant agency access to itself.")


@transaction.atomic
def access_request(*, agency: Account, client: Account, by, expires_at=None, note="", request=None) -> AgencyGrant:
    """The agency asks the client's Owner for access."""
    _require_agency_manager(agency, by)
    _check_pair(agency, client)
    _check_expiry(expires_at)
    if AgencyGrant.objects.filter(client=client, agency=agency, status__in=OPEN).exists():
        raise ValidationError(f"{agency.name} already has access to {client.name} or a request waiting.")
    grant = AgencyGrant.objects.create(client=client, agency=agency, requested_by=by, expires_at=expires_at,
                                       note=note[:300])
    _both_sides(grant, by=by, request=request, action="agency.access_requested",
                summary=f"{agency.name} asked for agency access to {client.name}")
    notices.access_requested(grant)
    return grant


def _locked(grant: AgencyGrant) -> AgencyGrant:
    return (AgencyGrant.objects.select_for_update(of=("self",)).select_related("client", "agency", "requested_by")
            .get(pk=grant.pk))


@transaction.atomic
def access_decide(*, grant: AgencyGrant, approve: bool, by, expires_at=None, matrix: dict | None = None,
                  request=None) -> AgencyGrant:
    """The client's Owner (or a governing Admin) approves (optionally narrowed to ``matrix``) or declines a
    request. Approving gives the requester an Agency Admin membership in the client."""
    grant = _locked(grant)
    _require_governor(grant.client, by)
    if approve:
        wanted = {**AGENCY_ADMIN_MATRIX, **clean_matrix(matrix or {})}  # not narrowed: Agency Admin's levels
        check_grant(by, grant.client, matrix=wanted, structural=AGENCY_ADMIN_MATRIX)
        # R1: the agency never gets more than the approver holds, whatever was asked for
        grant.matrix = _stored(compose(grant_matrix_ceiling(grant.client, by), wanted))
    if grant.status != AgencyGrant.Status.REQUESTED:
        raise ValidationError(f"This request is already {grant.get_status_display().lower()}.")
    grant.decided_by, grant.decided_at = by, timezone.now()
    if not approve:
        grant.status = AgencyGrant.Status.DECLINED
        grant.save()
        _both_sides(grant, by=by, request=request, action="agency.access_declined",
                    summary=f"{grant.client.name} declined {grant.agency.name}'s request")
        notices.access_decided(grant, approved=False)
        return grant
    _check_expiry(expires_at)
    grant.status = AgencyGrant.Status.ACTIVE
    if expires_at is not None:
        grant.expires_at = expires_at
    grant.save()
    _enable(grant.client, grant.agency)
    requester = grant.requested_by
    if requester and Membership.objects.filter(account=grant.agency, user=requester).exists() and \
            not Membership.objects.filter(account=grant.client, user=requester).exists():
        membership_add(account=grant.client, user=requester, role=RoleId.AGENCY_ADMIN, by=None, is_agency=True,
                       agency_account=grant.agency, via_agency=False, via_grant=grant, request=request)
    account_sync_permissions(grant.client)
    _both_sides(grant, by=by, request=request, action="agency.access_approved",
                summary=f"{grant.client.name} gave {grant.agency.name} agency access"
                        + (f" until {grant.expires_at:%Y-%m-%d}" if grant.expires_at else ""))
    notices.access_decided(grant, approved=True)
    return grant


@transaction.atomic
def access_activate_for_invitation(*, client: Account, agency: Account, by, granted_by=None,
                                   by_platform: bool = False, request=None) -> AgencyGrant:
    """The client invited one of the agency's people by email and they accepted: access is on, never more
    than the inviting governor (``granted_by``) holds (R1). Only for an invitation a governor of the client
    (or the platform) sent: nobody else turns agency access on."""
    if not by_platform and (granted_by is None or not may_govern(client, granted_by)):
        raise PermissionDenied(f"Only the Owner or an Admin of {client.name} brings an agency in.")
    _check_pair(agency, client)
    grant = AgencyGrant.objects.select_for_update().filter(client=client, agency=agency, status__in=OPEN).first()
    ceiling = _stored(grant_matrix_ceiling(client, granted_by)) if granted_by is not None else {}
    if grant is None:
        grant = AgencyGrant.objects.create(client=client, agency=agency, status=AgencyGrant.Status.ACTIVE,
                                           decided_by=granted_by, decided_at=timezone.now(), matrix=ceiling)
    elif grant.status == AgencyGrant.Status.REQUESTED:
        grant.status, grant.decided_at, grant.decided_by = AgencyGrant.Status.ACTIVE, timezone.now(), granted_by
        grant.matrix = ceiling
        grant.save()
    _enable(client, agency)
    return grant


@transaction.atomic
def access_grant_by_platform(*, client: Account, agency: Account, expires_at=None, people=(), staff=None,
                             reason: str = "", request=None) -> AgencyGrant:
    """The platform turns agency access on (the ``agency_access grant`` command, at the client's written
    request): an open request is approved, or a grant created, at the Agency Admin role's levels; ``people``
    (members of the agency account) join the client as Agency Admins. Audited on both sides with ``reason``."""
    staff_data = staff_acting(None, staff, "Granting agency access for the platform is done by platform staff.")
    _check_pair(agency, client)
    _check_expiry(expires_at)
    already = AgencyGrant.objects.filter(client=client, agency=agency, status=AgencyGrant.Status.ACTIVE).exists()
    if already:
        raise ValidationError(f"{agency.name} already has agency access to {client.name}.")
    grant = access_activate_for_invitation(client=client, agency=agency, by=None, by_platform=True, request=request)
    if expires_at is not None:
        AgencyGrant.objects.filter(pk=grant.pk).update(expires_at=expires_at)
        grant.expires_at = expires_at
    account_sync_permissions(client)
    _both_sides(grant, by=staff, request=request, action="agency.access_approved",
                summary=f"The platform gave {agency.name} agency access to {client.name}"
                        + (f" until {expires_at:%Y-%m-%d}" if expires_at else ""), reason=reason[:300],
                **staff_data)
    for user in people:
        agency_member_add(grant=grant, user=user, by=None, staff=staff, request=request)
    return grant


@transaction.atomic
def access_update(*, grant: AgencyGrant, by, expires_at, matrix: dict, request=None) -> AgencyGrant:
    """Narrow (a cap on the agency's access), extend or shorten an active grant."""
    grant = _locked(grant)
    _require_governor(grant.client, by)
    if grant.status != AgencyGrant.Status.ACTIVE:
        raise ValidationError("Only active agency access can be changed.")
    _check_expiry(expires_at)
    check_grant(by, grant.client, matrix={**AGENCY_ADMIN_MATRIX, **clean_matrix(matrix)},
                structural=AGENCY_ADMIN_MATRIX)
    grant.expires_at = expires_at
    grant.expiry_recorded = False
    grant.matrix = _stored(matrix)
    grant.save()
    account_sync_permissions(grant.client)
    _both_sides(grant, by=by, request=request, action="agency.access_changed",
                summary=f"Agency access of {grant.agency.name} changed"
                        + (f": expires {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else ": no expiry"),
                matrix=grant.matrix)
    return grant


@transaction.atomic
def access_revoke(*, grant: AgencyGrant, by, remove=(), staff=None, request=None) -> AgencyGrant:
    """End the agency's access now: its people in the client lose it on their next request. ``remove``:
    members that agency users added (``added_through``), removed with it (R3: delegated access never
    outlives its source; the confirmation selects them all by default).

    ``by=None`` is the platform (the admin, commands): no person's rights to check; ``staff`` (a staff user)
    is then named in the audit trail."""
    staff_data = staff_acting(by, staff, "Ending agency access for the platform is done by platform staff.")
    grant = _locked(grant)
    if by is None:
        access = None
    else:
        access = resolve_access(by, grant.client)
        agency_side = resolve_access(by, grant.agency)
        if not may_govern(grant.client, by) and not (agency_side and agency_side.has("manage_members")):
            raise PermissionDenied("Only the client's Owner or Admins, or the agency's admins, can end agency "
                                   "access.")
    if grant.status not in OPEN:
        raise ValidationError(f"This agency access is already {grant.get_status_display().lower()}.")
    added = {m.pk: m for m in added_through(grant)}
    extra = []
    for m in remove:
        if m.pk not in added:
            raise ValidationError("Only members that the agency's people added can be removed with its access.")
        extra.append(added[m.pk])
    grant.status, grant.decided_by, grant.decided_at = AgencyGrant.Status.REVOKED, by or staff, timezone.now()
    grant.save()
    for membership in Membership.objects.filter(account=grant.client, is_agency=True, agency_account=grant.agency):
        membership_remove(membership=membership, by=None, staff=staff if by is None else None, request=request)
    for membership in extra:  # the governance decision authorizes these removals (R3)
        check_not_last_owner(membership, "be removed with the agency's access")
        membership_end(membership, by=by or staff, request=request,
                       summary=f"{membership.user.email} removed with {grant.agency.name}'s agency access",
                       **staff_data)
    _disable_if_unused(grant.client)
    account_sync_permissions(grant.client)
    side = "platform" if by is None else "client" if access is not None and not access.is_agency else "agency"
    _both_sides(grant, by=by or staff, request=request, action="agency.access_revoked",
                summary=f"Agency access of {grant.agency.name} to {grant.client.name} ended by the {side}"
                        + (f"; {len(extra)} member(s) it added removed" if extra else ""), **staff_data)
    notices.access_ended(grant, side)
    return grant


@transaction.atomic
def agency_member_add(*, grant: AgencyGrant, user, by, staff=None, request=None) -> Membership:
    """The agency gives one more of its own people access to an active client. ``by=None`` is the platform;
    ``staff``, the staff member acting for it, is named in the audit trail."""
    staff_data = staff_acting(by, staff)
    grant = _locked(grant)
    _require_agency_manager(grant.agency, by)
    if not grant.is_effective:
        raise ValidationError(f"Access to {grant.client.name} is not active.")
    if not Membership.objects.filter(account=grant.agency, user=user, is_agency=False).exists():
        raise ValidationError(f"{user.email} is not a member of {grant.agency.name}.")
    membership = membership_add(account=grant.client, user=user, role=RoleId.AGENCY_ADMIN, by=None, is_agency=True,
                                agency_account=grant.agency, via_agency=False, via_grant=grant, staff=staff,
                                request=request)
    Membership.objects.filter(pk=membership.pk).update(created_by=by)
    _both_sides(grant, by=by or staff, request=request, action="agency.member_added",
                summary=f"{user.email} of {grant.agency.name} got agency access to {grant.client.name}", **staff_data)
    return membership


@transaction.atomic
def agency_member_remove(*, membership: Membership, by, request=None) -> None:
    if not membership.is_agency:
        raise ValidationError("Not an agency user.")
    grant = AgencyGrant.objects.filter(client=membership.account, agency=membership.agency_account).first()
    if not may_govern(membership.account, by):
        if membership.agency_account is None:
            raise PermissionDenied("Only the client's Owner or Admins can remove this agency user.")
        _require_agency_manager(membership.agency_account, by)
    email = membership.user.email
    membership_remove(membership=membership, by=None, request=request)
    if grant:
        _both_sides(grant, by=by, request=request, action="agency.member_removed",
                    summary=f"{email} no longer has agency access to {grant.client.name}")


def settings_ceiling(client: Account, by):
    """What the governor may set in the agency settings (R1): what they hold (a root's Owner: everything)."""
    access = resolve_access(by, client)
    return grant_ceiling(access) if access is not None else None


@transaction.atomic
def settings_update(*, client: Account, matrix: dict, by, request=None) -> AgencySettings:
    """Set what non-agency members (the Owner included) may use while agency access is on; applies on
    their next request."""
    _require_governor(client, by)
    check_grant(by, client, matrix=clean_matrix(matrix))
    row = AgencySettings.objects.select_for_update().filter(account=client).first() or settings_for(client)
    old, row.matrix = row.matrix, _stored(matrix)
    row.save()
    account_sync_permissions(client)
    audit(account=client, actor=by, request=request, action="agency.settings_changed",
          summary="Agency settings changed", old=old, new=row.matrix)
    return row


def baseline_affected_clients(agency: Account, matrix: dict) -> list[Account]:
    """Active clients of the agency whose agency settings differ from ``matrix``."""
    wanted = _stored(matrix)
    grants = AgencyGrant.objects.active().filter(agency=agency).select_related("client", "client__agency_settings")
    changed = []
    for grant in grants:
        current = getattr(grant.client, "agency_settings", None)
        if current is None or current.matrix != wanted:
            changed.append(grant.client)
    return changed


@transaction.atomic
def baseline_update(*, agency: Account, matrix: dict, by, apply_to_existing: bool, request=None) -> list[Account]:
    """Save the agency's baseline; with ``apply_to_existing`` also set it as the agency settings of the active
    clients where it differs and where ``by`` governs the client's agency access (R2: a client's agency
    settings are the client's to set; the agency only proposes them). Returns the clients changed."""
    _require_agency_manager(agency, by)
    check_grant(by, agency, matrix=clean_matrix(matrix))
    row, _ = AgencyBaseline.objects.select_for_update().get_or_create(account=agency)
    row.matrix = _stored(matrix)
    row.save()
    changed = [c for c in baseline_affected_clients(agency, matrix) if may_govern(c, by)] if apply_to_existing \
        else []
    for client in changed:
        settings_row = settings_for(client)
        old, settings_row.matrix = settings_row.matrix, row.matrix
        settings_row.save()
        account_sync_permissions(client)
        audit(account=client, actor=by, request=request, action="agency.settings_changed",
              summary=f"Agency settings set to {agency.name}'s baseline", old=old, new=row.matrix)
    audit(account=agency, actor=by, request=request, action="agency.baseline_changed",
          summary="Agency baseline changed" + (f" and applied to {len(changed)} client(s)" if changed else
                                               " (new clients only)"),
          clients=[str(c.public_id) for c in changed])
    return changed


def record_expiries(now: datetime.datetime | None = None) -> int:
    """Write the audit rows of grants that have expired (their access already ended at expiry)."""
    now = now or timezone.now()
    due = AgencyGrant.objects.filter(status=AgencyGrant.Status.ACTIVE, expires_at__lte=now, expiry_recorded=False)
    count = 0
    for grant in due.select_related("client", "agency"):
        with transaction.atomic():
            updated = AgencyGrant.objects.filter(pk=grant.pk, expiry_recorded=False).update(expiry_recorded=True)
            if updated:
                _both_sides(grant, by=None, action="agency.access_expired",
                            summary=f"Agency access of {grant.agency.name} to {grant.client.name} expired")
                count += 1
    return count


def access_keep_after_transfer(*, transfer, people, request=None) -> AgencyGrant:
    """A subaccount of the agency just became independent through ``transfer`` (billing transfer) and keeps the
    agency's access: an active grant, the agency settings from the agency's baseline, and ``people`` as its
    agency members. Only for a transfer being applied that chose to keep access (the customer agreed when
    accepting); called inside the transfer's transaction."""
    client, agency = transfer.account, transfer.from_root
    expires_at, by = transfer.agency_expires_at, transfer.created_by
    if not transfer.keep_agency_access or transfer.status != transfer.Status.SCHEDULED or not client.is_root():
        raise PermissionDenied("Agency access is kept only by a billing transfer that chose it, as it switches.")
    _check_pair(agency, client)
    grant = AgencyGrant.objects.create(client=client, agency=agency, status=AgencyGrant.Status.ACTIVE,
                                       requested_by=by, decided_at=timezone.now(), expires_at=expires_at,
                                       note="Kept after the billing transfer.")
    _enable(client, agency)
    for user in people:
        existing = Membership.objects.filter(account=client, user=user).first()
        if existing is None:
            membership_add(account=client, user=user, role=RoleId.AGENCY_ADMIN, by=None, is_agency=True,
                           agency_account=agency, via_agency=False, via_grant=grant, request=request)
    account_sync_permissions(client)
    _both_sides(grant, by=by, request=request, action="agency.access_approved",
                summary=f"{client.name} became independent and kept {agency.name}'s agency access"
                        + (f" until {expires_at:%Y-%m-%d}" if expires_at else ""))
    return grant
