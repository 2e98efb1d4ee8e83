"""The consolidated statement of a directly billed root for one period, computed in SQL.

``compute_statement`` builds every line (invoices, the CSV): two queries whatever the number of subaccounts,
one GROUP BY over the usage of the period paid by the root (covered by the index on period, billing_root,
account, minutes), one for the names of the root's tree (to write each line's path). Closing a period
freezes a statement into an Invoice.

Pages use ``live_statement`` instead: the totals and the rule that splits the overage, from the payer
rollups in two queries (the payer groups, and the account where the overage's leftover cents run out), and
``statement_lines`` for the rows a page shows (``statement_rows``, sliceable for a paginator): the work does not
grow with the number of lines. Both give every line the same
amount, because the overage split (``allocate``, ``OverageSplit``) breaks ties by account id, an order SQL
has too.
"""

import datetime
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from accounts.baked import Baked, Pages
from accounts.bulk import collector_paused
from accounts.models import Account, subtree_bounds, subtree_q

from .models import Invoice, Plan, UsageDayRollup, UsagePayerGroup, UsagePayerRollup, UsageRecord, period_start

SEP = " › "


@dataclass(slots=True)  # (an invoice makes 10,000 of them: no ``__dict__`` each)
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
    # a live statement (``live_statement``) knows its totals without its lines
    minutes_total: int | None = None
    line_count: int | None = None
    split: "OverageSplit | None" = None

    @property
    def total_minutes(self) -> int:
        if self.minutes_total is not None:
            return self.minutes_total
        return sum(line.minutes for line in self.lines)

    @property
    def overage_minutes(self) -> int:
        return max(0, self.total_minutes - self.included_minutes)

    @property
    def overage_cents(self) -> int:
        return self.overage_minutes * self.overage_cents_per_minute

    @property
    def total_cents(self) -> int:
        adjustments = sum(line.amount_cents for line in self.adjustments)
        if self.minutes_total is not None:  # the lines' amounts add up to the overage exactly
            return self.plan_price_cents + self.overage_cents + adjustments
        return self.plan_price_cents + sum(line.amount_cents for line in self.lines) + adjustments

    @property
    def is_closed(self) -> bool:
        return self.invoice is not None


