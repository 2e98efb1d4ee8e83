"""R1: nobody grants what they do not hold.

``check_grant`` is the one function every granting path calls (invitations, bulk invitations, role
changes, agency grant approval and editing, agency settings, the agency baseline, subaccount access
categories, subaccount defaults and limits). It decides three things:

- a role: only if the actor's effective role may assign it (``Role.can_assign``), the actor manages
  members there, every category the role would hold there is within the actor's own level, and a
  delegated actor (an agency user, or anyone whose membership an agency user created) gives at most
  Member or Viewer; the Agency Admin role (it brings an agency in) only from those who govern agency
  access;
- a matrix of category levels: at most what the actor holds there, and at most the structural ceiling
  the caller passes (a parent never gives a child more than it has itself: DESIGN rule 7);
- limits: at most the smallest limit of the account and its ancestors.

``by=None`` is the platform (admin actions, management commands): only structural ceilings apply.
"""

from django.core.exceptions import PermissionDenied, ValidationError

from accounts.access import AccountAccess, resolve_access
from accounts.models import LIMIT_NAMES, Account
from accounts.permissions import Matrix, at_most, compose, matrix_of

from .models import Membership
from .roles import ROLES, RoleId, get_role
from .rows import Caps, role_permissions

DELEGATED_ROLES = frozenset({RoleId.MEMBER, RoleId.VIEWER})
OWNER_MATRIX = matrix_of(ROLES[RoleId.OWNER].permissions)


class GrantRefused(PermissionDenied):
    """Someone tried to give more than they hold."""


def grant_ceiling(access: AccountAccess) -> Matrix:
    """The highest level per category the holder of ``access`` may hand out in its account.

    What they hold there; the direct Owner of a root account holds everything (the only cap on them,
    agency settings, is theirs to set, and the Owner is never locked out of governing it)."""
    if access.is_owner and access.account.depth == 1 and not access.limited:  # never under an API key
        return dict(OWNER_MATRIX)
    return matrix_of(access.permissions)


def matrix_ceiling(access: AccountAccess, structural: Matrix | None = None) -> Matrix:
    """For forms: every category's highest level ``access``'s holder may give, under ``structural`` too."""
    held = grant_ceiling(access)
    return {key: min(level, (structural or {}).get(key, level)) for key, level in held.items()}


def limit_ceiling(lineage) -> dict[str, int | None]:
    """The smallest limit per resource over ``lineage`` (an account and its ancestors); None: no limit."""
    ceiling: dict[str, int | None] = dict.fromkeys(LIMIT_NAMES)
    for account in lineage:
        for name in LIMIT_NAMES:
            value = getattr(account, f"limit_{name}")
            if value is not None and (ceiling[name] is None or value < ceiling[name]):
                ceiling[name] = value
    return ceiling


def _role_refusal(access: AccountAccess, role_id: str, handover: bool = False, caps: Caps | None = None) -> str | None:
    target = get_role(role_id)
    actor = access.role
    if access.is_support:  # support ends by itself: nothing it adds may stay behind it (rule 8)
        return ("Platform support cannot add people or give roles: ask the account's Owner or Admins to invite "
                "whoever needs access.")
    if not access.has("manage_members") and not (handover and access.is_owner):
        return f"Your access in {access.account.name} does not include managing members."
    if access.is_delegated and role_id not in DELEGATED_ROLES:
        return ("Access given through an agency can add people as Member or Viewer only; "
                f"ask the account's Owner to give the {target.name} role.")
    if role_id == RoleId.AGENCY_ADMIN:
        if not access.may_govern_agency:
            return f"Only the Owner or an Admin of {access.account.name} brings an agency in."
        return None
    if not actor.can_assign(target):
        return f"As {actor.name} you cannot grant the {target.name} role."
    would_hold = role_permissions(Membership(account=access.account, role=role_id),
                                  caps or Caps.of(access.account, access.ancestors))
    over = at_most(matrix_of(would_hold), grant_ceiling(access))
    if over:
        return f"A {target.name} here would get more than you hold yourself: {', '.join(over)}."
    return None


def assignable_roles(access: AccountAccess) -> list:
    """The roles ``access``'s holder may give in its account, highest first (for forms; the services
    still call ``check_grant``). Agency Admin is not listed: agency users come in through agency access."""
    caps = Caps.of(access.account, access.ancestors)
    return [r for r in ROLES.values()
            if r.id != RoleId.AGENCY_ADMIN and _role_refusal(access, r.id, caps=caps) is None]


def check_grant(by, account: Account, *, role: str | None = None, matrix: Matrix | None = None,
                structural: Matrix | None = None, limits: dict | None = None,
                access: AccountAccess | None = None, handover: bool = False) -> None:
    """Raise ``GrantRefused`` unless ``by`` may hand out ``role`` / ``matrix`` / ``limits`` in ``account``.

    ``structural`` is a ceiling that holds whoever acts (the parent's own composed categories when
    setting a child's). ``limits`` are checked against the account's own lineage. ``handover``: an Owner
    handing on their own role (ownership transfer) needs no member management (agency settings never
    lock the Owner out of their own account).
    """
    if role is not None:
        try:
            get_role(role)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
    if by is not None:
        access = access or resolve_access(by, account)
        if access is None:
            raise PermissionDenied("You do not have access to this account.")
    else:
        access = None
    if role is not None and access is not None:
        refusal = _role_refusal(access, role, handover)
        if refusal:
            raise GrantRefused(refusal)
    if matrix is not None:
        ceiling = compose(structural, grant_ceiling(access) if access is not None else None)
        over = at_most(matrix, ceiling)
        if over:
            raise GrantRefused(f"You cannot grant more than you hold yourself: {', '.join(over)}.")
    if limits is not None:
        lineage = (*access.ancestors, account) if access is not None else (
            *Account.objects.filter(path__in=account.ancestor_paths), account)
        ceiling = limit_ceiling(lineage)
        # a None given is "no limit": above any finite ceiling (a name not given is not being set)
        over = [f"{name.replace('_', ' ')} at most {ceiling[name]}" for name in LIMIT_NAMES
                if name in limits and ceiling[name] is not None and (limits[name] is None
                                                                      or limits[name] > ceiling[name])]
        if over:
            raise GrantRefused(f"A subaccount cannot get more than this account has itself: {'; '.join(over)}.")


def check_may_touch(by, membership: Membership, *, access: AccountAccess | None = None) -> None:
    """May ``by`` change or remove ``membership`` (who it is now)? The same rank rule as granting that role."""
    if by is None:
        return
    access = access or resolve_access(by, membership.account)
    if access is None:
        raise PermissionDenied("You do not have access to this account.")
    if not access.has("manage_members"):
        raise GrantRefused(f"Your access in {membership.account.name} does not include managing members.")
    if access.is_delegated and membership.role not in DELEGATED_ROLES:
        raise GrantRefused("Access given through an agency can change or remove Members and Viewers only.")
    actor, target = access.role, get_role(membership.role)
    if not actor.can_assign(target):
        raise GrantRefused(f"As {actor.name} you cannot grant the {target.name} role, so you cannot change "
                           "or remove someone who has it.")


def delegation_of(by, account: Account) -> tuple[bool, int | None]:
    """(via_agency, via_grant_id) for something ``by`` creates in ``account``: delegated access passes on."""
    if by is None:
        return False, None
    access = resolve_access(by, account)
    if access is None or not access.is_delegated:
        return False, None
    m = access.effective_membership
    return True, m.via_grant_id

