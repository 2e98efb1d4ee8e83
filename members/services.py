"""Writes about memberships. Each is atomic, names who acted (``by``), writes its audit row
in the same transaction and keeps the person's django-guardian rows in step."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.template.defaultfilters import pluralize

from accounts.audit import audit, staff_acting
from accounts.models import Account
from developers import webhooks
from developers.models import WebhookEvent

from .grants import check_grant, check_may_touch, delegation_of
from .models import Membership
from .roles import RoleId, get_role
from .rows import Caps, account_sync_permissions, membership_sync_permissions, role_permissions

__all__ = ["Caps", "account_sync_permissions", "membership_sync_permissions", "role_permissions"]


@transaction.atomic
def membership_add(*, account: Account, user, role: str, by, is_agency: bool = False, agency_account=None,
                   via_agency: bool | None = None, via_grant=None, staff=None, request=None) -> Membership:
    """Add ``user`` to ``account`` as ``role``. ``by`` must be allowed to give that role there (R1);
    the membership records who created it and whether through an agency (R2). ``by=None`` is the platform;
    ``staff``, the staff member acting for it in the admin, is named in the audit trail."""
    staff_data = staff_acting(by, staff)
    get_role(role)
    if by is not None:
        check_grant(by, account, role=role)
    if via_agency is None:
        via_agency, derived_grant = delegation_of(by, account)
        via_grant = via_grant or derived_grant
    if Membership.objects.filter(account=account, user=user).exists():
        raise ValidationError(f"{user.email} is already a member of {account.name}.")
    check_member_limit(account)
    membership = Membership.objects.create(account=account, user=user, role=role, created_by=by,
                                           is_agency=is_agency, agency_account=agency_account,
                                           via_agency=via_agency and not is_agency,
                                           via_grant_id=getattr(via_grant, "pk", via_grant))
    membership_sync_permissions(membership)
    audit(
        account=account, actor=by or staff, request=request, action="member.added",
        summary=f"{user.email} added as {get_role(role).name}", user=user.email, role=role, **staff_data,
    )
    webhooks.emit(account, WebhookEvent.MEMBER_ADDED, {"email": user.email, "role": role, "is_agency": is_agency})
    return membership


def check_member_limit(account: Account, adding: int = 1) -> None:
    """Refuse going past the account's max members (set by its parent)."""
    if account.limit_members is None:
        return
    current = Membership.objects.filter(account=account).count()
    if current + adding > account.limit_members:
        raise ValidationError(
            f"{account.name} has reached its limit of {account.limit_members} "
            f"member{pluralize(account.limit_members)} "
            f"({current} already). Ask the parent account to raise it.", code="member_limit")


def check_not_last_owner(membership: Membership, doing: str) -> None:
    """A root account keeps at least one Owner. A subaccount may have none: its parent's people manage it
    (R4), so its last Owner may leave or be removed."""
    if membership.role != RoleId.OWNER or membership.account.depth > 1:
        return
    owners = Membership.objects.select_for_update().filter(account_id=membership.account_id, role=RoleId.OWNER)
    if not any(m.pk != membership.pk for m in owners):
        raise ValidationError(f"{membership.user.email} is the last Owner of {membership.account.name} "
                              f"and cannot {doing}: make someone else Owner first.")


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str, by, staff=None, request=None) -> Membership:
    """``by=None`` is the platform; ``staff``, the staff member acting for it in the admin, is named in the audit
    trail."""
    staff_data = staff_acting(by, staff)
    get_role(role)
    if role == membership.role:
        return membership
    if membership.is_agency or role == RoleId.AGENCY_ADMIN:
        raise ValidationError("Agency users keep the Agency Admin role; remove them to end their access instead.")
    if role == RoleId.OWNER and membership.via_agency:
        raise ValidationError("People who joined through an agency cannot become Owner: invite them directly first.")
    check_may_touch(by, membership)  # may touch who they are now
    check_grant(by, membership.account, role=role)  # and may give what they become
    check_not_last_owner(membership, "be demoted")
    old = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    membership_sync_permissions(membership)
    audit(
        account=membership.account, actor=by or staff, request=request, action="member.role_changed",
        summary=f"{membership.user.email}: {get_role(old).name} → {get_role(role).name}",
        user=membership.user.email, old_role=old, new_role=role, **staff_data,
    )
    return membership


