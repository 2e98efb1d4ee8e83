"""Usage rollups: the ledger's figures kept in step on write, so pages never scan raw usage.

Four caches of ``UsageRecord`` (the source of truth, and the only source of invoices):

- ``UsageRollup`` (account, period): own minutes, and subtree minutes of the tree *as it is now*; and the
  subtree's calls blocked by a limit (not from the ledger: a blocked call meters nothing; ``Conversation``
  keeps them, ``rollups_add_blocked``);
- ``UsageDayRollup`` (account, day): the same per day, for the charts;
- ``UsagePayerRollup`` (billing root, period, account): who paid, for the live statement;
- ``UsagePayerGroup`` (billing root, period, minutes): how many of those lines have that many minutes, for the
  live statement's totals and overage split.

Recording usage adds to at most five ``UsageRollup`` and five ``UsageDayRollup`` rows (the account and
its ancestors: depth is capped), one ``UsagePayerRollup`` row and two ``UsagePayerGroup`` rows (the line leaves
the group of its old minutes for the group of its new ones: the upsert returns the line's new minutes), each with
one
``INSERT … ON CONFLICT DO UPDATE SET x = x + excluded.x`` (PostgreSQL and SQLite alike): a
create-or-increment that two transactions can run at once without losing either addition.

Moving a subtree (billing transfer, move within a tree) moves its subtree minutes, for every period and
day, from the accounts that are no longer above it to those that now are: the figures follow the tree,
so the rollups always equal what ``rollups_rebuild`` computes from the ledger and the current paths. The
minutes that leave an account's subtree are also added to its ``departed_minutes`` for their period, which its
minutes pool keeps counting (a record of the move, not a cache: the rebuild keeps it).
Who paid never changes (``UsagePayerRollup`` and ``UsagePayerGroup`` are not touched by a move).
"""

import datetime
from collections import defaultdict

from django.apps import apps as global_apps
from django.db import connection, transaction
from django.db.models import F, Sum, Value
from django.db.models.functions import Least

from accounts.models import Account

from .models import UsageDayRollup, UsagePayerGroup, UsagePayerRollup, UsageRecord, UsageRollup, period_start

BATCH = 500


def _add(model, key: tuple[str, ...], columns: tuple[str, ...], rows, returning: str = "") -> list:
    """Create-or-increment: for each row (key values…, deltas…) add the deltas to the row with that key,
    creating it when missing. One statement per ``BATCH`` rows, safe under concurrent writers. With
    ``returning`` (a column), the values that column holds afterwards, row by row (PostgreSQL and SQLite 3.35+
    both return them from the upsert, so the value read is the one this statement wrote)."""
    rows = list(rows)
    if not rows:
        return []
    table = connection.ops.quote_name(model._meta.db_table)
    fields = [*key, *columns]
    names = ", ".join(connection.ops.quote_name(model._meta.get_field(f).column) for f in fields)
    conflict = ", ".join(connection.ops.quote_name(model._meta.get_field(f).column) for f in key)
    sets = ", ".join(
        f"{c} = {table}.{c} + excluded.{c}"
        for c in (connection.ops.quote_name(model._meta.get_field(f).column) for f in columns)
    )
    one = "(" + ", ".join(["%s"] * len(fields)) + ")"
    back = f" RETURNING {connection.ops.quote_name(model._meta.get_field(returning).column)}" if returning else ""
    found = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), BATCH):
            chunk = rows[start:start + BATCH]
            cursor.execute(
                f"INSERT INTO {table} ({names}) VALUES {', '.join([one] * len(chunk))} "
                f"ON CONFLICT ({conflict}) DO UPDATE SET {sets}{back}",
                [value for row in chunk for value in row],
            )
            if returning:
                found += [value for (value,) in cursor.fetchall()]
    return found


