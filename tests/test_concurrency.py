"""Races, on PostgreSQL with real threads and connections (issue 10). SQLite serializes every write
transaction (``transaction_mode = IMMEDIATE``), so these only mean something on PostgreSQL; the suite
runs them there in CI.

Each test starts N threads at a barrier, each calling the service on its own connection; the
database must end with exactly one winner and the others refused with a clear error, never a
server error or a half-written row.
"""

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from billing.models import UsageRecord
from members import invitations as inv
from members.models import Membership, User
from members.roles import RoleId
from members.services import membership_remove
from tests.concurrency import race
from tests.factories import AccountFactory, MembershipFactory, UserFactory
from workspace.models import Agent, Contact, Conversation
from workspace.services import conversation_record

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),  # keeps the seeded plans for later tests
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks race only on PostgreSQL; CI runs it there"),
]


def test_twenty_signups_on_one_invitation_link_one_wins_and_no_orphans():
    account = AccountFactory()
    owner = UserFactory()
    MembershipFactory(account=account, user=owner, role=RoleId.OWNER)
    invitation = inv.invitation_create(account=account, email="race@example.test", role=RoleId.MEMBER,
                                       by=User.objects.get(pk=owner.pk))

    results = race(20, lambda i: inv.invitation_accept_signup(invitation=invitation, name=f"Racer {i}",
                                                              password="a-Long-pass-2026"))
    winners = [r for r in results if isinstance(r, Membership)]
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(winners) == 1, results
    assert len(refused) == 19, [r for r in results if not isinstance(r, (Membership, ValidationError))]
    assert User.objects.filter(email="race@example.test").count() == 1
    assert Membership.objects.filter(account=account, user__email="race@example.test").count() == 1


def test_two_owners_leaving_at_once_leave_one_owner():
    account = AccountFactory()
    owners = [UserFactory(), UserFactory()]
    for user in owners:
        MembershipFactory(account=account, user=user, role=RoleId.OWNER)

    def leave(i):
        me = User.objects.get(pk=owners[i].pk)
        return membership_remove(membership=Membership.objects.get(account=account, user=me), by=me)

    results = race(2, leave)
    assert sum(isinstance(r, list) for r in results) == 1, results
    assert sum(isinstance(r, ValidationError) and "last Owner" in str(r) for r in results) == 1, results
    assert Membership.objects.filter(account=account, role=RoleId.OWNER).count() == 1


def test_an_admin_removing_the_other_owner_while_they_leave_keeps_an_owner():
    account = AccountFactory()
    a, b = UserFactory(), UserFactory()
    for user in (a, b):
        MembershipFactory(account=account, user=user, role=RoleId.OWNER)

    def act(i):
        actor = User.objects.get(pk=a.pk)
        target = a if i == 0 else b
        return membership_remove(membership=Membership.objects.get(account=account, user=target), by=actor)

    results = race(2, act)
    assert all(isinstance(r, list | ValidationError | PermissionDenied) for r in results), results
    assert Membership.objects.filter(account=account, role=RoleId.OWNER).count() >= 1


# Mid-month: "an hour ago" must fall in the same billing period as now (at 00:30 on the 1st it would not).
@pytest.mark.time_machine(datetime.datetime(2026, 6, 15, 12, tzinfo=datetime.UTC), tick=True)
def test_siblings_cannot_both_take_the_last_minutes_of_their_parents_pool():
    agency = AccountFactory()
    client = AccountFactory(parent=agency, limit_minutes=100)
    teams = [AccountFactory(parent=client, name=f"Team {i}") for i in range(6)]
    agents = [Agent.objects.create(account=t, name="A") for t in teams]
    contacts = [Contact.objects.create(account=t, name="C", email=f"c{i}@example.test") for i, t in enumerate(teams)]
    start = timezone.now() - datetime.timedelta(hours=1)
    conversation_record(account=teams[0], agent=agents[0], contact=contacts[0], by=None, started_at=start,
                        duration_seconds=60 * 60)  # 60 of 100 used: 40 left, room for one call of 30

    def record(i):
        return conversation_record(account=teams[i], agent=agents[i], contact=contacts[i], by=None,
                                   started_at=start + datetime.timedelta(minutes=i), duration_seconds=30 * 60)

    results = race(6, record)
    assert all(isinstance(r, Conversation) for r in results), results
    assert sorted(r.status for r in results) == ["blocked"] * 5 + ["completed"]
    assert sum(UsageRecord.objects.filter(account__in=teams).values_list("minutes", flat=True)) == 90


