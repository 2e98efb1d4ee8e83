"""Effective access of a person in an account.

DESIGN rule 4: permission on an account is the union of the person's permission rows
on the account and on its ancestors (downward inheritance, rule 1), resolved with a
constant number of queries whatever the depth, and cached on the user object for the
request, as Django's ModelBackend caches its permission set.
"""

from dataclasses import dataclass, field, replace
from functools import cached_property

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connections
from django.db.models import F, FilteredRelation, Func, OuterRef, Q, Subquery, TextField
from django.db.models.expressions import RawSQL
from django.http import Http404

from members.models import Membership
from members.roles import get_role

from .baked import Baked
from .models import Account, AccountUserObjectPermission, subtree_q
from .params import uuid_or_none
from .permissions import CATEGORY_BY_KEY, PERM_BY_CODENAME, Matrix, cap, clean_matrix, compose, matrix_of

_CACHE_ATTR = "_account_access_cache"
_BY_PUBLIC_ID_ATTR = "_account_by_public_id_cache"
# What every account page reads of each account of the lineage besides the account itself: its security policy
# (``security.middleware``, ``security.policy.effective_policy``), and the root's plan (``AccountAccess.plan``:
# the dashboard, the subaccount pages, billing), joined when the lineage is loaded here rather than fetched again
# per request.
LINEAGE_RELATED = ("security_policy", "subscription__plan")


class _Codenames(Func):
    """The codenames of the permission rows a subquery selects, comma-joined in one value (codenames are
    ``[a-z_]``), or NULL when there is none; selected alone it makes one row whatever matches (as ``row_count``)."""

    function = "STRING_AGG"
    template = "%(function)s(%(expressions)s, ',')"
    output_field = TextField()

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, function="GROUP_CONCAT", **extra)


def _lineage_support(here: bool) -> dict:
    from security.policy import support_window_annotations  # (security reads accounts: imported when compiled)

    return support_window_annotations(here=here)


def _codenames(user_id, account_id):
    """The codenames of the person's permission rows on the account, comma-joined (NULL: none)."""
    return Subquery(AccountUserObjectPermission.objects.filter(user_id=user_id, content_object_id=account_id)
                    .order_by().annotate(codes=_Codenames("permission__codename")).values("codes")[:1])


# The person's membership on an account, joined to the account's row (a person holds at most one membership per
# account: ``membership_unique_user_account``), one column per field, so that loading an account for a page also
# loads what the person holds there.
_MEMBERSHIP_COLUMNS = tuple(f.attname for f in Membership._meta.concrete_fields)
_JOINED = "_joined_membership"  # on an Account loaded with a person's membership: (the person's id, it or None)


def _with_membership_of(queryset, user_id):
    mine = FilteredRelation("memberships", condition=Q(memberships__user_id=user_id))
    return queryset.annotate(viewer_m=mine).annotate(
        **{f"viewer_m_{name}": F(f"viewer_m__{name}") for name in _MEMBERSHIP_COLUMNS},
        viewer_m_codenames=_codenames(user_id, OuterRef("pk")))


def _joined(accounts: list[Account], user_id) -> list[Account]:
    """Each account (loaded by ``_with_membership_of``) with the person's membership on it kept under ``_JOINED``,
    its columns dropped from the instance."""
    for a in accounts:
        values = [a.__dict__.pop(f"viewer_m_{name}") for name in _MEMBERSHIP_COLUMNS]
        codenames = a.__dict__.pop("viewer_m_codenames")
        membership = None
        if values[0] is not None:
            membership = Membership.from_db(a._state.db, _MEMBERSHIP_COLUMNS, values)
            membership.permission_codenames = codenames
        a.__dict__[_JOINED] = (user_id, membership)
    return accounts


# The hot path's queries, compiled once (``accounts.baked``): every account page makes them. The lineage comes
# with each account's security policy, the platform support window that applies to it and the person's membership
# on it with the codenames of their permission rows there, so an account page resolves access and its security
# policy in one query, at any depth.
_account_by_public_id = Baked(lambda public_id, user_id: _with_membership_of(
    Account.objects.filter(public_id=public_id).select_related(*LINEAGE_RELATED)
    .annotate(**_lineage_support(here=True)), user_id).order_by("pk")[:1])
_accounts_by_path = Baked(lambda paths, user_id: _with_membership_of(
    Account.objects.filter(path__in=paths).select_related(*LINEAGE_RELATED)
    .annotate(**_lineage_support(here=False)), user_id).order_by("depth"))