def rollups_add(*, lineage_ids: list[int], billing_root_id: int, period: datetime.date, day: datetime.date,
                minutes: int) -> None:
    """Book ``minutes`` of the last account of ``lineage_ids`` (its ancestors first, root first): its own
    minutes, every lineage account's subtree minutes, and the payer's statement line. Three statements."""
    account_id = lineage_ids[-1]
    _add(UsageRollup, ("account", "period"), ("own_minutes", "subtree_minutes"),
         [(pk, period, minutes if pk == account_id else 0, minutes) for pk in lineage_ids])
    _add(UsageDayRollup, ("account", "day"), ("own_minutes", "subtree_minutes"),
         [(pk, day, minutes if pk == account_id else 0, minutes) for pk in lineage_ids])
    line = _add(UsagePayerRollup, ("billing_root", "period", "account"), ("minutes",),
                [(billing_root_id, period, account_id, minutes)], returning="minutes")[0]
    if minutes:  # the line leaves the group of its old minutes for the group of its new ones
        _add(UsagePayerGroup, ("billing_root", "period", "minutes"), ("lines",),
             [(billing_root_id, period, line - minutes, -1)] * bool(line - minutes)
             + [(billing_root_id, period, line, 1)])


def rollups_add_blocked(*, lineage_ids: list[int], period: datetime.date, calls: int) -> None:
    """Count ``calls`` (1, or -1 when one is deleted) blocked calls of the last account of ``lineage_ids`` in
    every lineage account's subtree figure for ``period``. One statement."""
    _add_blocked(UsageRollup, [(pk, period, calls) for pk in lineage_ids])


def _add_blocked(model, rows) -> None:
    """Add each row's (account, period, calls) to that account's blocked calls of the period."""
    _add(model, ("account", "period"), ("own_minutes", "subtree_minutes", "subtree_blocked"),
         [(pk, period, 0, 0, calls) for pk, period, calls in rows])


def rollups_follow_move(*, account_id: int, old_ancestor_ids: list[int], new_ancestor_ids: list[int]) -> None:
    """After ``account_id``'s subtree moved: its subtree minutes (every period, every day) and blocked calls
    leave the accounts no longer above it and join those now above it. Common ancestors (a move within a tree)
    keep theirs. Runs inside the move's transaction."""
    leaving = [pk for pk in old_ancestor_ids if pk not in set(new_ancestor_ids)]
    joining = [pk for pk in new_ancestor_ids if pk not in set(old_ancestor_ids)]
    if not leaving and not joining:
        return
    # The minutes leaving an account's subtree stay in its minutes pool until their period ends (its
    # ``departed_minutes``): otherwise a subaccount could move a used-up child away and draw the pool again.
    moved = [(period, minutes, blocked) for period, minutes, blocked in UsageRollup.objects.filter(
        account_id=account_id).values_list("period", "subtree_minutes", "subtree_blocked") if minutes or blocked]
    figures = ("own_minutes", "subtree_minutes", "subtree_blocked", "departed_minutes")
    _add(UsageRollup, ("account", "period"), figures,
         [(pk, period, 0, -minutes, -blocked, minutes) for pk in leaving for period, minutes, blocked in moved]
         + [(pk, period, 0, minutes, blocked, 0) for pk in joining for period, minutes, blocked in moved])
    _rejoined(joining, {period: minutes for period, minutes, _ in moved if minutes})
    moved = [(day, minutes) for day, minutes in UsageDayRollup.objects.filter(account_id=account_id)
             .values_list("day", "subtree_minutes") if minutes]
    _add(UsageDayRollup, ("account", "day"), ("own_minutes", "subtree_minutes"),
         [(pk, day, 0, -minutes) for pk in leaving for day, minutes in moved]
         + [(pk, day, 0, minutes) for pk in joining for day, minutes in moved])


def _rejoined(joining: list[int], minutes: dict) -> None:
    """Minutes that join an account which counts departed minutes in their period take the place of as many of
    those (a subtree that leaves and comes back is counted once): its pool (subtree + departed) never shrinks,
    and never counts the returning minutes twice. One query, and one update per row that has some."""
    if not joining or not minutes:
        return
    for pk, period in UsageRollup.objects.filter(account_id__in=joining, period__in=list(minutes),
                                                 departed_minutes__gt=0).values_list("account_id", "period"):
        UsageRollup.objects.filter(account_id=pk, period=period).update(
            departed_minutes=F("departed_minutes") - Least(F("departed_minutes"), Value(minutes[period])))


