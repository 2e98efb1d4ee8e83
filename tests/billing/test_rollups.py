"""Usage rollups (issue 14, item 1): a cache of the ledger kept in step on every write, equal to what the
ledger says after any sequence of usage, moves within a tree and billing transfers."""

import datetime
import random

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection

from accounts.models import Account
from accounts.services import subaccount_move
from billing import transfers
from billing.models import UsageRollup, period_start
from billing.rollups import _add, expected_rollups, rollups_rebuild, rollups_recount_blocked, stored_rollups
from billing.selectors import minutes_used_in_subtrees
from members.models import User
from members.roles import RoleId
from tests.concurrency import race
from tests.factories import AccountFactory, MembershipFactory, UserFactory, account_tree, plan, usage
from workspace.models import Agent, Contact, Conversation

pytestmark = pytest.mark.django_db

THIS = period_start()
LAST = period_start(THIS - datetime.timedelta(days=1))


def fresh(obj):
    return type(obj).objects.get(pk=obj.pk)


def subtree(account):
    return minutes_used_in_subtrees([fresh(account)], THIS)[account.pk]


def test_recording_adds_own_minutes_to_the_account_and_subtree_minutes_to_every_ancestor():
    root = account_tree(breadth=1, depth=5)
    chain = list(Account.objects.filter(path__startswith=root.path).order_by("depth"))
    usage(chain[-1], 7, day=THIS)
    usage(chain[2], 3, day=THIS)
    rows = {r.account_id: (r.own_minutes, r.subtree_minutes) for r in UsageRollup.objects.filter(period=THIS)}
    assert rows == {chain[0].pk: (0, 10), chain[1].pk: (0, 10), chain[2].pk: (3, 10), chain[3].pk: (0, 7),
                    chain[4].pk: (7, 7)}
    assert stored_rollups() == expected_rollups()


def test_a_billing_transfer_moves_the_subtree_minutes_to_the_new_lineage(world_with_owner):
    w = world_with_owner
    usage(w["leaf"], 5, period=LAST, day=LAST)
    usage(w["leaf"], 4, day=THIS)
    usage(w["sibling"], 2, day=THIS)
    assert subtree(w["root"]) == 6 and subtree(w["acme"]) == 4
    transfer = transfers.transfer_start(account=w["acme"], by=fresh(w["owner"]), billing_owner_email=w["carla"].email,
                                        plan=plan("agency"))
    transfers.transfer_accept(transfer=transfer, user=fresh(w["carla"]))
    # Decided: rollups follow the tree as it is now. The former root's subtree no longer holds the moved
    # account's usage (this period and earlier ones); the new root's does. Invoices still come from the
    # ledger, where who paid never changes.
    assert subtree(w["root"]) == 2 and subtree(w["acme"]) == 4
    assert minutes_used_in_subtrees([fresh(w["root"])], LAST)[w["root"].pk] == 0
    assert minutes_used_in_subtrees([fresh(w["acme"])], LAST)[w["acme"].pk] == 5
    assert stored_rollups() == expected_rollups()


def test_a_move_within_the_tree_leaves_common_ancestors_alone(world_with_owner):
    w = world_with_owner
    usage(w["leaf"], 4, day=THIS)
    subaccount_move(account=fresh(w["leaf"]), new_parent=fresh(w["sibling"]), by=fresh(w["owner"]))
    assert (subtree(w["root"]), subtree(w["acme"]), subtree(w["sibling"])) == (4, 0, 4)
    assert stored_rollups() == expected_rollups()


def test_random_workloads_keep_the_rollups_equal_to_the_ledger(world_with_owner):
    w = world_with_owner
    rng = random.Random(1414)
    owner = w["owner"]
    for round_ in range(60):
        accounts = list(Account.objects.all())
        action = rng.random()
        if action < 0.6:
            account = rng.choice(accounts)
            period = rng.choice([THIS, LAST])
            usage(account, rng.randint(1, 9), period=period, day=period + datetime.timedelta(days=rng.randint(0, 9)))
        elif action < 0.7:  # a call blocked by a limit, or one of them deleted
            blocked = list(Conversation.objects.filter(status=Conversation.Status.BLOCKED))
            if blocked and rng.random() < 0.3:
                rng.choice(blocked).delete()
            else:
                day = rng.choice([THIS, LAST]) + datetime.timedelta(days=rng.randint(0, 9))
                blocked_call(rng.choice(accounts), day)
        elif action < 0.85:
            subs = [a for a in accounts if a.depth > 1 and a.root_path == w["root"].root_path]
            if not subs:
                continue
            account = rng.choice(subs)
            targets = [a for a in accounts if a.root_path == account.root_path and not a.path.startswith(account.path)
                       and a.pk != account.parent_id]
            if not targets:
                continue
            try:
                subaccount_move(account=fresh(account), new_parent=fresh(rng.choice(targets)), by=fresh(owner))
            except ValidationError:
                continue  # too deep: nothing changed
        else:
            subs = [a for a in accounts if a.depth > 1]
            if not subs:
                continue
            account = rng.choice(subs)
            root = Account.objects.get(path=account.root_path)
            carla = UserFactory()
            if not root.memberships.filter(user=owner).exists():
                MembershipFactory(account=root, user=owner, role=RoleId.OWNER)
            try:
                transfer = transfers.transfer_start(account=fresh(account), by=fresh(owner),
                                                    billing_owner_email=carla.email, plan=plan("agency"))
            except ValidationError:
                continue
            transfers.transfer_accept(transfer=transfer, user=fresh(carla))
        assert stored_rollups() == expected_rollups(), f"after round {round_}"
    assert Account.objects.filter(depth=1).count() > 2  # transfers happened


