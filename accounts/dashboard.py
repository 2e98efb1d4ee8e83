"""What the dashboard shows (issue 16 items 2 and 3), each panel only to those who may see what it links to.

A fixed number of queries whatever the tree's size: every figure (counts, minutes from the usage rollup's one
row) in one query of subqueries, subaccounts near a limit from direct children joined to their rollup row
(limited to 5), agency requests and recent activity one query each; all compiled once (``accounts.baked``).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.db.models import Exists, F, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from members.grants import limit_ceiling

from .baked import Baked, row_count
from .models import Account, AuditEvent, NotConversationEvent, subtree_bounds

WARN_AT = 0.8  # a bar turns amber at 80 % of the limit


@dataclass
class Meter:
    used: int
    limit: int | None
    label: str

    @property
    def percent(self) -> int:
        return min(100, round(100 * self.used / self.limit)) if self.limit else 0

    @property
    def high(self) -> int:
        """Where a <meter> turns amber."""
        return int(WARN_AT * self.limit) if self.limit else 0

    @property
    def state(self) -> str:
        if not self.limit:
            return ""
        return "over" if self.used >= self.limit else ("near" if self.used >= WARN_AT * self.limit else "")


@dataclass
class LimitMeter(Meter):
    """A limit on the Limits tab: what is used against it, and what stops once it is reached."""

    reached: str = ""  # what stops at 100 %
    note: str = ""  # what ``used`` holds beyond the obvious

    @property
    def full_from(self) -> float:
        """Where a <meter> turns red: a <meter> is red above its ``high``, and the counts are whole numbers,
        so half a unit below the limit makes it red exactly at the limit and amber from ``high`` (80 %)."""
        return self.limit - 0.5 if self.limit else 0


@dataclass
class Step:
    key: str
    label: str
    done: bool
    url: str


@dataclass
class Panels:
    minutes: Meter | None = None
    minutes_used: int = 0  # the subtree's, as the tree is now (the pool's meter adds ``departed``)
    departed: int = 0  # minutes of subaccounts that left this month, which the pool still counts
    plan_meter: Meter | None = None
    blocked: int | None = None
    near_limit: list = field(default_factory=list)
    pending_invitations: int | None = None
    agency_requests: list = field(default_factory=list)
    expiring_grants: list = field(default_factory=list)
    recent: list = field(default_factory=list)
    checklist: list[Step] = field(default_factory=list)

    @property
    def checklist_open(self) -> bool:
        return bool(self.checklist) and not all(s.done for s in self.checklist)


def _count(qs):
    """``SELECT COUNT(*)`` of ``qs`` as a column of another query (no GROUP BY: one row whatever matches)."""
    return Subquery(qs.order_by().values(n=row_count()))


def _figures_query(account_id, low, high, period, now, *, parts):
    """One row: each figure of ``parts`` the dashboard shows, as a subquery on its own index."""
    from agency.models import AgencyGrant
    from billing.models import UsageRollup
    from members.models import Invitation, Membership
    from workspace.models import Agent

    figures = {
        "members": lambda: _count(Membership.objects.filter(account_id=account_id)),
        "all_subaccounts": lambda: _count(Account.objects.filter(path__gt=low, path__lte=high)),
        "used": lambda: Subquery(UsageRollup.objects.filter(account_id=account_id, period=period)
                                 .values("subtree_minutes")[:1]),
        # (minutes of subaccounts that used the pool this period and have left: the pool still counts them)
        "departed": lambda: Subquery(UsageRollup.objects.filter(account_id=account_id, period=period)
                                     .values("departed_minutes")[:1]),
        # (the subtree's calls blocked by a limit this period: one row, however many accounts and calls)
        "blocked": lambda: Coalesce(Subquery(UsageRollup.objects.filter(account_id=account_id, period=period)
                                             .values("subtree_blocked")[:1]), Value(0)),
        "invitations": lambda: _count(Invitation.objects.filter(
            account_id=account_id, status=Invitation.Status.PENDING, expires_at__gt=now)),
        "has_agent": lambda: Exists(Agent.objects.filter(account_id=account_id)),
        "is_agency": lambda: Exists(AgencyGrant.objects.filter(agency_id=account_id)),
    }
    # (named apart from the model's fields and relations: ``members``, ``invitations``…)
    return Account.objects.filter(pk=account_id).order_by().values(**{f"fig_{name}": figures[name]() for name in parts})


def _grants_query(client_id, now, soon):
    from agency.models import AgencyGrant

    return (AgencyGrant.objects.filter(Q(status="requested") | Q(status="active", expires_at__gt=now,
                                                                   expires_at__lte=soon), client_id=client_id)
            .select_related("agency").order_by("created_at")[:10])


def _near_limit_query(parent_id, period):
    # (what the pool has given: its subtree's minutes and those of subaccounts that left it this period)
    return (Account.objects.filter(parent_id=parent_id, limit_minutes__gt=0, usage_rollups__period=period)
            .annotate(used=F("usage_rollups__subtree_minutes") + F("usage_rollups__departed_minutes"))
            .filter(used__gte=F("limit_minutes") * WARN_AT).order_by("-used")[:5])


# Every dashboard asks these: compiled once (``accounts.baked``).
_figures = Baked(_figures_query)
_grants = Baked(_grants_query)
_near_limit = Baked(_near_limit_query)
_recent = Baked(lambda account_id: AuditEvent.objects.filter(NotConversationEvent(), account_id=account_id)
                .order_by("-created_at", "-id")[:10])


def dashboard_figures(access, *, period: datetime.date | None = None) -> tuple[dict, Panels]:
    """The dashboard's counts (members, direct and all subaccounts) and its panels, each panel only for those who
    may see what it links to: the figures in one query, then the lists shown (near-limit subaccounts, agency
    requests, recent activity), each one query."""
    from django.urls import reverse

    from billing.models import period_start

    account = access.account
    period = period or period_start()
    can = access.can
    panels = Panels()
    kwargs = {"account_id": account.public_id}
    shows_minutes = bool(can.get("view_usage") or can.get("view_billing"))
    checklist = account.is_root() and can.get("manage_settings") and account.onboarding_dismissed_at is None
    parts = ["members", "all_subaccounts"]
    parts += ["used", "departed"] if shows_minutes else []
    parts += ["blocked"] if can.get("view_conversations") else []
    parts += ["invitations"] if can.get("manage_members") else []
    parts += ["has_agent", "is_agency"] if checklist else []
    now = timezone.now()
    low, high = subtree_bounds(account.path)
    row = {name[4:]: value for name, value in
           _figures(account.pk, low, high, period, now, parts=tuple(parts))[0].items()}
    # (direct subaccounts: the account's numchild, which every service that adds, moves or deletes one keeps)
    counts = {"members": row["members"], "subaccounts": account.numchild, "all_subaccounts": row["all_subaccounts"]}
    plan = None
    if shows_minutes:
        used = row["used"] or 0
        pool = limit_ceiling([*access.ancestors, account])["minutes"]
        panels.minutes_used, panels.departed = used, (row["departed"] or 0) if pool else 0
        panels.minutes = Meter(used + panels.departed, pool, "minutes pool" if pool else "")
        if account.is_root():
            plan = access.plan
            if plan is not None and plan.included_minutes:
                panels.plan_meter = Meter(used, plan.included_minutes, f"included in {plan.name}")
    panels.blocked = row.get("blocked")
    if can.get("view_subaccounts") and account.numchild:
        panels.near_limit = _near_limit(account.pk, period)
    panels.pending_invitations = row.get("invitations")
    if account.is_root() and access.may_govern_agency:
        grants = _grants(account.pk, now, now + datetime.timedelta(days=14))
        panels.agency_requests = [g for g in grants if g.status == "requested"]
        panels.expiring_grants = [g for g in grants if g.status == "active"]
    if access.may_read_audit:
        panels.recent = _recent(account.pk)
    if checklist:
        plan = plan if plan is not None else access.plan
        invited = panels.pending_invitations or counts["members"] > 1
        reaches_others = account.numchild > 0 or row["is_agency"]
        panels.checklist = [
            Step("plan", "Choose a plan", plan is not None and not plan.is_default,
                 reverse("billing:plans", kwargs=kwargs)),
            Step("customers", "Create a first subaccount, or ask a client for agency access", reaches_others,
                 reverse("accounts:subaccount-list", kwargs=kwargs)),
            Step("team", "Invite a teammate", bool(invited), reverse("members:list", kwargs=kwargs)),
            Step("agent", "Create an agent", row["has_agent"], reverse("workspace:agent-list", kwargs=kwargs)),
        ]
    return counts, panels
