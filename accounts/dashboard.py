"""What the dashboard shows (issue 16 items 2 and 3), each panel only to those who may see what it links to.

A fixed number of queries whatever the tree's size: minutes come from the usage rollup (one row), subaccounts
near a limit from direct children joined to their rollup row (limited to 5), counts are single aggregates.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.db.models import F, Q
from django.utils import timezone

from members.grants import limit_ceiling

from .models import Account, AuditEvent, subtree_q

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


def dashboard_panels(access, *, members: int, period: datetime.date | None = None) -> Panels:
    """``members``: the account's member count, which the dashboard has already counted."""
    from django.urls import reverse

    from agency.models import AgencyGrant
    from billing.models import UsageRollup, period_start
    from billing.selectors import plan_for
    from members.models import Invitation
    from workspace.models import Agent, Conversation

    account = access.account
    period = period or period_start()
    can = access.can
    panels = Panels()
    kwargs = {"account_id": account.public_id}
    plan = None
    if can.get("view_usage") or can.get("view_billing"):
        used = (UsageRollup.objects.filter(account=account, period=period)
                .values_list("subtree_minutes", flat=True).first()) or 0
        pool = limit_ceiling([*access.ancestors, account])["minutes"]
        panels.minutes = Meter(used, pool, "minutes pool" if pool else "")
        if account.is_root():
            plan = plan_for(account)
            if plan is not None and plan.included_minutes:
                panels.plan_meter = Meter(used, plan.included_minutes, f"included in {plan.name}")
    if can.get("view_conversations"):
        begin = datetime.datetime.combine(period, datetime.time(), tzinfo=datetime.UTC)
        panels.blocked = Conversation.objects.filter(
            subtree_q(account.path, "account__path"), status=Conversation.Status.BLOCKED,
            started_at__gte=begin).count()
    if can.get("view_subaccounts") and account.numchild:
        panels.near_limit = list(
            Account.objects.filter(parent=account, limit_minutes__gt=0, usage_rollups__period=period,
                                   usage_rollups__subtree_minutes__gte=F("limit_minutes") * WARN_AT)
            .annotate(used=F("usage_rollups__subtree_minutes")).order_by("-used")[:5])
    if can.get("manage_members"):
        panels.pending_invitations = Invitation.objects.filter(
            account=account, status=Invitation.Status.PENDING, expires_at__gt=timezone.now()).count()
    if account.is_root() and access.may_govern_agency:
        soon = timezone.now() + datetime.timedelta(days=14)
        grants = list(AgencyGrant.objects.filter(
            Q(status="requested") | Q(status="active", expires_at__gt=timezone.now(), expires_at__lte=soon),
            client=account).select_related("agency").order_by("created_at")[:10])
        panels.agency_requests = [g for g in grants if g.status == "requested"]
        panels.expiring_grants = [g for g in grants if g.status == "active"]
    if access.may_read_audit:
        panels.recent = list(AuditEvent.objects.filter(account=account)
                             .exclude(action__startswith="conversation.").order_by("-created_at", "-id")[:10])
    if account.is_root() and can.get("manage_settings") and account.onboarding_dismissed_at is None:
        plan = plan if plan is not None else plan_for(account)
        has_agent = Agent.objects.filter(account=account).exists()
        invited = panels.pending_invitations or members > 1
        reaches_others = account.numchild > 0 or AgencyGrant.objects.filter(agency=account).exists()
        panels.checklist = [
            Step("plan", "Choose a plan", plan is not None and not plan.is_default,
                 reverse("billing:plans", kwargs=kwargs)),
            Step("customers", "Create a first subaccount, or ask a client for agency access", reaches_others,
                 reverse("accounts:subaccount-list", kwargs=kwargs)),
            Step("team", "Invite a teammate", bool(invited), reverse("members:list", kwargs=kwargs)),
            Step("agent", "Create an agent", has_agent, reverse("workspace:agent-list", kwargs=kwargs)),
        ]
    return panels