def blocked_call(account, day, status=Conversation.Status.BLOCKED):
    agent = Agent.objects.filter(account=account).first() or Agent.objects.create(account=account, name="Desk")
    contact = Contact.objects.filter(account=account).first() or Contact.objects.create(
        account=account, name="Caller", email="caller@example.test")
    started = datetime.datetime.combine(day, datetime.time(12), tzinfo=datetime.UTC)
    return Conversation.objects.create(account=account, agent=agent, contact=contact, started_at=started,
                                       duration_seconds=60, status=status, blocked_reason="pool")


def test_blocked_calls_count_in_their_lineage_in_the_period_they_started(world_with_owner):
    w = world_with_owner
    chain = [w["root"], w["acme"], w["leaf"]]
    assert [a.pk for a in chain] == list(Account.objects.filter(path__in=fresh(w["leaf"]).lineage_paths)
                                          .order_by("path").values_list("pk", flat=True))
    blocked_call(w["leaf"], THIS), blocked_call(w["leaf"], LAST)
    gone = blocked_call(w["acme"], THIS)
    completed = blocked_call(w["acme"], THIS, status=Conversation.Status.COMPLETED)  # counts nothing here
    this = dict(UsageRollup.objects.filter(period=THIS).values_list("account_id", "subtree_blocked"))
    assert this == {w["root"].pk: 2, w["acme"].pk: 2, w["leaf"].pk: 1}
    completed.delete()  # and takes nothing off
    gone.delete()
    assert UsageRollup.objects.get(account=w["root"], period=THIS).subtree_blocked == 1
    assert UsageRollup.objects.get(account=w["root"], period=LAST).subtree_blocked == 1
    assert UsageRollup.objects.get(account=w["root"], period=THIS).subtree_minutes == 0
    assert stored_rollups() == expected_rollups()


def test_a_move_carries_the_subtree_s_blocked_calls_without_minutes(world_with_owner):
    w = world_with_owner
    blocked_call(w["leaf"], THIS), blocked_call(w["leaf"], LAST)  # no usage: only blocked calls
    subaccount_move(account=fresh(w["leaf"]), new_parent=fresh(w["sibling"]), by=fresh(w["owner"]))
    this = dict(UsageRollup.objects.filter(period=THIS).values_list("account_id", "subtree_blocked"))
    assert this == {w["root"].pk: 1, w["acme"].pk: 0, w["sibling"].pk: 1, w["leaf"].pk: 1}
    assert stored_rollups() == expected_rollups()


def test_deleting_an_account_takes_its_blocked_calls_off_the_accounts_above(world_with_owner):
    from accounts.services import account_delete

    w = world_with_owner
    doomed = AccountFactory(parent=w["acme"], name="Short-lived")
    blocked_call(doomed, THIS), blocked_call(doomed, LAST), blocked_call(w["leaf"], THIS)
    assert UsageRollup.objects.get(account=w["root"], period=THIS).subtree_blocked == 2
    account_delete(account=fresh(doomed), by=None)
    assert UsageRollup.objects.get(account=w["root"], period=THIS).subtree_blocked == 1
    assert UsageRollup.objects.get(account=w["acme"], period=LAST).subtree_blocked == 0
    assert stored_rollups() == expected_rollups()


def test_the_migration_counts_the_blocked_calls_already_recorded(world_with_owner):
    from django.db.migrations.executor import MigrationExecutor

    w = world_with_owner
    blocked_call(w["leaf"], THIS), blocked_call(w["acme"], LAST)
    expected = expected_rollups()
    UsageRollup.objects.update(subtree_blocked=0)
    executor = MigrationExecutor(connection)
    name = ("billing", "0011_usage_rollup_blocked_calls")
    executor.loader.get_migration(*name).operations[1].code(executor.loader.project_state(name).apps, None)
    assert stored_rollups() == expected
    rollups_recount_blocked()  # sets, never adds: counting again changes nothing
    assert stored_rollups() == expected


def test_the_command_rebuilds_what_was_lost(world_with_owner):
    usage(world_with_owner["leaf"], 3, day=THIS)
    blocked_call(world_with_owner["leaf"], THIS)
    expected = expected_rollups()
    UsageRollup.objects.update(subtree_minutes=0, subtree_blocked=0)
    call_command("rebuild_usage_rollups", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert stored_rollups() == expected
    assert rollups_rebuild()["period"] == len(expected["period"])


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers only race on PostgreSQL")
def test_concurrent_create_or_increment_loses_nothing():
    account = AccountFactory()
    n = 8
    results = race(n, lambda i: _add(UsageRollup, ("account", "period"), ("own_minutes", "subtree_minutes"),
                                     [(account.pk, THIS, 1, 2)]))
    assert not [r for r in results if isinstance(r, Exception)]
    row = UsageRollup.objects.get(account=account, period=THIS)
    assert (row.own_minutes, row.subtree_minutes) == (n, 2 * n)


@pytest.fixture
def world_with_owner(db):
    """A root with its Owner, Acme (with a leaf below) and a sibling; Carla will take over Acme's billing."""
    root = AccountFactory(name="Northwind")
    acme = AccountFactory(parent=root, name="Acme")
    leaf = AccountFactory(parent=acme, name="Leaf")
    sibling = AccountFactory(parent=root, name="Sibling")
    owner, carla = UserFactory(), UserFactory()
    MembershipFactory(account=root, user=owner, role=RoleId.OWNER)
    return {"root": fresh(root), "acme": fresh(acme), "leaf": fresh(leaf), "sibling": fresh(sibling),
            "owner": User.objects.get(pk=owner.pk), "carla": carla}