def _lineage_paths(public_id, levels: int) -> RawSQL:
    """The paths of the account with ``public_id`` and of its ancestors: its path's first ``STEPLEN``, ``2 *
    STEPLEN``… characters (``levels`` of them; a prefix longer than the path is the path), each an equality
    lookup on the path index."""
    table = Account._meta.db_table
    lengths = ", ".join(f"({Account.steplen * k})" for k in range(1, max(levels, 1) + 1))
    value = Account._meta.get_field("public_id").get_db_prep_value(public_id, connections["default"])
    return RawSQL(f'SELECT SUBSTR(t."path", 1, n.column1) FROM "{table}" t CROSS JOIN (VALUES {lengths}) n '
                  'WHERE t."public_id" = %s', [value])


# The account of a URL with its ancestors, root first, in one query: each row carries both support windows (the
# account keeps the one that applies here, an ancestor the one that reaches below it).
_lineage_by_public_id = Baked(lambda public_id, user_id, *, levels: _with_membership_of(
    Account.objects.filter(path__in=_lineage_paths(public_id, levels)).select_related(*LINEAGE_RELATED)
    .annotate(**_lineage_support(here=True), **_lineage_support(here=False)), user_id).order_by("depth"))
_LINEAGE = "_joined_lineage"  # on an Account loaded by ``_lineage_by_public_id``: (the person's id, its ancestors)
_HERE, _ABOVE = ("support_level_here", "support_until_here"), ("support_level_above", "support_until_above")


def _account_with_lineage(public_id, user) -> Account | None:
    """The account with ``public_id`` (None: none), its ancestors and the person's memberships on the lineage kept
    on it for ``_resolve``. One query; two when the lineage read is not whole (a tree deeper than
    ``ACCOUNT_MAX_DEPTH`` says, after the setting was lowered)."""
    rows = _joined(_lineage_by_public_id(public_id, user.pk, levels=settings.ACCOUNT_MAX_DEPTH), user.pk)
    account = rows[-1] if rows and rows[-1].public_id == public_id else None
    if account is None:
        return None if len(rows) < settings.ACCOUNT_MAX_DEPTH else _account_only(public_id, user)
    for row in rows:
        for name in _ABOVE if row is account else _HERE:
            del row.__dict__[name]
    if [a.depth for a in rows] != list(range(1, account.depth + 1)):  # (defensive: a tree missing a level)
        return _account_only(public_id, user)
    account.__dict__[_LINEAGE] = (user.pk, tuple(rows[:-1]))
    return account


def _account_only(public_id, user) -> Account | None:
    return next(iter(_joined(_account_by_public_id(public_id, user.pk), user.pk)), None)


# The person's memberships on accounts loaded without them (by a service, say).
_memberships_in = Baked(lambda user_id, account_ids: Membership.objects.filter(
    user_id=user_id, account_id__in=account_ids).annotate(permission_codenames=_codenames(
        OuterRef("user_id"), OuterRef("account_id"))))


