"""django-guardian rows: what each membership holds in its own account, after every cap.

The only writer of ``AccountUserObjectPermission``. Services call it whenever a membership, a
subaccount's access categories, agency settings or an agency grant change. Inheritance down the
tree is resolved at check time (``accounts.access``), never by copying rows into descendants.
"""

from dataclasses import dataclass

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType

from accounts.baked import Baked
from accounts.models import Account, AccountUserObjectPermission
from accounts.permissions import Matrix, cap, clean_matrix, compose

from .models import Membership
from .roles import get_role


def _agency_settings_query(account_id):
    from agency.models import AgencySettings  # (agency reads members)

    return AgencySettings.objects.filter(account_id=account_id, enabled=True).order_by("pk").values_list("matrix")[:1]


def _grant_matrices_query(account_id):
    from agency.models import AgencyGrant

    return AgencyGrant.objects.filter(client_id=account_id, status__in=["requested", "active"]).values_list(
        "agency_id", "matrix")


# Read by every sync of a root account's rows and by the Members page: compiled once (``accounts.baked``).
_agency_settings, _grant_matrices = Baked(_agency_settings_query), Baked(_grant_matrices_query)


def own_categories(account: Account) -> Matrix:
    """The access categories the parent set on this account (roots have none)."""
    return clean_matrix(account.access_categories) if account.depth > 1 and account.access_categories else {}


def composed_categories(account: Account, ancestors=None) -> Matrix:
    """DESIGN rule 7: the account's effective categories, the minimum of its own and every ancestor's.

    ``ancestors`` (root first) saves the query when the caller already has them.
    """
    if account.depth <= 2 and ancestors is None:
        return own_categories(account)  # a level-2 account's only ancestor is a root, which has none
    if ancestors is None:
        ancestors = Account.objects.filter(path__in=account.ancestor_paths[1:]).only("path", "depth",
                                                                                      "access_categories")
    return compose(*(own_categories(a) for a in ancestors), own_categories(account))


@dataclass(frozen=True)
class Caps:
    """What caps the memberships of one account, read once per sync."""

    categories: Matrix  # composed access categories: cap the account's own members (rules 2 and 7)
    agency_settings: dict | None  # while agency access is on: caps every non-agency member, Owner included
    grant_matrices: dict  # agency account id -> the client's narrowing of that agency's access

    @classmethod
    def of(cls, account: Account, ancestors=None) -> "Caps":
        if account.depth > 1:  # agency access joins root accounts only
            return cls(composed_categories(account, ancestors), None, {})
        settings_row = next(iter(_agency_settings(account.pk)), None)
        return cls({}, settings_row[0] if settings_row else None,
                   {agency_id: matrix for agency_id, matrix in _grant_matrices(account.pk)})


def role_permissions(membership: Membership, caps: Caps | None = None) -> frozenset[str]:
    """The codenames a membership holds in its own account: its role's, capped by
    - the composed access categories of a subaccount (its own and every ancestor's), for its own members;
    - the client's agency settings, for every non-agency member while agency access is on (rule 3);
    - the client's narrowing of the agency's grant, for agency members."""
    caps = caps or Caps.of(membership.account)
    codenames = cap(get_role(membership.role).permissions, caps.categories)
    if membership.is_agency:
        codenames = cap(codenames, clean_matrix(caps.grant_matrices.get(membership.agency_account_id) or {}))
    elif caps.agency_settings:
        codenames = cap(codenames, clean_matrix(caps.agency_settings))
    return codenames


def _apply(desired: set[tuple[int, int, str]], existing: dict[tuple[int, int, str], int]) -> None:
    stale = [pk for key, pk in existing.items() if key not in desired]
    if stale:
        AccountUserObjectPermission.objects.filter(pk__in=stale).delete()
    missing = desired - existing.keys()
    if missing:
        perms = dict(Permission.objects.filter(content_type=ContentType.objects.get_for_model(Account),
                                               codename__in={c for _, _, c in missing})
                     .values_list("codename", "pk"))
        AccountUserObjectPermission.objects.bulk_create([
            AccountUserObjectPermission(user_id=uid, content_object_id=aid, permission_id=perms[code])
            for uid, aid, code in missing
        ], batch_size=1000)


def account_sync_permissions(account: Account, *, subtree: bool = False) -> None:
    """Re-sync every membership of ``account`` (after its caps changed); with ``subtree``, of every
    account below it too (their composed categories include this one's). A handful of queries whatever
    the subtree's size."""
    if not subtree:
        accounts = [account]
        memberships = list(Membership.objects.filter(account=account))
        rows = AccountUserObjectPermission.objects.filter(content_object=account)
    else:
        accounts = [account, *account.descendants().only("pk", "path", "depth", "access_categories")
                    .order_by("depth")]
        memberships = list(Membership.objects.filter(account__path__startswith=account.path,
                                                     account__depth__gte=account.depth))
        rows = AccountUserObjectPermission.objects.filter(content_object__path__startswith=account.path,
                                                          content_object__depth__gte=account.depth)
    caps_by_path = {account.path: Caps.of(account)}
    for a in accounts[1:]:  # parents come first (ordered by depth)
        parent = caps_by_path[a.path[: -Account.steplen]]
        caps_by_path[a.path] = Caps(compose(parent.categories, own_categories(a)), None, {})
    by_pk = {a.pk: a for a in accounts}
    desired = set()
    for m in memberships:
        m.account = by_pk[m.account_id]
        desired.update((m.user_id, m.account_id, code)
                       for code in role_permissions(m, caps_by_path[m.account.path]))
    existing = {(uid, aid, code): pk for uid, aid, code, pk in
                rows.values_list("user_id", "content_object_id", "permission__codename", "pk")}
    _apply(desired, existing)


def membership_sync_permissions(membership: Membership) -> None:
    """Make the person's permission rows on the membership's account match its role.

    Writes only the difference; removes every row when the membership is gone.
    """
    account = membership.account
    desired = {(membership.user_id, account.pk, code)
               for code in (role_permissions(membership) if membership.pk else ())}
    rows = AccountUserObjectPermission.objects.filter(user_id=membership.user_id, content_object=account)
    existing = {(membership.user_id, account.pk, code): pk
                for code, pk in rows.values_list("permission__codename", "pk")}
    _apply(desired, existing)
