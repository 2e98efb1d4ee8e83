"""Who has access to an account, and why: every person who reaches it, once, with how, their effective level in
each category and what caps it. Read by the "Who has access" page and its CSV.

The same rules as ``accounts.access.resolve_access``, for many people at once: a person's access is the union of
their permission rows on the account and its ancestors, each capped by the composed access categories of the
account it is held on; agency memberships count on the client account only, while their grant is active. The
rows are written capped by agency settings and a grant's narrowing (``members.rows``), so the levels shown are
what checks allow; the causes are named by comparing the role's levels with each cap.

Queries: the people of one page (and a count), their memberships, their permission rows, the agency settings:
the same whatever the number of people or subaccounts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef, Q

from accounts.models import Account, AccountUserObjectPermission
from accounts.permissions import CATEGORIES, Level, cap, clean_matrix, matrix_of

from .models import Membership, User
from .roles import ROLES

HOW = {"direct": "Direct role", "inherited": "Inherited from above", "agency": "Agency access"}


@dataclass
class Cap:
    category: str
    level: Level  # the level it allows
    cause: str  # "Northwind Agency's access categories", "agency settings", "the grant's narrowing"


@dataclass
class Entry:
    user: User
    how: str  # direct, inherited or agency (of the membership that gives the highest role)
    role: str
    source: str  # the account the effective membership is on ("" when it may not be named: R6)
    source_account: Account | None
    until: object = None  # agency access: the grant's expiry (None: until revoked)
    agency: str = ""
    levels: dict[str, Level] = field(default_factory=dict)
    caps: list[Cap] = field(default_factory=list)
    other_sources: list[str] = field(default_factory=list)

    @property
    def how_label(self) -> str:
        return HOW[self.how]

    @property
    def cells(self) -> list[tuple[str, Level, Cap | None]]:
        by_category = {c.category: c for c in self.caps}
        return [(c.key, self.levels.get(c.key, Level.NONE), by_category.get(c.key)) for c in CATEGORIES]


def lineage_caps(lineage: list[Account]) -> dict[int, dict[str, tuple[Level, Account]]]:
    """Per lineage account: each capped category's level and the account (it or above) that sets it. No query."""
    result, current = {}, {}
    for account in lineage:
        if account.depth > 1 and account.access_categories:
            for key, level in clean_matrix(account.access_categories).items():
                if key not in current or level < current[key][0]:
                    current[key] = (level, account)
        result[account.pk] = dict(current)
    return result


def people_reaching(account: Account, lineage: list[Account], *, how: str = "", q: str = ""):
    """A queryset of the people who reach ``account`` (each once), filtered by how and by name or email."""
    lineage_ids = [a.pk for a in lineage]
    effective = Membership.objects.effective().filter(user=OuterRef("pk"))
    reach = effective.filter(Q(account=account) | Q(account_id__in=lineage_ids[:-1], is_agency=False))
    people = User.objects.filter(Exists(reach))
    if how == "direct":
        people = people.filter(Exists(effective.filter(account=account, is_agency=False)))
    elif how == "inherited":
        people = people.filter(Exists(effective.filter(account_id__in=lineage_ids[:-1], is_agency=False)))
    elif how == "agency":
        people = people.filter(Exists(effective.filter(account=account, is_agency=True)))
    if q:
        people = people.filter(Q(email__icontains=q) | Q(name__icontains=q))
    return people.order_by("email", "pk")


def entries_for(users: list[User], account: Account, lineage: list[Account], *, reader_reaches) -> list[Entry]:
    """One Entry per user (who must reach ``account``). ``reader_reaches(account)``: may the reader see that
    account named (R6: nothing upward)."""
    if not users:
        return []
    from agency.models import AgencySettings

    by_id = {a.pk: a for a in lineage}
    root = lineage[0]
    memberships: dict[int, list[Membership]] = {}
    for m in (Membership.objects.effective().filter(user__in=users, account_id__in=list(by_id))
              .select_related("via_grant", "agency_account")):
        if m.is_agency and m.account_id != account.pk:
            continue  # agency access is not inherited by subaccounts
        m.account = by_id[m.account_id]
        memberships.setdefault(m.user_id, []).append(m)
    rows: dict[tuple[int, int], set[str]] = {}
    for user_id, account_id, code in (AccountUserObjectPermission.objects
                                      .filter(user__in=users, content_object_id__in=list(by_id))
                                      .values_list("user_id", "content_object_id", "permission__codename")):
        rows.setdefault((user_id, account_id), set()).add(code)
    caps = lineage_caps(lineage)
    settings_row = AgencySettings.objects.filter(account=root, enabled=True).first()
    agency_settings = clean_matrix(settings_row.matrix) if settings_row and settings_row.matrix else {}

    def name(a: Account) -> str:
        return a.name if reader_reaches(a) else "an account above"

    entries = []
    for user in users:
        held = memberships.get(user.pk, [])
        if not held:
            continue
        best = max(held, key=lambda m: (ROLES[m.role].priority, m.account_id == account.pk, m.account.depth))
        how = "agency" if best.is_agency else ("direct" if best.account_id == account.pk else "inherited")
        codenames = frozenset().union(*(
            cap(frozenset(rows.get((user.pk, m.account_id), ())),
                {k: lv for k, (lv, _) in caps[m.account_id].items()}) for m in held))
        levels = matrix_of(codenames)
        entry = Entry(user=user, how=how, role=best.get_role_display(), source=name(best.account),
                      source_account=best.account if reader_reaches(best.account) else None, levels=levels)
        if best.is_agency:
            entry.until = best.via_grant.expires_at if best.via_grant else None
            entry.agency = best.agency_account.name if best.agency_account else ""
        entry.other_sources = [f"{m.get_role_display()} in {name(m.account)}" for m in held if m is not best]
        entry.caps = _causes(best, levels, caps[best.account_id], agency_settings, root, name)
        entries.append(entry)
    return entries


def _causes(m: Membership, levels, categories, agency_settings, root, name) -> list[Cap]:
    """Where the effective level is below the role's own, the caps that explain it (lowest first)."""
    role_levels = matrix_of(ROLES[m.role].permissions)
    narrowing = clean_matrix(m.via_grant.matrix) if m.is_agency and m.via_grant and m.via_grant.matrix else {}
    causes = []
    for category in CATEGORIES:
        key = category.key
        if levels.get(key, Level.NONE) >= role_levels.get(key, Level.NONE):
            continue
        found = []
        if key in categories:
            level, setter = categories[key]
            found.append(Cap(key, level, f"{name(setter)}'s access categories"
                             if setter.pk != m.account_id else "its access categories, set by the parent"))
        if not m.is_agency and m.account_id == root.pk and key in agency_settings:  # every non-agency member
            found.append(Cap(key, agency_settings[key], "the agency settings"))
        if key in narrowing:
            found.append(Cap(key, narrowing[key], "the grant's narrowing"))
        if found:
            causes.append(min(found, key=lambda c: c.level))
    return causes