def departed_from_transfers(period: datetime.date, apps=None) -> int:
    """Give the pools that billing transfers completed in ``period`` took minutes from their departed minutes
    for it: the moved subtree's minutes of the period still paid by the old root, on the old parent and its
    lineage as it is now (for the migration that added the figure, with its historical models; moves within a
    tree left no record and are not restored). Returns how many rollup rows it touched."""
    get = (apps or global_apps).get_model
    transfer_model, record_model, account_model = (get("billing", "BillingTransfer"), get("billing", "UsageRecord"),
                                                   get("accounts", "Account"))
    rollup_model = get("billing", "UsageRollup")
    start = datetime.datetime.combine(period, datetime.time(), tzinfo=datetime.UTC)
    departed = defaultdict(int)
    lineage = _lineages(account_model)
    for account_id, root_id, parent_id in transfer_model.objects.filter(
            status="completed", cutover_at__gte=start).values_list("account_id", "from_root_id", "from_parent_id"):
        path = account_model.objects.get(pk=account_id).path
        minutes = record_model.objects.filter(account__path__startswith=path, billing_root_id=root_id,
                                              period=period).aggregate(m=Sum("minutes"))["m"] or 0
        for pk in lineage(parent_id) if minutes else ():
            departed[pk] += minutes
    _add(rollup_model, ("account", "period"), ("own_minutes", "subtree_minutes", "departed_minutes"),
         [(pk, period, 0, 0, minutes) for pk, minutes in departed.items()])
    return len(departed)


def expected_rollups() -> dict[str, dict[tuple, tuple]]:
    """What the three rollups must hold, computed from the ledger and the current tree (for the rebuild
    and for tests). Rows whose figures are all zero are left out."""
    lineage = _lineages()
    result = {}
    for name, when in (("period", "period"), ("day", "occurred_on")):
        own, subtree = defaultdict(int), defaultdict(int)
        for pk, at, minutes in (UsageRecord.objects.values("account_id", when).annotate(m=Sum("minutes")).order_by()
                                .values_list("account_id", when, "m")):
            own[(pk, at)] += minutes
            for anc in lineage(pk):
                subtree[(anc, at)] += minutes
        result[name] = {k: (own.get(k, 0), subtree.get(k, 0)) for k in {*own, *subtree} if subtree.get(k, 0)}
    blocked = expected_blocked(lineage)
    result["period"] = {k: (*result["period"].get(k, (0, 0)), blocked.get(k, 0))
                        for k in {*result["period"], *blocked}}
    result["payer"] = {
        (root, period, pk): m for root, period, pk, m in (
            UsageRecord.objects.values("billing_root_id", "period", "account_id").annotate(m=Sum("minutes")).order_by()
            .values_list("billing_root_id", "period", "account_id", "m"))
    }
    result["groups"] = _groups(result["payer"])
    return result


def _lineages(account_model=None):
    """A function: an account's id → the ids of its lineage (root first), from the tree as it is now."""
    steplen = Account.steplen
    paths = dict((account_model or Account).objects.values_list("pk", "path"))
    ids = {path: pk for pk, path in paths.items()}

    def lineage(pk):
        path = paths[pk]
        return [ids[path[:i]] for i in range(steplen, len(path) + 1, steplen)]

    return lineage


@transaction.atomic
def rollups_recount_blocked(conversation_model=None, account_model=None, rollup_model=None) -> int:
    """Set every account's blocked calls per period from the blocked conversations and the tree as it is now
    (after conversations were written around ``Conversation.save``, and by the migration that added them, with
    its historical models). Returns how many (account, period) rows hold some."""
    rollup_model = rollup_model or UsageRollup
    blocked = expected_blocked(_lineages(account_model), conversation_model)
    rollup_model.objects.exclude(subtree_blocked=0).update(subtree_blocked=0)
    _add_blocked(rollup_model, [(pk, period, calls) for (pk, period), calls in blocked.items()])
    return len(blocked)


