"""Writes about memberships. Each is atomic, names who acted (``by``), writes its audit row
in the same transaction and keeps the person's django-guardian rows in step."""

from dataclasses import dataclass

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from accounts.audit import audit
from accounts.models import Account, AccountUserObjectPermission
from accounts.permissions import cap, clean_matrix

from .models import Membership
from .roles import RoleId, get_role


@dataclass(frozen=True)
class Caps:
    """What caps the memberships of one account, read once per sync."""

    agency_settings: dict | None  # while agency access is on: caps every non-agency member, Owner included
    grant_matrices: dict  # agency account id -> the client's narrowing of that agency's access

    @classmethod
    def of(cls, account: Account) -> "Caps":
        from agency.models import AgencyGrant, AgencySettings

        settings_row = AgencySettings.objects.filter(account=account, enabled=True).first()
        grants = AgencyGrant.objects.filter(client=account, status__in=["requested", "active"])
        return cls(settings_row.matrix if settings_row else None,
                   {g.agency_id: g.matrix for g in grants.only("agency_id", "matrix")})


def role_permissions(membership: Membership, caps: Caps | None = None) -> frozenset[str]:
    """The codenames a membership holds in its own account: its role's, capped by
    - the access categories the parent set on a subaccount (DESIGN rule 2), for its own members;
    - the client's agency settings, for every non-agency member while agency access is on (rule 3);
    - the client's narrowing of the agency's grant, for agency members."""
    account = membership.account
    caps = caps or Caps.of(account)
    codenames = get_role(membership.role).permissions
    if account.depth > 1 and account.access_categories:
        codenames = cap(codenames, clean_matrix(account.access_categories))
    if membership.is_agency:
        codenames = cap(codenames, clean_matrix(caps.grant_matrices.get(membership.agency_account_id) or {}))
    elif caps.agency_settings:
        codenames = cap(codenames, clean_matrix(caps.agency_settings))
    return codenames


def account_sync_permissions(account: Account) -> None:
    """Re-sync every membership of ``account`` (after its caps changed): a handful of queries in all."""
    memberships = list(Membership.objects.filter(account=account))
    caps = Caps.of(account)
    for m in memberships:
        m.account = account
    desired = {(m.user_id, code) for m in memberships for code in role_permissions(m, caps)}
    rows = AccountUserObjectPermission.objects.filter(content_object=account)
    existing = {(uid, code): pk for uid, code, pk in rows.values_list("user_id", "permission__codename", "pk")}
    stale = [pk for key, pk in existing.items() if key not in desired]
    if stale:
        AccountUserObjectPermission.objects.filter(pk__in=stale).delete()
    missing = desired - existing.keys()
    if missing:
        perms = dict(Permission.objects.filter(content_type=ContentType.objects.get_for_model(Account),
                                               codename__in={c for _, c in missing}).values_list("codename", "pk"))
        AccountUserObjectPermission.objects.bulk_create([
            AccountUserObjectPermission(user_id=uid, content_object=account, permission_id=perms[code])
            for uid, code in missing
        ])


def membership_sync_permissions(membership: Membership) -> None:
    """Make the person's permission rows on the membership's account match its role.

    Writes only the difference; removes every row when the membership is gone.
    """
    rows = AccountUserObjectPermission.objects.filter(user_id=membership.user_id, content_object=membership.account)
    desired = role_permissions(membership) if membership.pk else frozenset()
    existing = dict(rows.values_list("permission__codename", "pk"))
    stale = [pk for code, pk in existing.items() if code not in desired]
    if stale:
        AccountUserObjectPermission.objects.filter(pk__in=stale).delete()
    missing = desired - existing.keys()
    if missing:
        ct = ContentType.objects.get_for_model(Account)
        perms = Permission.objects.filter(content_type=ct, codename__in=missing)
        AccountUserObjectPermission.objects.bulk_create(
            [
                AccountUserObjectPermission(user_id=membership.user_id, content_object=membership.account, permission=p)
                for p in perms
            ]
        )


def _actor_role(by, account: Account):
    """The actor's effective role in the account, or None for the platform (admin, commands)."""
    if by is None:
        return None
    from accounts.access import resolve_access

    access = resolve_access(by, account)
    if access is None:
        raise PermissionDenied("You do not belong to this account.")
    return access.role


def _check_may_assign(by, account: Account, role_id: str) -> None:
    if by is not None:
        from accounts.access import require

        require(by, account, "manage_members")
    actor_role = _actor_role(by, account)
    if actor_role is not None and not actor_role.can_assign(get_role(role_id)):
        raise PermissionDenied(f"As {actor_role.name} you cannot grant the {get_role(role_id).name} role.")