@transaction.atomic
def ownership_transfer(*, account: Account, to: Membership, by, request=None) -> Membership:
    """Make ``to`` an Owner; ``by`` (an Owner) becomes Admin. Agency users, and people an agency added,
    never become Owner."""
    current = Membership.objects.select_for_update().filter(account=account, user=by, role=RoleId.OWNER).first()
    if current is None:
        raise PermissionDenied("Only an Owner of this account can transfer ownership.")
    check_grant(by, account, role=RoleId.OWNER, handover=True)
    to = Membership.objects.select_for_update(of=("self",)).select_related("user").get(pk=to.pk, account=account)
    if to.pk == current.pk:
        raise ValidationError("You already own this account.")
    if to.is_agency or to.via_agency:
        raise ValidationError("People who joined through an agency cannot become Owner: invite them directly "
                              "first.")
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


def descendant_memberships(membership: Membership):
    """The same person's direct memberships in the subaccounts below ``membership``'s account (R4)."""
    account = membership.account
    return (Membership.objects.filter(user_id=membership.user_id, account__path__startswith=account.path,
                                      account__depth__gt=account.depth)
            .select_related("account", "user").order_by("account__path"))


def membership_end(membership: Membership, *, by, request=None, summary: str, **audit_data) -> None:
    """Delete a membership and its rows, audited (``by``, the actor, with ``audit_data``). No rank check: callers
    have authorized it (removal below, or revoking the agency grant it came through)."""
    account = membership.account
    membership.delete()
    membership.pk = None
    membership_sync_permissions(membership)
    audit(account=account, actor=by, request=request, action="member.removed", summary=summary,
          user=membership.user.email, **audit_data)
    webhooks.emit(account, WebhookEvent.MEMBER_REMOVED, {"email": membership.user.email, "role": membership.role})


@transaction.atomic
def membership_remove(*, membership: Membership, by, also=(), staff=None, request=None) -> list[Membership]:
    """Remove ``membership`` and, from ``also``, the same person's memberships in subaccounts below it
    (offboarding is complete: R4). Leaving is always allowed; removing someone needs rank over them in
    each account. Returns every membership removed. ``by=None`` is the platform; ``staff``, the staff member
    acting for it in the admin, is named in the audit trail."""
    staff_data = staff_acting(by, staff)
    leaving = by is not None and by.pk == membership.user_id
    below = {m.pk: m for m in descendant_memberships(membership)}
    extra = []
    for m in also:
        if m.pk not in below:
            raise ValidationError("Only the same person's memberships in subaccounts below can be removed with it.")
        extra.append(below[m.pk])
    for m in (membership, *extra):
        if not leaving:
            check_may_touch(by, m)
        check_not_last_owner(m, "leave" if leaving else "be removed")
    email = membership.user.email
    for m in (membership, *extra):
        membership_end(m, by=by or staff, request=request,
                       summary=f"{email} left the account" if leaving else f"{email} removed", **staff_data)
    return [membership, *extra]


@transaction.atomic
def user_signup(*, email: str, name: str, password: str, account_name: str, request=None,
                email_verified: bool = False):
    """A new person with a new independent account they own (``email_verified``: arrived by a signed link)."""
    from accounts.services import account_create

    from .models import User

    user = User.objects.create_user(email=email, password=password, name=name, email_verified=email_verified)
    account = account_create(name=account_name, owner=user, by=user, request=request)
    user.last_account = account
    user.save(update_fields=["last_account"])
    return user, account