@dataclass(frozen=True)
class AccountAccess:
    account: Account
    ancestors: tuple[Account, ...]  # root first, parent last
    memberships: tuple[Membership, ...]  # the person's, on this account or an ancestor
    permissions: frozenset[str] = field(default_factory=frozenset)
    # Platform staff here through an account's consented support access (``register_access_source``): the grant.
    # Its membership is not stored (no pk); such access is delegated: it never grants, governs or sets policy.
    support: object | None = None
    # Limited by an AccessCeiling (an API key): what it may hand out is what it holds, nothing more.
    limited: bool = False

    @property
    def is_support(self) -> bool:
        return self.support is not None

    def has(self, *codenames: str) -> bool:
        return all(c in self.permissions for c in codenames)

    def require(self, *codenames: str) -> None:
        """Raise PermissionDenied naming what is missing and why (the one refusal views and services share)."""
        missing = [c for c in codenames if c not in self.permissions]
        if missing:
            raise PermissionDenied(self.explain(missing))

    def explain(self, missing: list[str]) -> str:
        """Why the person lacks ``missing`` here, and who can change it: their role, or the cap that removed it
        (the access categories a parent set, the grant's narrowing, the agency settings). Queries only when
        refusing. Names no account above that the person does not reach (R6)."""
        labels = ", ".join(PERM_BY_CODENAME[c].label.lower() for c in missing)
        m = self.effective_membership
        role = get_role(m.role)
        if any(c not in role.permissions for c in missing):
            where = m.account.name
            return (f"Your role in {self.account.name} does not allow this ({labels}). Your role comes from "
                    f"{where}: its Owner or Admins can change it.")
        category = CATEGORY_BY_KEY[PERM_BY_CODENAME[missing[0]].category]
        level = matrix_of(self.permissions)[category.key].label.lower()
        if level == "none":
            level = "not available"
        elif level == "read":
            level = "read-only"
        lineage = [a for a in (*self.ancestors, self.account) if a.depth <= m.account.depth]
        capped = [a for a in lineage if a.depth > 1 and category.key in clean_matrix(a.access_categories or {})
                  and clean_matrix(a.access_categories)[category.key] < PERM_BY_CODENAME[missing[0]].level]
        if capped:
            setter = capped[0]
            parent = next((a for a in lineage if a.depth == setter.depth - 1), None)
            above = parent.name if parent is not None and self.reaches(parent) else "the account above"
            return (f"{category.label} is {level} here ({labels}): {above} limits what {setter.name}'s members "
                    f"can do. Its Owner or Admins can change that.")
        if m.is_agency:
            agency = m.agency_account.name if m.agency_account_id else "your agency"
            return (f"{category.label} is {level} for {agency} here ({labels}): {self.account.name} narrowed "
                    "its agency access. Its Owner can change that under Agency access.")
        if m.account.depth == 1 and not m.is_agency:
            from agency.models import AgencySettings

            settings_row = AgencySettings.objects.filter(account=m.account, enabled=True).first()
            if settings_row and category.key in (settings_row.matrix or {}):
                return (f"{category.label} is {level} here ({labels}): while agency access is on, "
                        f"{m.account.name}'s agency settings limit what its own members can do. Its Owner can "
                        "change them under Agency access.")
        return f"Your role in {self.account.name} does not allow this ({labels})."

    @cached_property
    def can(self) -> dict[str, bool]:
        """For templates: ``{% if can.manage_agents %}``."""
        can = dict.fromkeys(self.permissions, True)
        if self.may_read_audit:
            can["view_audit_log"] = True  # R7
        return can

    @cached_property
    def direct_membership(self) -> Membership | None:
        return next((m for m in self.memberships if m.account_id == self.account.pk), None)

    @cached_property
    def effective_membership(self) -> Membership:
        """The membership that gives the highest role here (own account wins ties)."""
        return max(
            self.memberships,
            key=lambda m: (get_role(m.role).priority, m.account_id == self.account.pk, m.account.depth),
        )

    @cached_property
    def suspended_at(self) -> Account | None:
        """The suspended account on the path to here (this one or an ancestor), if any."""
        return next((a for a in (*self.ancestors, self.account) if a.is_suspended), None)

    @property
    def is_locked_out(self) -> bool:
        """Suspended, and the person reaches it only from inside the suspended part.
        People of the parent above it keep working (they suspended it)."""
        held = self.suspended_at
        return held is not None and not any(m.account.depth < held.depth for m in self.memberships)

    @property
    def role(self):
        return get_role(self.effective_membership.role)

    @property
    def is_agency(self) -> bool:
        """Here as an agency user (through an active agency grant)."""
        return self.effective_membership.is_agency

    @property
    def is_owner(self) -> bool:
        """A direct Owner of this account: can always see and revoke agency access."""
        m = self.direct_membership
        return m is not None and m.role == "owner" and not self.is_support

    @property
    def is_delegated(self) -> bool:
        """Here through an agency: as an agency user, or through a membership an agency user created.
        Delegated access never governs agency access and hands out at most Member or Viewer (R1, R2)."""
        m = self.effective_membership
        return self.is_support or m.is_agency or m.via_agency

    @property
    def may_govern_agency(self) -> bool:
        """R2: approve, decline, narrow, extend or revoke agency access and edit agency settings. The
        client's direct Owner always may (whatever the agency settings say); otherwise only a direct,
        non-agency Admin whose membership no agency user created, holding member management."""
        m = self.direct_membership
        if m is None or m.is_agency or m.via_agency or self.is_support:
            return False
        return m.role == "owner" or (m.role == "admin" and self.has("manage_members"))

    @property
    def may_read_audit(self) -> bool:
        """R7: the Owner can always read the account's audit trail, whatever the agency settings say."""
        return self.is_owner or self.has("view_audit_log")

    @cached_property
    def categories(self):
        """The account's composed access categories (its own and every ancestor's; DESIGN rule 7). No query."""
        return compose(*(clean_matrix(a.access_categories) for a in (*self.ancestors, self.account)
                         if a.depth > 1 and a.access_categories))

    def reaches(self, other: Account) -> bool:
        """Does the person reach ``other``, an ancestor of this account (or this account)? No query. Texts
        name an account above only for people who reach it (R6: nothing upward)."""
        return any(other.pk == m.account_id if m.is_agency else other.path.startswith(m.account.path)
                   for m in self.memberships)

    @cached_property
    def plan(self):
        """The plan that governs this account and every account below it (``billing.selectors.plan_for``): its
        root's, as loaded with the lineage when the access was resolved (no query), so as of the start of the
        request: for what a page shows. Code that changes a plan, or acts on it under a lock (creating a subaccount:
        ``accounts.services.subaccount_refusal``), reads it again with ``plan_for``."""
        root = self.ancestors[0] if self.ancestors else self.account
        if root.depth == 1 and Account.subscription.is_cached(root):
            subscription = Account.subscription.related.get_cached_value(root)
            return subscription.plan if subscription is not None else None
        from billing.selectors import plan_for

        return plan_for(root)

    @property
    def is_inherited(self) -> bool:
        return self.effective_membership.account_id != self.account.pk

    @property
    def inherited_from(self) -> Account | None:
        return self.effective_membership.account if self.is_inherited else None