def test_calls_recorded_and_deleted_while_the_agent_is_edited_and_recounted_keep_its_count():
    """Recording locks the account, then counts the call on the agent's row; editing the agent and deleting a call
    take the account first too (else the agent's row and the account's, taken in the other order, deadlock), and
    the recount locks the agents before it counts (else it writes back a count older than a call's)."""
    from workspace.counts import recount_agent_conversations
    from workspace.services import agent_update, conversation_delete

    account = AccountFactory()
    agent = Agent.objects.create(account=account, name="Desk")
    contact = Contact.objects.create(account=account, name="C", email="c@example.test")
    start = timezone.now() - datetime.timedelta(hours=2)
    for _round in range(3):
        doomed = [conversation_record(account=account, agent=agent, contact=contact, by=None, duration_seconds=60,
                                      started_at=start) for _ in range(3)]

        def work(i, doomed=doomed):
            if i % 4 == 0:
                return conversation_record(account=account, agent=Agent.objects.get(pk=agent.pk), contact=contact,
                                           by=None, started_at=start, duration_seconds=60)
            if i % 4 == 1:
                return agent_update(agent=Agent.objects.get(pk=agent.pk), by=None, name=f"Desk {i}")
            if i % 4 == 2:
                return conversation_delete(conversation=Conversation.objects.get(pk=doomed[i // 4].pk), by=None)
            return recount_agent_conversations()

        results = race(12, work)
        assert not any(isinstance(r, Exception) for r in results), results
        agent.refresh_from_db()
        assert agent.conversation_count == Conversation.objects.filter(agent=agent).count()


def test_a_recount_while_a_call_is_being_recorded_keeps_that_call():
    """The recount waits for the call's transaction (it locks the agents first), then counts with it: counting
    first and writing after the call committed would write back the count without it."""
    import threading

    from django.db import connections, transaction

    from workspace.counts import recount_agent_conversations

    account = AccountFactory()
    agent = Agent.objects.create(account=account, name="Desk")
    contact = Contact.objects.create(account=account, name="C", email="c@example.test")
    Agent.objects.filter(pk=agent.pk).update(conversation_count=5)  # drifted: the recount has work to do
    recorded, release, errors = threading.Event(), threading.Event(), []

    def record():
        try:
            with transaction.atomic():
                conversation_record(account=account, agent=agent, contact=contact, by=None, duration_seconds=60,
                                    started_at=timezone.now() - datetime.timedelta(hours=1))
                recorded.set()
                release.wait(30)  # counted on the agent's row, not committed yet
        except Exception as exc:  # noqa: BLE001 - asserted on below
            errors.append(exc)
        finally:
            connections.close_all()

    def recount():
        try:
            recorded.wait(30)
            recount_agent_conversations()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=record), threading.Thread(target=recount)]
    for t in threads:
        t.start()
    recorded.wait(30)
    import time

    time.sleep(0.5)  # the recount has started and waits on the agent's row
    release.set()
    for t in threads:
        t.join(60)
    assert not errors and not any(t.is_alive() for t in threads)
    agent.refresh_from_db()
    assert agent.conversation_count == 1 == Conversation.objects.filter(agent=agent).count()


def test_a_move_waiting_for_the_root_holds_nothing_below_it():
    """``subaccount_move`` locks its two rows in path order, root first, as recording a call locks a lineage: while
    a call holds the root, a move of an account up under that root waits for the root holding nothing, so the
    call can still lock the account (with the opposite order each would wait for the other: a deadlock)."""
    import threading
    import time

    from django.db import DatabaseError, transaction

    from accounts.models import Account
    from accounts.services import subaccount_move

    root = AccountFactory()
    middle = AccountFactory(parent=root)
    moving = AccountFactory(parent=middle)
    outcome = {}

    def move():
        try:
            outcome["moved"] = subaccount_move(account=moving, new_parent=root, by=None)
        except Exception as exc:  # noqa: BLE001 - asserted on below
            outcome["moved"] = exc
        finally:
            connection.close()

    with transaction.atomic():  # as conversation_record: the lineage locked from the root down
        Account.objects.select_for_update().get(pk=root.pk)
        mover = threading.Thread(target=move)
        mover.start()
        with connection.cursor() as cursor:
            for _ in range(200):  # until the move waits for a lock
                cursor.execute("SELECT pg_stat_clear_snapshot()")
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                               "AND wait_event_type = 'Lock'")
                if cursor.fetchone()[0]:
                    break
                time.sleep(0.02)
            else:
                pytest.fail("the move never waited for the root")
        try:
            Account.objects.select_for_update(nowait=True).get(pk=moving.pk)
        except DatabaseError:
            pytest.fail("the move locked the account before the root: a call recorded below it would deadlock")
    mover.join(timeout=30)
    assert not mover.is_alive()
    assert isinstance(outcome["moved"], Account), outcome
    assert Account.objects.get(pk=moving.pk).parent_id == root.pk
