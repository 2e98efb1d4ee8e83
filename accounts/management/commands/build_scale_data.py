"""Scale data for the benchmarks (issue 14): bulk inserts that write exactly the rows the services would.

One agency ("Scale Agency", Owner owner@scale.example) with ``--subaccounts`` subaccounts at levels 2-5, a
second agency ("Small Agency", Owner small@scale.example) with ``--small`` subaccounts, one agent per
subaccount, a Member of one level-5 account (deep@scale.example), optionally a person who belongs to the big
root and every one of its subaccounts (many@scale.example, ``--many``), and usage records last month and
this month, with their rollups, and the audit row each recorded call writes ("conversation.recorded", the
larger part of a busy account's trail; ``--no-conversation-events`` leaves them out). Every login's password is
``demo-pass-2026``.

``--without-big`` builds the same platform without the big agency (no Scale Agency, no deep or ``--many``
person): the small agency alone, with exactly the rows it has beside the big one (its usage is still its
share of ``--usage-last``/``--usage-this`` out of ``--subaccounts`` + ``--small``). ``bench/small_tenant.py``
compares the small agency's pages on the two platforms.

Roots, owners and the deep member go through the services; the rest is written in bulk with the same
values (the services' audit rows, permission rows written by ``members.rows``, rollups rebuilt by
``billing.rollups``). ``tests/accounts/test_build_scale_data.py`` checks that equivalence on a small size.
"""

import argparse
import datetime
import random
import uuid
from dataclasses import dataclass

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, AuditEvent
from accounts.names import name_key
from accounts.services import account_create
from billing.models import Plan, UsageRecord, period_start
from billing.rollups import rollups_rebuild
from billing.services import subscription_start
from members import entry_points
from members.models import Membership, User
from members.roles import RoleId
from members.rows import account_sync_permissions
from members.services import membership_add
from workspace.models import Agent

PASSWORD = "demo-pass-2026"
LEVEL_SHARES = (0.2, 0.4, 0.3)  # of the subaccounts at levels 2, 3 and 4; the rest at level 5


@dataclass(frozen=True)
class Node:
    name: str
    parent: int | None  # index of the parent in the plan; None: the root
    depth: int


def tree_plan(prefix: str, size: int) -> list[Node]:
    """``size`` subaccounts under one root, levels 2-5, each level's nodes spread over the level above."""
    counts = [max(1, int(size * share)) for share in LEVEL_SHARES]
    counts.append(size - sum(counts))
    nodes: list[Node] = []
    above: list[int | None] = [None]
    for depth, count in enumerate(counts, start=2):
        level = []
        for i in range(count):
            nodes.append(Node(f"{prefix} L{depth} {i:05d}", above[i % len(above)], depth))
            level.append(len(nodes) - 1)
        above = level or above
    return nodes


def usage_plan(count: int, accounts: int, period: datetime.date, seed: int) -> list[tuple[int, datetime.date, int]]:
    """(account index, day, minutes) for ``count`` records in ``period``."""
    rng = random.Random(seed)
    days = (period_start(period + datetime.timedelta(days=32)) - period).days
    last = min(days, (timezone.now().date() - period).days + 1) if period == period_start() else days
    return [(rng.randrange(accounts), period + datetime.timedelta(days=rng.randrange(max(last, 1))),
             rng.randint(1, 30)) for _ in range(count)]


class Command(BaseCommand):
    help = "Build the benchmarks' scale data (bulk inserts writing the rows the services would)."

    def add_arguments(self, parser):
        parser.add_argument("--subaccounts", type=int, default=10_000)
        parser.add_argument("--small", type=int, default=50, help="subaccounts of the second agency")
        parser.add_argument("--usage-last", type=int, default=300_000, help="usage records last month")
        parser.add_argument("--usage-this", type=int, default=200_000, help="usage records this month")
        parser.add_argument("--many", action="store_true",
                            help="many@scale.example belongs to the big root and every subaccount")
        parser.add_argument("--seed", type=int, default=14)
        parser.add_argument("--conversation-events", action=argparse.BooleanOptionalAction, default=True,
                            help="an audit row per usage record, as recording the call writes it")
        parser.add_argument("--without-big", action="store_true",
                            help="only the small agency, with the rows it has beside the big one")

    def handle(self, *args, **o):
        if Account.objects.filter(name__in=("Scale Agency", "Small Agency"), depth=1).exists():
            raise CommandError("Scale data is already here (Scale or Small Agency exists): use a fresh database.")
        if o["many"] and o["without_big"]:
            raise CommandError("--many needs the big agency: drop --without-big.")
        with transaction.atomic():
            big = None
            if not o["without_big"]:
                big = build_tree("Scale Agency", "owner@scale.example", tree_plan("Scale", o["subaccounts"]))
            small = build_tree("Small Agency", "small@scale.example", tree_plan("Small", o["small"]))
            deep = big and Account.objects.filter(path__startswith=big.path, depth=5).order_by("path").first()
            if deep is not None:
                membership_add(account=deep, user=make_user("deep@scale.example"), role=RoleId.MEMBER, by=None)
            if o["many"]:
                add_everywhere(big, make_user("many@scale.example"))
            this = period_start()
            last = period_start(this - datetime.timedelta(days=1))
            for index, root in enumerate((big, small)):  # seeded by position: ids differ between databases
                if root is None:  # --without-big: the small agency keeps its seed and its share
                    continue
                ids = list(Account.objects.filter(path__startswith=root.path, depth__gt=1).order_by("path")
                           .values_list("pk", flat=True))
                share = len(ids) / max(o["subaccounts"] + o["small"], 1)
                for period, count, seed in ((last, o["usage_last"], o["seed"]), (this, o["usage_this"], o["seed"] + 1)):
                    bulk_usage(root, ids, usage_plan(int(count * share), len(ids), period, seed + index),
                               events=o["conversation_events"])
            counts = rollups_rebuild()
        logins = ", ".join(["small@scale.example"] if big is None else
                           ["owner@scale.example", "small@scale.example", "deep@scale.example"]
                           + (["many@scale.example"] if o["many"] else []))
        self.stdout.write(self.style.SUCCESS(
            f"Built {0 if big is None else o['subaccounts']} + {o['small']} subaccounts, "
            f"{UsageRecord.objects.count()} usage records, {counts['period']} period rollups. "
            f"Logins: {logins} (password {PASSWORD})."))


