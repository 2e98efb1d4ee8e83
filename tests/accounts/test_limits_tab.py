"""Subaccount → Limits (issue 16 item 8): each limit with what is used against it, a bar, and a warning at 80 %
and at 100 %. Minutes come from the usage rollup."""

import datetime
import re

import pytest
from django.urls import reverse

from billing.models import UsageRecord
from members.roles import RoleId
from tests.factories import AccountFactory, usage
from workspace.models import Agent

pytestmark = [pytest.mark.django_db,
              pytest.mark.time_machine(datetime.datetime(2026, 5, 14, 9, tzinfo=datetime.UTC), tick=False)]


def limits_tab(client, parent, sub):
    url = reverse("accounts:subaccount-limits", kwargs={"account_id": parent.public_id, "sub_id": sub.public_id})
    return client.get(url).content.decode()


def row(html, label):
    match = re.search(rf'<div class="limit-row[^"]*"[^>]*>\s*<p class="limit-head"><strong>{label}</strong>(.*?)</div>',
                      html, re.S)
    assert match, label
    return match.group(0)


@pytest.fixture
def parent_and_sub(client, make_member):
    parent = AccountFactory(name="Agency")
    sub = AccountFactory(parent=parent, name="Acme", limit_minutes=100, limit_agents=5, limit_members=10)
    client.force_login(make_member(parent, RoleId.OWNER))
    return parent, sub


def test_usage_below_80_percent_shows_a_bar_and_no_warning(client, parent_and_sub):
    parent, sub = parent_and_sub
    usage(sub, 79)
    minutes = row(limits_tab(client, parent, sub), "Minutes this period")
    assert "79 of 100 · 79 %" in minutes and '<meter class="bar" min="0" max="100" value="79"' in minutes
    assert "limit-warning" not in minutes


def test_a_warning_at_80_percent_and_a_stronger_one_at_the_limit(client, parent_and_sub, make_member):
    parent, sub = parent_and_sub
    nested = AccountFactory(parent=sub, name="Acme Sales")
    usage(sub, 50)
    usage(nested, 30)  # the subtree's minutes count against the pool
    for i in range(5):
        Agent.objects.create(account=sub, name=f"Agent {i}")
    html = limits_tab(client, parent, sub)
    minutes = row(html, "Minutes this period")
    assert "80 of 100" in minutes and "Nearly reached" in minutes and "limit-near" in minutes
    agents = row(html, "Agents")
    assert "5 of 5 · 100 %" in agents and "Limit reached" in agents and "no more agents can be created" in agents
    assert "limit-over" in agents
    members = row(html, "Members")
    assert "limit-warning" not in members


def test_minutes_are_read_from_the_rollup_not_the_ledger(client, parent_and_sub):
    parent, sub = parent_and_sub
    usage(sub, 100)
    UsageRecord.objects.filter(account=sub).delete()  # the ledger no longer says so; the rollup still does
    assert "Limit reached" in row(limits_tab(client, parent, sub), "Minutes this period")


def test_no_limit_of_its_own_has_no_bar(client, make_member):
    parent = AccountFactory()
    sub = AccountFactory(parent=parent)
    client.force_login(make_member(parent, RoleId.OWNER))
    html = limits_tab(client, parent, sub)
    assert "<meter" not in html and "No limit of its own: pools above it still apply." in html
