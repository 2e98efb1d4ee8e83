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


def test_a_call_dated_in_a_closed_month_is_checked_against_the_month_it_is_billed_in():
    from billing.services import invoice_close

    root = AccountFactory(name="Root")
    client = AccountFactory(parent=root, name="Client", limit_minutes=100)
    last_month = timezone.now().replace(day=1) - datetime.timedelta(days=5)
    invoice_close(root=root, period=last_month.date().replace(day=1))
    assert record(client, 100).status == "completed"  # this month's pool is full
    late = record(client, 100, start=last_month)  # February's pool is empty, but February's invoice is closed
    assert late.status == "blocked" and "100 of 100 minutes used" in late.blocked_reason
    assert UsageRecord.objects.filter(account=client).count() == 1


@pytest.mark.parametrize("start, message", [
    (NOW + datetime.timedelta(minutes=6), "cannot start in the future"),
    (datetime.datetime(2099, 1, 1, tzinfo=datetime.UTC), "cannot start in the future"),
    (datetime.datetime(2026, 1, 31, 23, 59, tzinfo=datetime.UTC), "earliest start accepted now is 1 February 2026"),
    (datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC), "earliest start accepted now is 1 February 2026"),
])
def test_a_call_dated_in_a_month_nobody_bills_is_refused(start, message):
    # every month's pool is checked and its invoice closed once that month and the next have passed: a start
    # outside them would draw an empty pool and meter usage that is never billed
    from django.core.exceptions import ValidationError

    client = AccountFactory(parent=AccountFactory(), limit_minutes=10)
    with pytest.raises(ValidationError, match=message):
        record(client, 10, start=start)
    assert not Conversation.objects.exists() and not UsageRecord.objects.exists()
    assert record(client, 10, start=datetime.datetime(2026, 2, 1, tzinfo=datetime.UTC)).status == "completed"
    assert record(client, 10, start=NOW + datetime.timedelta(minutes=4)).status == "completed"  # clock skew


def test_a_subaccount_moved_away_and_back_counts_once_in_the_pool(make_member):
    from accounts.services import subaccount_move
    from billing.selectors import minutes_drawn_from_pools, minutes_used_in_subtrees
    from members.roles import RoleId

    agency = AccountFactory(name="Agency")
    owner = make_member(agency, RoleId.OWNER)
    first = AccountFactory(parent=agency, name="First", limit_minutes=300)
    second = AccountFactory(parent=agency, name="Second")
    shop = AccountFactory(parent=first, name="Shop")
    assert record(shop, 200).status == "completed"
    subaccount_move(account=shop, new_parent=second, by=owner)  # a mistake…
    subaccount_move(account=type(shop).objects.get(pk=shop.pk), new_parent=first, by=owner)  # …undone
    first = type(first).objects.get(pk=first.pk)
    assert minutes_used_in_subtrees([first])[first.pk] == minutes_drawn_from_pools([first])[first.pk] == 200
    assert record(first, 100).status == "completed"  # 300 of 300
    assert record(first, 1).status == "blocked"


def test_another_subaccount_joining_never_shrinks_what_the_pool_gave(make_member):
    from accounts.services import subaccount_move
    from billing.selectors import minutes_drawn_from_pools
    from members.roles import RoleId

    agency = AccountFactory(name="Agency")
    owner = make_member(agency, RoleId.OWNER)
    first = AccountFactory(parent=agency, name="First", limit_minutes=300)
    second = AccountFactory(parent=agency, name="Second")
    leaver, joiner = AccountFactory(parent=first, name="Leaver"), AccountFactory(parent=second, name="Joiner")
    assert record(leaver, 200).status == "completed" and record(joiner, 50).status == "completed"
    subaccount_move(account=leaver, new_parent=second, by=owner)
    subaccount_move(account=joiner, new_parent=first, by=owner)
    first = type(first).objects.get(pk=first.pk)
    assert minutes_drawn_from_pools([first])[first.pk] == 200  # the 200 it gave; Joiner's 50 stand in for some
    assert record(first, 100).status == "completed" and record(first, 1).status == "blocked"


def test_the_limits_tab_counts_departed_minutes_only_against_a_pool(make_member, client):
    from django.urls import reverse

    from accounts.services import subtree_move
    from members.roles import RoleId

    agency = AccountFactory(name="Agency")
    client.force_login(make_member(agency, RoleId.OWNER))
    pooled, unpooled = AccountFactory(parent=agency, name="Pooled", limit_minutes=50), \
        AccountFactory(parent=agency, name="Unpooled")
    for parent in (pooled, unpooled):
        leaver = AccountFactory(parent=parent, name=f"Leaver of {parent.name}")
        assert record(leaver, 30).status == "completed"
        subtree_move(leaver, None)  # as a billing transfer does

    def limits(sub):
        return client.get(reverse("accounts:subaccount-limits", kwargs={
            "account_id": agency.public_id, "sub_id": sub.public_id})).content.decode()

    assert "30 of 50 · 60 %" in limits(pooled) and "30 of them by subaccounts that left this period." in limits(pooled)
    page = limits(unpooled)
    assert "left this period" not in page and '<span class="num">0</span>' in page
