import datetime

import pytest
from django.utils import timezone

from billing.models import UsageRecord
from tests.factories import AccountFactory
from workspace.models import Agent, Contact, Conversation
from workspace.services import conversation_record

# Time is an input: minutes pools are per calendar month and record() starts conversations "2 hours ago",
# so the clock is frozen mid-month (at 00:10 on the 1st "2 hours ago" was last month).
NOW = datetime.datetime(2026, 3, 15, 12, 0, tzinfo=datetime.UTC)

pytestmark = [pytest.mark.django_db, pytest.mark.time_machine(NOW, tick=False)]


def record(account, minutes, start=None):
    agent = Agent.objects.filter(account=account).first() or Agent.objects.create(account=account, name="A")
    contact = Contact.objects.filter(account=account).first() or Contact.objects.create(
        account=account, name="C", email="c@example.test")
    return conversation_record(account=account, agent=agent, contact=contact, by=None,
                               started_at=start or timezone.now() - datetime.timedelta(hours=2),
                               duration_seconds=minutes * 60)


def test_a_subaccounts_minutes_count_against_every_ancestors_pool():
    agency = AccountFactory(name="Agency")
    client = AccountFactory(parent=agency, name="Client", limit_minutes=100)
    team = AccountFactory(parent=client, name="Team")
    other_team = AccountFactory(parent=client, name="Other team")
    assert record(team, 60).status == "completed"
    blocked = record(other_team, 50)
    assert blocked.status == "blocked"
    # R6: the pool is the parent's, so the reason (shown in Other team) names nothing above it
    assert blocked.blocked_reason == "A minutes pool above this account is used up."
    assert not UsageRecord.objects.filter(conversation=blocked).exists()  # recorded, not metered
    assert record(other_team, 40).status == "completed"  # exactly fills the pool


def test_the_pool_is_per_period():
    client = AccountFactory(parent=AccountFactory(), limit_minutes=10)
    last_month = timezone.now().replace(day=1) - datetime.timedelta(days=3)
    assert record(client, 10, start=last_month).status == "completed"
    assert record(client, 10).status == "completed"


def test_concurrent_calls_limit_blocks_overlapping_conversations():
    account = AccountFactory(parent=AccountFactory(), limit_concurrent_calls=1)
    start = timezone.now() - datetime.timedelta(hours=3)
    assert record(account, 10, start=start).status == "completed"
    overlapping = record(account, 10, start=start + datetime.timedelta(minutes=5))
    assert overlapping.status == "blocked" and "Concurrent call limit" in overlapping.blocked_reason
    assert record(account, 10, start=start + datetime.timedelta(minutes=30)).status == "completed"
    assert Conversation.objects.filter(account=account).count() == 3


def test_sibling_usage_does_not_touch_my_pool():
    parent = AccountFactory()
    mine = AccountFactory(parent=parent, limit_minutes=5)
    sibling = AccountFactory(parent=parent)
    record(sibling, 50)
    assert record(mine, 5).status == "completed"


def test_the_service_refuses_another_accounts_agent():
    from django.core.exceptions import ValidationError

    mine, other = AccountFactory(), AccountFactory()
    foreign_agent = Agent.objects.create(account=other, name="Theirs")
    contact = Contact.objects.create(account=mine, name="C", email="c@example.test")
    with pytest.raises(ValidationError, match="Choose one from this account"):
        conversation_record(account=mine, agent=foreign_agent, contact=contact, by=None,
                            started_at=timezone.now(), duration_seconds=60)
    assert not Conversation.objects.exists()


def test_moving_a_used_up_subaccount_elsewhere_in_the_tree_does_not_free_the_pool(make_member):
    from accounts.services import subaccount_move
    from members.roles import RoleId

    agency = AccountFactory(name="Agency")
    owner = make_member(agency, RoleId.OWNER)
    reseller = AccountFactory(parent=agency, name="Reseller", limit_minutes=100)
    busy, quiet = AccountFactory(parent=reseller, name="Busy"), AccountFactory(parent=reseller, name="Quiet")
    elsewhere = AccountFactory(parent=agency, name="Elsewhere")
    assert record(busy, 100).status == "completed"
    subaccount_move(account=busy, new_parent=elsewhere, by=owner)
    assert record(quiet, 1).status == "blocked"  # Reseller's pool gave its 100 minutes this period
    assert record(elsewhere, 1).status == "completed"  # Elsewhere has no pool