@transaction.atomic
def membership_add(*, account: Account, user, role: str, by, is_agency: bool = False, agency_account=None,
                   request=None) -> Membership:
    get_role(role)
    _check_may_assign(by, account, role)
    if Membership.objects.filter(account=account, user=user).exists():
        raise ValidationError(f"{user.email} is already a member of {account.name}.")
    check_member_limit(account)
    membership = Membership.objects.create(account=account, user=user, role=role, created_by=by,
                                           is_agency=is_agency, agency_account=agency_account)
    membership_sync_permissions(membership)
    audit(
        account=account, actor=by, request=request, action="member.added",
        summary=f"{user.email} added as {get_role(role).name}", user=user.email, role=role,
    )
    return membership


def check_member_limit(account: Account, adding: int = 1) -> None:
    """Refuse going past the account's max members (set by its parent)."""
    if account.limit_members is None:
        return
    current = Membership.objects.filter(account=account).count()
    if current + adding > account.limit_members:
        raise ValidationError(
            f"{account.name} has reached its limit of {account.limit_members} members "
            f"({current} already). Ask the parent account to raise it.", code="member_limit")


def _owners_left_after(membership: Membership) -> int:
    owners = Membership.objects.select_for_update().filter(account_id=membership.account_id, role=RoleId.OWNER)
    return sum(1 for m in owners if m.pk != membership.pk)


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str, by, request=None) -> Membership:
    get_role(role)
    if role == membership.role:
        return membership
    if membership.is_agency or role == RoleId.AGENCY_ADMIN:
        raise ValidationError("Agency users keep the Agency Admin role; remove them to end their access instead.")
    _check_may_assign(by, membership.account, membership.role)  # may touch who they are now
    _check_may_assign(by, membership.account, role)  # and may grant what they become
    if membership.role == RoleId.OWNER and _owners_left_after(membership) == 0:
        raise ValidationError(
            f"{membership.user.email} is the last Owner of {membership.account.name}: make someone else Owner first."
        )
    old = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    membership_sync_permissions(membership)
    audit(
        account=membership.account, actor=by, request=request, action="member.role_changed",
        summary=f"{membership.user.email}: {get_role(old).name} → {get_role(role).name}",
        user=membership.user.email, old_role=old, new_role=role,
    )
    return membership


@transaction.atomic
def ownership_transfer(*, account: Account, to: Membership, by, request=None) -> Membership:
    """Make ``to`` an Owner; ``by`` (an Owner) becomes Admin. Agency users never become Owner."""
    current = Membership.objects.select_for_update().filter(account=account, user=by, role=RoleId.OWNER).first()
    if current is None:
        raise PermissionDenied("Only an Owner of this account can transfer ownership.")
    to = Membership.objects.select_for_update(of=("self",)).select_related("user").get(pk=to.pk, account=account)
    if to.pk == current.pk:
        raise ValidationError("You already own this account.")
    if to.is_agency:
        raise ValidationError("Agency users cannot become Owner of a client's account.")
    old_role = to.role
    to.role = RoleId.OWNER
    to.save(update_fields=["role"])
    current.role = RoleId.ADMIN
    current.save(update_fields=["role"])
    for m in (to, current):
        m.account = account
        membership_sync_permissions(m)
    audit(account=account, actor=by, request=request, action="ownership.transferred",
          summary=f"Ownership transferred from {by.email} to {to.user.email} ({by.email} is now Admin)",
          to=to.user.email, previous_role=old_role)
    return to


@transaction.atomic
def membership_remove(*, membership: Membership, by, request=None) -> None:
    if by is None or by.pk != membership.user_id:  # leaving is always allowed, removing needs rank
        _check_may_assign(by, membership.account, membership.role)
    if membership.role == RoleId.OWNER and _owners_left_after(membership) == 0:
        raise ValidationError(
            f"{membership.user.email} is the last Owner of {membership.account.name} and cannot be removed."
        )
    account, email = membership.account, membership.user.email
    membership.delete()
    membership.pk = None
    membership_sync_permissions(membership)
    audit(
        account=account, actor=by, request=request, action="member.removed",
        summary=f"{email} removed" if (by is None or by.email != email) else f"{email} left the account",
        user=email,
    )


@transaction.atomic
def user_signup(*, email: str, name: str, password: str, account_name: str, request=None):
    """A new person with a new independent account they own."""
    from accounts.services import account_create

    from .models import User

    user = User.objects.create_user(email=email, password=password, name=name)
    account = account_create(name=account_name, owner=user, by=user, request=request)
    user.last_account = account
    user.save(update_fields=["last_account"])
    return user, account