def expected_blocked(lineage, conversation_model=None) -> dict[tuple[int, datetime.date], int]:
    """(account, period) → the calls blocked by a limit in the account's subtree that started in the period, each
    counted on every account of its lineage (``lineage``: ``_lineages()``). The conversation model is given by a
    migration (its historical model), taken from the app otherwise."""
    if conversation_model is None:
        from workspace.models import Conversation as conversation_model
    blocked = defaultdict(int)
    for pk, started in conversation_model.objects.filter(status="blocked").values_list("account_id", "started_at"):
        for anc in lineage(pk):
            blocked[(anc, period_start(started))] += 1
    return dict(blocked)


def _groups(payer: dict[tuple, int]) -> dict[tuple, int]:
    """(root, period, minutes) → how many lines of ``payer`` (as ``expected_rollups`` has it) have those minutes."""
    groups = defaultdict(int)
    for (root, period, _), minutes in payer.items():
        if minutes:
            groups[(root, period, minutes)] += 1
    return dict(groups)


def stored_rollups() -> dict[str, dict[tuple, tuple]]:
    """The three rollups as stored, in the shape of ``expected_rollups`` (zero rows left out)."""
    return {
        "period": {(pk, at): (own, sub, blocked) for pk, at, own, sub, blocked in UsageRollup.objects.values_list(
            "account_id", "period", "own_minutes", "subtree_minutes", "subtree_blocked") if own or sub or blocked},
        "day": {(pk, at): (own, sub) for pk, at, own, sub in UsageDayRollup.objects.values_list(
            "account_id", "day", "own_minutes", "subtree_minutes") if own or sub},
        "payer": {(root, period, pk): m for root, period, pk, m in UsagePayerRollup.objects.values_list(
            "billing_root_id", "period", "account_id", "minutes") if m},
        "groups": {(root, period, m): n for root, period, m, n in UsagePayerGroup.objects.values_list(
            "billing_root_id", "period", "minutes", "lines") if n},
    }


@transaction.atomic
def rollups_rebuild() -> dict[str, int]:
    """Replace the rollups by what the ledger says (atomic), keeping the minutes that left each subtree (a record
    of the moves, which the ledger does not hold). Returns the row count of each."""
    if connection.vendor == "postgresql":  # no move or usage may write between reading and replacing them
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {UsageRollup._meta.db_table} IN EXCLUSIVE MODE")
    expected = expected_rollups()
    departed = {(pk, at): m for pk, at, m in UsageRollup.objects.exclude(departed_minutes=0)
                .values_list("account_id", "period", "departed_minutes")}
    UsageRollup.objects.all().delete()
    UsageDayRollup.objects.all().delete()
    UsagePayerRollup.objects.all().delete()
    UsagePayerGroup.objects.all().delete()
    UsageRollup.objects.bulk_create(
        (UsageRollup(account_id=pk, period=at, own_minutes=own, subtree_minutes=sub, subtree_blocked=blocked,
                     departed_minutes=departed.get((pk, at), 0))
         for (pk, at), (own, sub, blocked) in expected["period"].items()), batch_size=2000)
    UsageRollup.objects.bulk_create((UsageRollup(account_id=pk, period=at, departed_minutes=m)
                                     for (pk, at), m in departed.items() if (pk, at) not in expected["period"]),
                                    batch_size=2000)
    UsageDayRollup.objects.bulk_create(
        (UsageDayRollup(account_id=pk, day=at, own_minutes=own, subtree_minutes=sub)
         for (pk, at), (own, sub) in expected["day"].items()), batch_size=2000)
    UsagePayerRollup.objects.bulk_create(
        (UsagePayerRollup(billing_root_id=root, period=period, account_id=pk, minutes=m)
         for (root, period, pk), m in expected["payer"].items()), batch_size=2000)
    UsagePayerGroup.objects.bulk_create(
        (UsagePayerGroup(billing_root_id=root, period=period, minutes=m, lines=n)
         for (root, period, m), n in expected["groups"].items()), batch_size=2000)
    return {name: len(rows) for name, rows in expected.items()}