_ACCESS_SOURCES = []


def register_access_source(source):
    """Another way in for people without a membership: ``source(user, account, ancestors)`` returns an
    AccountAccess or None. Asked only for platform staff who hold no membership on the lineage (security's
    consented support access registers one), so it costs nothing to anyone else."""
    _ACCESS_SOURCES.append(source)
    return source


@dataclass(frozen=True)
class AccessCeiling:
    """The most a person may do while acting through a credential of one account (an API key).

    Set as ``user.access_ceiling`` for the request: the person then reaches only ``account`` and its
    descendants, holds there at most what they hold in ``account`` itself, capped by ``scopes`` (a
    matrix; empty caps nothing). ``label`` names the credential in the audit trail."""

    account: Account
    scopes: Matrix
    label: str

    def covers(self, account: Account) -> bool:
        return account.path.startswith(self.account.path)


def _limited(access: AccountAccess | None, home: AccountAccess | None, ceiling: AccessCeiling):
    if access is None or home is None or not ceiling.covers(access.account):
        return None
    return replace(access, permissions=cap(access.permissions & home.permissions, ceiling.scopes), limited=True)


def resolve_access(user, account: Account) -> AccountAccess | None:
    """The person's access in ``account``, or None when they cannot reach it.

    Two queries whatever the depth (the ancestors; the memberships, each with the codenames of the person's
    permission rows on its account), none for the ancestors of a top-level account, none at all for the URL's
    account (``access_or_404`` loads its lineage with the person's memberships and rows in one query), and one
    more for agency users (whether their agency memberships are in force: ``effective_among``); cached on ``user``
    so a request pays them once per account. Under an ``access_ceiling`` (an API key) the answer is limited by it
    (``AccessCeiling``).
    """
    if not user.is_authenticated or not user.is_active:
        return None
    cache = user.__dict__.setdefault(_CACHE_ATTR, {})
    if account.pk in cache:
        return cache[account.pk]
    ceiling = getattr(user, "access_ceiling", None)
    if ceiling is None:
        cache[account.pk] = _resolve(user, account)
        return cache[account.pk]
    if not ceiling.covers(account):
        cache[account.pk] = None
        return None
    raw = user.__dict__.setdefault(_CACHE_ATTR + "_raw", {})
    for a in {account.pk: account, ceiling.account.pk: ceiling.account}.values():
        if a.pk not in raw:
            raw[a.pk] = _resolve(user, a)
    cache[account.pk] = _limited(raw[account.pk], raw[ceiling.account.pk], ceiling)
    return cache[account.pk]


def _resolve(user, account: Account) -> AccountAccess | None:
    lineage_for, ancestors = account.__dict__.pop(_LINEAGE, (None, ()))
    if lineage_for != user.pk or user.pk is None:  # (loaded for a page of this person: ``access_or_404``)
        ancestors = tuple(_joined(_accounts_by_path(account.ancestor_paths, user.pk), user.pk)) if (
            account.depth > 1) else ()
    by_id = {a.pk: a for a in (*ancestors, account)}
    found = [m for a in ancestors if (m := a.__dict__.pop(_JOINED)[1]) is not None]
    # The account's own membership: joined when it was loaded for this person (``access_or_404``, which drops it
    # once resolved, so a later resolution, for anyone, reads it again), else read now.
    joined_for, own = account.__dict__.pop(_JOINED, (None, None))
    if joined_for == user.pk and user.pk is not None:
        found += [own] if own is not None else []
    else:
        found += _memberships_in(user.pk, [account.pk])
    # Effective memberships only: an agency membership counts while its grant is active, and
    # only on the client account itself (agency access is not inherited by subaccounts).
    memberships = tuple(
        m for m in Membership.objects.effective_among(found)
        if not (m.is_agency and m.account_id != account.pk)
    )
    access = None
    if memberships:
        for m in memberships:
            m.account = by_id[m.account_id]  # no query per membership
        # Rows are written capped (members.rows); the composed categories of each account they are held on
        # apply again here (no query), so a row written before a cap above it changed can never exceed it.
        caps, composed = {}, {}
        for a in (*ancestors, account):
            if a.depth > 1 and a.access_categories:
                composed = compose(composed, clean_matrix(a.access_categories))
            caps[a.pk] = composed
        codenames = frozenset().union(*(cap(frozenset(m.permission_codenames.split(",")), caps[m.account_id])
                                        for m in memberships if m.permission_codenames))
        access = AccountAccess(account, ancestors, memberships, codenames)
    elif user.is_staff:
        access = next(filter(None, (source(user, account, ancestors) for source in _ACCESS_SOURCES)), None)
    return access