def allocate(total_cents: int, weights: list[int], keys: list | None = None) -> list[int]:
    """Split ``total_cents`` in proportion to ``weights`` so the parts add up exactly (largest remainder: the
    leftover cents go one each to the largest remainders, ties to the smallest key; ``keys`` default to the
    positions). Statements pass account ids as keys, so ``OverageSplit`` gives a line the same cents alone."""
    whole = sum(weights)
    if not whole or not total_cents:
        return [0] * len(weights)
    keys = range(len(weights)) if keys is None else keys
    exact = [total_cents * w for w in weights]
    parts = [e // whole for e in exact]
    leftover = total_cents - sum(parts)
    if leftover:  # (remainder descending, key, position) tuples compared in C: no key function per line
        for _remainder, _key, i in sorted(zip([-(e % whole) for e in exact], keys, range(len(weights)),
                                              strict=True))[:leftover]:
            parts[i] += 1
    return parts


@dataclass(frozen=True)
class OverageSplit:
    """``allocate``'s split of ``overage_cents`` over lines of ``whole`` minutes in all, one line at a time: a line
    of ``m`` minutes gets ``overage × m // whole`` cents, plus one when its (remainder, account id) ranks among the
    ``leftover`` first (remainders descending, then account ids ascending), i.e. up to ``last`` included."""

    overage_cents: int
    whole: int
    last: tuple[int, int] | None = None  # (remainder, account id) of the last line that gets a cent more

    def cents(self, account_id: int, minutes: int) -> int:
        if not self.whole or not self.overage_cents:
            return 0
        exact = self.overage_cents * minutes
        extra = self.last is not None and (-(exact % self.whole), account_id) <= (-self.last[0], self.last[1])
        return exact // self.whole + int(extra)


def tree_labels(root: Account) -> dict[int, tuple[str, int]]:
    """{account id: (path label from the root, depth)} for the whole tree, in one query."""
    rows = Account.objects.filter(subtree_q(root.path)).order_by("path").values_list("pk", "path", "name", "depth")
    step = Account.steplen
    name_by_path, label_by_path, labels = {}, {}, {}
    for pk, path, name, depth in rows:  # by path: a parent's label is known before its children's
        name_by_path[path] = name
        above = label_by_path.get(path[:-step]) if len(path) > step else None
        # a level that is missing (or above the root) reads "…"; every level that exists is named
        label = f"{above}{SEP}{name}" if above is not None else SEP.join(
            name_by_path.get(path[:i], "…") for i in range(step, len(path) + 1, step))
        label_by_path[path] = label
        labels[pk] = (label, depth)
    return labels


def _ledger_minutes(root: Account, period: datetime.date) -> dict[int, int]:
    """{account id: minutes} the root paid for in ``period``: the ledger's GROUP BY, the ORM's SQL read with a plain
    cursor (the sums are integers on both databases; the ORM's per-row converter, ``int()`` of each sum, took
    10-15 ms of an invoice of 10,000 lines)."""
    sql, params = (UsageRecord.objects.filter(period=period, billing_root=root).values("account_id")
                   .annotate(minutes=Sum("minutes")).order_by().values_list("account_id", "minutes")
                   .query.sql_with_params())
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return dict(cursor.fetchall())


@collector_paused()
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
        minutes_by_account = _ledger_minutes(root, period)
    labels = tree_labels(root)
    missing = [pk for pk in minutes_by_account if pk not in labels]  # moved away since (billing transfer)
    if missing:
        from .transfers import departed_names

        for pk, name in departed_names(root.pk, missing).items():
            labels[pk] = (f"{name} (no longer in this account)", 2)
    statement = _statement(root, period, plan, fee_plan, adjustments)
    ordered = sorted(minutes_by_account.items(), key=lambda item: labels[item[0]][0].lower())
    statement.lines = [Line(pk, labels[pk][0], minutes, depth=labels[pk][1]) for pk, minutes in ordered]
    split = allocate(statement.overage_cents, [ln.minutes for ln in statement.lines],
                     [ln.account_id for ln in statement.lines])
    for line, cents in zip(statement.lines, split, strict=True):
        line.amount_cents = cents
    return statement


def _statement(root: Account, period: datetime.date, plan: Plan | None, fee_plan: Plan | None, adjustments,
               **totals) -> Statement:
    """A statement's head: the plan whose rates apply (``plan``), the one whose fee is charged (``fee_plan``,
    the plan the period started with) and any plan-change lines."""
    return Statement(
        account=root, period=period, plan_name=plan.name if plan else "No plan",
        plan_price_cents=fee_plan.monthly_price_cents if fee_plan else 0, adjustments=adjustments,
        fee_plan_name=fee_plan.name if fee_plan and fee_plan != plan else "",
        included_minutes=plan.included_minutes if plan else 0,
        overage_cents_per_minute=plan.overage_cents_per_minute if plan else 0, **totals)


def _payer_rows(root, period: datetime.date) -> QuerySet:
    """``root``: the account or its id."""
    return UsagePayerRollup.objects.filter(period=period, billing_root=root).exclude(minutes=0)


# (minutes, lines) of a statement: a few hundred rows of the payer groups rollup, whatever the number of lines
_minute_groups = Baked(lambda root_id, period: UsagePayerGroup.objects.filter(
    billing_root_id=root_id, period=period, minutes__gt=0, lines__gt=0).values_list("minutes", "lines"))


def _tied_line(root_id: int, period: datetime.date, minutes: list[int], offset: int) -> int:
    """The ``offset``-th (from 0) account id, in order, of the statement's lines of the given ``minutes``: where the
    leftover cents run out. Plain SQL: the offset moves with every call recorded, and the ORM writes it into the SQL
    (a new statement to compile each time), where a parameter keeps one (an index-only scan either way)."""
    table = connection.ops.quote_name(UsagePayerRollup._meta.db_table)
    sql = (f"SELECT account_id FROM {table} WHERE billing_root_id = %s AND period = %s AND minutes IN "
           f"({', '.join(['%s'] * len(minutes))}) ORDER BY account_id LIMIT 1 OFFSET %s")
    with connection.cursor() as cursor:
        cursor.execute(sql, [root_id, period, *minutes, offset])
        return cursor.fetchone()[0]


def live_statement(root: Account, period: datetime.date, plan: Plan | None = None, *,
                   priced: bool = True) -> Statement:
    """``compute_statement(from_rollups=True)`` without its lines: the plan, the totals and the overage split,
    from the payer rollup grouped by minutes (plus one indexed lookup when some cents are left over), whatever
    the number of lines. ``priced=False`` (a page that shows minutes only): no split, every line's amount 0.
    Read the lines a page shows with ``statement_rows`` and ``statement_lines``."""
    adjustments = []
    fee_plan = plan
    if plan is None:
        from .plans import plans_in_period
        from .selectors import plan_for

        fee_plan, plan, changes = plans_in_period(root, period, plan_for(root))
        adjustments = [Line(None, description, 0, amount) for description, amount in changes]
    # lines grouped by their minutes (a few hundred groups for thousands of lines, kept by the rollups): the totals,
    # and enough to find which lines get a cent more, without reading the lines
    groups = _minute_groups(root.pk, period)
    statement = _statement(root, period, plan, fee_plan, adjustments,
                           minutes_total=sum(m * n for m, n in groups), line_count=sum(n for _, n in groups))
    overage, whole = statement.overage_cents, statement.minutes_total
    if not priced:
        return statement
    last = None
    if overage and whole:
        # allocate's leftover cents go to the largest remainders, ties to the smallest account ids: walk the
        # remainders down to the one where the leftover runs out, then find the account id where it does
        lines_by_remainder, minutes_by_remainder = defaultdict(int), defaultdict(list)
        for minutes, n in groups:
            remainder = overage * minutes % whole
            lines_by_remainder[remainder] += n
            minutes_by_remainder[remainder].append(minutes)
        leftover = sum(r * n for r, n in lines_by_remainder.items()) // whole
        for remainder in sorted(lines_by_remainder, reverse=True):
            if not leftover:
                break
            count = lines_by_remainder[remainder]
            if count < leftover:
                leftover -= count
                continue
            tied = sorted(minutes_by_remainder[remainder])
            last = (remainder, _tied_line(root.pk, period, tied, leftover - 1))
            break
    statement.split = OverageSplit(overage, whole, last)
    return statement


def _statement_base(root_id, period, low, high, text, gone, *, within, search):
    rows = _payer_rows(root_id, period)
    if within:
        rows = rows.filter(account__path__gte=low, account__path__lte=high)
    if not search:
        return rows
    # the tree's own lines by their names (``low``/``high``: the root's range when not ``within``); the lines of
    # accounts that left by a billing transfer by the names they had then (``gone``: those that match)
    named = Q(account__path__gte=low, account__path__lte=high, account__name__icontains=text)
    return rows.filter(named | Q(account_id__in=gone) if gone else named)


def _statement_rows_query(root_id, period, low, high, text, gone, *, within, search):
    return (_statement_base(root_id, period, low, high, text, gone, within=within, search=search)
            .order_by("-minutes", "account_id").values_list("account_id", "account__path", "account__name", "minutes"))


# Every billing page reads a page of them: compiled once (``accounts.baked``).
_statement_rows = Baked(_statement_rows_query)
_names_by_path = Baked(lambda paths: Account.objects.filter(path__in=paths).values_list("path", "name"))


def statement_rows(statement: Statement, *, within: str = "", search: str = "") -> Pages:
    """The live statement's lines as (account id, path, name, minutes), largest first (then by account id), for a
    paginator (``count()`` and each slice one query): ``within`` (a path) narrows them to that account and those
    below, ``search`` to names containing it: for an account a billing transfer took out of the tree, the name it
    had then, as its line shows it (``statement_lines``), never the one its new owner gave it since."""
    low, high = subtree_bounds(within or statement.account.path)
    gone = _departed_matching(statement, search) if search and not within else []
    return _statement_rows.pages(statement.account.pk, statement.period, low, high, search or "", gone,
                                 within=bool(within), search=bool(search))


def _departed_matching(statement: Statement, text: str) -> list[int]:
    """The accounts of the statement's lines that left its tree whose name then contains ``text`` (a query for
    them; one or two more only when there are some: ``departed_names``)."""
    root = statement.account
    ids = list(_payer_rows(root.pk, statement.period).exclude(subtree_q(root.path, "account__path"))
               .values_list("account_id", flat=True))
    if not ids:
        return []
    from .transfers import departed_names

    fold = _sql_fold()
    folded = fold(text)
    return sorted(pk for pk, name in departed_names(root.pk, ids).items() if folded in fold(name))


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _sql_fold():
    """Case folding as the database's ``icontains`` does it, so that a line that left the tree matches a search
    exactly when it would if it were still in it: SQLite's ``LIKE`` folds ASCII letters only; PostgreSQL compares
    ``UPPER`` of both, one character for one ("ß" stays "ß", where Python's ``upper`` makes it "SS")."""
    if connection.vendor == "sqlite":
        return lambda value: value.translate(_ASCII_LOWER)
    return lambda value: "".join(c.upper() if len(c.upper()) == 1 else c for c in value)


def statement_lines(statement: Statement, *row_lists) -> list[list[Line]]:
    """``Line``s for rows of ``statement_rows`` (one list per argument): each line's path from the root, and its
    amount by the statement's overage split, exactly as ``compute_statement`` writes it. One query for the names
    of the rows' ancestors."""
    root, step = statement.account, Account.steplen
    row_lists = [list(rows) for rows in row_lists]
    rows = [row for rows in row_lists for row in rows]
    inside = [path for _, path, _, _ in rows if path.startswith(root.path)]
    wanted = {path[:i] for path in inside for i in range(step, len(path), step)}
    names = dict(_names_by_path(sorted(wanted))) if wanted else {}
    names.update((path, name) for _, path, name, _ in rows)
    split = statement.split or OverageSplit(0, 0)
    gone = [pk for pk, path, _, _ in rows if not path.startswith(root.path)]  # moved away since (billing transfer)
    if gone:
        from .transfers import departed_names

        gone = departed_names(root.pk, gone)

    def line(pk, path, name, minutes):
        if path.startswith(root.path):
            label = SEP.join(names.get(path[:i], "…") for i in range(step, len(path) + 1, step))
            depth = len(path) // step
        else:  # moved away since (billing transfer): named as it was then
            label, depth = f"{gone.get(pk, name)} (no longer in this account)", 2
        return Line(pk, label, minutes, split.cents(pk, minutes), depth=depth)

    return [[line(*row) for row in rows] for rows in row_lists]


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


_days = Baked(lambda account_id, start, end: UsageDayRollup.objects.filter(
    account_id=account_id, day__gte=start, day__lt=end).values_list("day", "subtree_minutes"))


def daily_minutes(*, period: datetime.date, account: Account):
    """[(day, minutes)] of ``account``'s whole subtree for every day of the period so far (zero days
    included), from the daily rollup: one indexed query of at most 31 rows."""
    end = period_start(period + datetime.timedelta(days=32))
    by_day = dict(_days(account.pk, period, end))
    last = min(end - datetime.timedelta(days=1), max(by_day, default=period))
    today = timezone.now().astimezone(datetime.UTC).date()  # periods are UTC months, like period_start()
    if period_start(today) == period:
        last = max(last, today)
    days = (last - period).days + 1
    return [(period + datetime.timedelta(days=i), by_day.get(period + datetime.timedelta(days=i), 0))
            for i in range(days)]