def make_user(email: str) -> User:
    return User.objects.create_user(email=email, password=PASSWORD)


def build_tree(name: str, owner_email: str, plan: list[Node]) -> Account:
    """The root through the services (account, Owner, subscription on the Agency plan), then its subaccounts,
    agents and the services' audit rows in bulk. Paths, depths and child counts as treebeard writes them."""
    root = account_create(name=name, owner=make_user(owner_email))
    subscription_start(account=root, plan=Plan.objects.get(code="agency"))
    now = timezone.now()
    accounts: list[Account] = []
    children_of: dict[int | None, int] = {}
    for node in plan:
        parent = root if node.parent is None else accounts[node.parent]
        children_of[node.parent] = children_of.get(node.parent, 0) + 1
        accounts.append(Account(
            name=node.name, parent=parent, depth=node.depth, numchild=0, public_id=uuid.uuid4(), created_at=now,
            path=parent.path + Account._int2str(children_of[node.parent]).rjust(Account.steplen, "0"),
        ))
    for i, account in enumerate(accounts):
        account.numchild = children_of.get(i, 0)
    for level in range(2, 6):  # parents first, so each child's parent_id is known
        batch = [a for a in accounts if a.depth == level]
        for a in batch:
            a.parent_id = a.parent.pk
            a.name_key = name_key(a.name)
        Account.objects.bulk_create(batch, batch_size=2000)
    Account.objects.filter(pk=root.pk).update(numchild=children_of.get(None, 0))
    saved = list(Account.objects.filter(path__startswith=root.path, depth__gt=1).select_related("parent"))
    events = []
    for a in saved:
        summary = f"Subaccount “{a.name}” created"
        events.append(AuditEvent(account=a, action="subaccount.created", summary=summary, created_at=now))
        events.append(AuditEvent(account=a.parent, action="subaccount.created", summary=f"{summary} under "
                                 f"{a.parent.name}", data={"subaccount": str(a.public_id)}, created_at=now))
    agents = Agent.objects.bulk_create([Agent(account=a, name="Front desk") for a in saved], batch_size=2000)
    events += [AuditEvent(account=agent.account, action="agent.created", summary=f"Agent “{agent.name}” created",
                          data={"agent": str(agent.public_id)}, created_at=now) for agent in agents]
    AuditEvent.objects.bulk_create(events, batch_size=2000)
    root.refresh_from_db()
    return root


def add_everywhere(root: Account, user: User) -> None:
    """``user`` as a Member of the root and of every account below it, with the services' audit rows and the
    permission rows ``members.rows`` writes."""
    accounts = list(Account.objects.filter(path__startswith=root.path))
    Membership.objects.bulk_create([Membership(user=user, account=a, role=RoleId.MEMBER) for a in accounts],
                                   batch_size=2000)
    entry_points.refresh([user.pk])  # bulk_create sends no signal: the switcher's flags, as the services keep them
    AuditEvent.objects.bulk_create([
        AuditEvent(account=a, action="member.added", summary=f"{user.email} added as Member",
                   data={"user": user.email, "role": RoleId.MEMBER}) for a in accounts], batch_size=2000)
    account_sync_permissions(root, subtree=True)


def bulk_usage(root: Account, ids: list[int], rows, *, events: bool = True) -> None:
    """Usage records as metering writes them (without conversations: only the figures matter here) and, with
    ``events``, the audit row recording each call writes (``workspace.services.conversation_record``), stamped
    during its day."""
    rows = list(rows)
    now = timezone.now()
    UsageRecord.objects.bulk_create(
        (UsageRecord(account_id=ids[i], billing_root=root, period=period_start(day), occurred_on=day,
                     minutes=minutes, seconds=minutes * 60 - 30, recorded_at=now) for i, day, minutes in rows),
        batch_size=5000)
    if events:
        AuditEvent.objects.bulk_create(
            (AuditEvent(account_id=ids[i], action="conversation.recorded",
                        summary=f"Conversation recorded ({minutes} min)", data={"id": str(uuid.uuid5(
                            uuid.NAMESPACE_URL, f"{root.name}/{day}/{k}")), "blocked": ""},
                        created_at=min(now, datetime.datetime.combine(day, datetime.time(8), datetime.UTC)
                                       + datetime.timedelta(seconds=(k * 7919) % 36_000)))
             for k, (i, day, minutes) in enumerate(rows)),
            batch_size=5000)