def access_or_404(user, public_id) -> AccountAccess:
    """The URL's account with the person's access; 404 when it is not theirs to reach (rule 5)."""
    # Cached on the user like the access itself: middleware that looks at the URL's account before the view
    # (security policies) and the view share one lookup.
    found = user.__dict__.setdefault(_BY_PUBLIC_ID_ATTR, {})
    key = str(public_id)
    if key not in found:
        parsed = uuid_or_none(public_id)  # (not an account ID at all: no account)
        found[key] = _account_with_lineage(parsed, user) if parsed else None
    account = found[key]
    access = resolve_access(user, account) if account else None
    # What came with the account was for this resolution (or a cached one): dropped. Defensive: the loaded object
    # is reachable only through this person's lookup cache, whose later calls find their access cached.
    if account is not None:
        account.__dict__.pop(_JOINED, None)
        account.__dict__.pop(_LINEAGE, None)
    if access is None:
        raise Http404("No such account.")
    return access


def require(by, account: Account, *codenames: str) -> None:
    """Services call this with their ``by``: a person must hold the codenames in the account (after
    every cap: access categories, agency settings, narrowing). ``by=None`` is the platform itself
    (admin actions, management commands). Cached per request, so a view's earlier check costs nothing."""
    if by is None:
        return
    access = resolve_access(by, account)
    if access is None:
        raise PermissionDenied("You do not have access to this account.")
    access.require(*codenames)


def accounts_holding(user, account: Account, codename: str) -> list[Account]:
    """``account`` and those of its descendants where ``user`` holds ``codename``, by path (``account`` first);
    empty when they do not hold it in ``account`` itself. Never an account outside the subtree (no parent, no
    sibling, no other tenant).

    The same rules as ``resolve_access``, for a whole subtree at once: rows held on the lineage reach every
    descendant unchanged (DESIGN rule 1), memberships inside the subtree add theirs, capped by the composed
    categories of the account where they are held; an agency membership counts on its own account only. Three
    queries after ``resolve_access`` (descendants, memberships, rows), whatever the subtree's size. Support access
    and API-key ceilings, rare here, are resolved account by account."""
    access = resolve_access(user, account)
    if access is None or not access.has(codename):
        return []
    below = list(account.descendants().order_by("path"))
    if not below:
        return [account]
    if access.is_support or access.limited:
        return [account, *(a for a in below if (x := resolve_access(user, a)) is not None and x.has(codename))]
    lineage = (*access.ancestors, account)
    by_id = {a.pk: a for a in (*lineage, *below)}
    memberships = [m for m in Membership.objects.effective().filter(user=user).filter(
        Q(account_id__in=[a.pk for a in lineage]) | subtree_q(account.path, "account__path")) if m.account_id in by_id]
    held_on = {aid for aid in AccountUserObjectPermission.objects.filter(
        user=user, content_object_id__in=[m.account_id for m in memberships], permission__codename=codename,
    ).values_list("content_object_id", flat=True)}
    caps, composed_at = {}, {}
    for a in (*lineage, *below):  # by depth along each branch: a parent comes before its children
        above = composed_at.get(a.path[: -a.steplen], {}) if a.depth > 1 else {}
        composed_at[a.path] = compose(above, clean_matrix(a.access_categories)) if (
            a.depth > 1 and a.access_categories) else above
        caps[a.pk] = composed_at[a.path]
    giving = [(by_id[m.account_id], m.is_agency) for m in memberships
              if m.account_id in held_on and cap(frozenset({codename}), caps[m.account_id])]

    def holds(target: Account) -> bool:
        # An agency membership counts on its own account only; any other reaches everything below it.
        return any(source.pk == target.pk if is_agency else target.path.startswith(source.path)
                   for source, is_agency in giving)

    return [account, *(a for a in below if holds(a))]
