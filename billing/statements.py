"""The consolidated statement of a directly billed root for one period, computed in SQL.

Two queries whatever the number of subaccounts: one GROUP BY over the usage of the period paid by
the root (covered by the index on period, billing_root, account, minutes), one for the names of
the root's tree (to write each line's path). Closing a period freezes a statement into an Invoice.
"""

import datetime
from dataclasses import dataclass, field

from django.db.models import Sum
from django.utils import timezone

from accounts.models import Account, subtree_q

from .models import Invoice, Plan, UsageDayRollup, UsagePayerRollup, UsageRecord, period_start

SEP = " › "


@dataclass
class Line:
    account_id: int | None
    description: str
    minutes: int
    amount_cents: int = 0
    depth: int = 1


@dataclass
class Statement:
    account: Account
    period: datetime.date
    plan_name: str
    plan_price_cents: int
    included_minutes: int
    overage_cents_per_minute: int
    lines: list[Line] = field(default_factory=list)
    invoice: Invoice | None = None
    adjustments: list[Line] = field(default_factory=list)  # prorated plan changes
    fee_plan_name: str = ""  # the plan the period started with, when it differs

    @property
    def total_minutes(self) -> int:
        return sum(line.minutes for line in self.lines)

    @property
    def overage_minutes(self) -> int:
        return max(0, self.total_minutes - self.included_minutes)

    @property
    def overage_cents(self) -> int:
        return self.overage_minutes * self.overage_cents_per_minute

    @property
    def total_cents(self) -> int:
        return self.plan_price_cents + sum(line.amount_cents for line in (*self.lines, *self.adjustments))

    @property
    def is_closed(self) -> bool:
        return self.invoice is not None


def allocate(total_cents: int, weights: list[int]) -> list[int]:
    """Split ``total_cents`` in proportion to ``weights`` so the parts add up exactly (largest remainder)."""
    whole = sum(weights)
    if not whole or not total_cents:
        return [0] * len(weights)
    exact = [total_cents * w for w in weights]
    parts = [e // whole for e in exact]
    leftover = total_cents - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] % whole), i))
    for i in order[:leftover]:
        parts[i] += 1
    return parts


def tree_labels(root: Account) -> dict[int, tuple[str, int]]:
    """{account id: (path label from the root, depth)} for the whole tree, in one query."""
    rows = list(Account.objects.filter(subtree_q(root.path)).values_list("pk", "path", "name", "depth"))
    name_by_path = {path: name for _, path, name, _ in rows}
    step = Account.steplen
    labels = {}
    for pk, path, _name, depth in rows:
        parts = [name_by_path.get(path[:i], "…") for i in range(step, len(path) + 1, step)]
        labels[pk] = (SEP.join(parts), depth)
    return labels


def compute_statement(root: Account, period: datetime.date, plan: Plan | None = None, *,
                      from_rollups: bool = False) -> Statement:
    """The statement of ``root`` for ``period``: the fee of the plan the period started with, prorated plan
    changes (``billing.plans``), and one usage line per account priced by the plan the period ends with. From
    the ledger (a GROUP BY over the usage the root paid: what invoices are made of), or ``from_rollups`` for
    pages (the same figures, one stored row per line)."""
    adjustments = []
    fee_plan = plan
    if plan is None:
        from .plans import plans_in_period
        from .selectors import plan_for

        fee_plan, plan, changes = plans_in_period(root, period, plan_for(root))
        adjustments = [Line(None, description, 0, amount) for description, amount in changes]
    if from_rollups:
        minutes_by_account = dict(UsagePayerRollup.objects.filter(period=period, billing_root=root)
                                  .exclude(minutes=0).values_list("account_id", "minutes"))
    else:
        usage = (UsageRecord.objects.filter(period=period, billing_root=root).values("account_id")
                 .annotate(minutes=Sum("minutes")).order_by())
        minutes_by_account = {row["account_id"]: row["minutes"] for row in usage}
    labels = tree_labels(root)
    missing = [pk for pk in minutes_by_account if pk not in labels]  # moved away since (billing transfer)
    if missing:
        for pk, name in Account.objects.filter(pk__in=missing).values_list("pk", "name"):
            labels[pk] = (f"{name} (no longer in this account)", 2)
    statement = Statement(
        account=root, period=period, plan_name=plan.name if plan else "No plan",
        plan_price_cents=fee_plan.monthly_price_cents if fee_plan else 0, adjustments=adjustments,
        fee_plan_name=fee_plan.name if fee_plan and fee_plan != plan else "",
        included_minutes=plan.included_minutes if plan else 0,
        overage_cents_per_minute=plan.overage_cents_per_minute if plan else 0,
    )
    ordered = sorted(minutes_by_account.items(), key=lambda item: labels[item[0]][0].lower())
    statement.lines = [Line(pk, labels[pk][0], minutes, depth=labels[pk][1]) for pk, minutes in ordered]
    for line, cents in zip(statement.lines, allocate(statement.overage_cents, [ln.minutes for ln in statement.lines]),
                           strict=True):
        line.amount_cents = cents
    return statement


def statement_from_invoice(invoice: Invoice) -> Statement:
    """A closed period, exactly as it was frozen."""
    statement = Statement(
        account=invoice.account, period=invoice.period, plan_name=invoice.plan_name,
        plan_price_cents=invoice.plan_price_cents, included_minutes=invoice.included_minutes,
        overage_cents_per_minute=invoice.overage_cents_per_minute, invoice=invoice,
    )
    lines = list(invoice.lines.all())
    statement.lines = [Line(ln.account_id, ln.description, ln.minutes, ln.amount_cents,
                            depth=ln.description.count(SEP) + 1) for ln in lines if ln.kind == ln.Kind.USAGE]
    statement.adjustments = [Line(None, ln.description, 0, ln.amount_cents) for ln in lines
                             if ln.kind == ln.Kind.PLAN and ln.position > 0]
    return statement


def daily_minutes(*, period: datetime.date, account: Account):
    """[(day, minutes)] of ``account``'s whole subtree for every day of the period so far (zero days
    included), from the daily rollup: one indexed query of at most 31 rows."""
    end = period_start(period + datetime.timedelta(days=32))
    by_day = dict(UsageDayRollup.objects.filter(account=account, day__gte=period, day__lt=end)
                  .values_list("day", "subtree_minutes"))
    last = min(end - datetime.timedelta(days=1), max(by_day, default=period))
    today = timezone.now().astimezone(datetime.UTC).date()  # periods are UTC months, like period_start()
    if period_start(today) == period:
        last = max(last, today)
    days = (last - period).days + 1
    return [(period + datetime.timedelta(days=i), by_day.get(period + datetime.timedelta(days=i), 0))
            for i in range(days)]
