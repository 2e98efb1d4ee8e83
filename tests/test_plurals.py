"""Counts read as English (issue 16 item 8): "1 call", "1 invitation sent", "just now", never "1 calls" or
"0 minutes ago"."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from members.models import Membership
from members.roles import RoleId
from members.templatetags.dates import ago
from tests.factories import AccountFactory, UserFactory
from workspace.models import Agent, Contact, Conversation
from workspace.services import conversation_record

NOW = datetime.datetime(2026, 3, 15, 12, 0, tzinfo=datetime.UTC)

pytestmark = [pytest.mark.django_db, pytest.mark.time_machine(NOW, tick=False)]


def url(name, account, **kwargs):
    return reverse(name, kwargs={"account_id": account.public_id, **kwargs})


def test_members_page_says_just_now_and_one_minute_ago(client, make_member):
    account = AccountFactory()
    owner = make_member(account, RoleId.OWNER)
    one = make_member(account, RoleId.MEMBER, UserFactory(name="One Minute"))
    Membership.objects.filter(user=one).update(last_active_at=NOW - datetime.timedelta(seconds=61))
    client.force_login(owner)
    html = client.get(url("members:list", account)).content.decode()
    assert "just now" in html  # the reader, active this very request
    assert "1\xa0minute ago" in html  # timesince keeps the number and its word together
    assert "0\xa0minutes" not in html and "1\xa0minutes" not in html
    assert ago(NOW - datetime.timedelta(hours=2, minutes=1)) == "2\xa0hours, 1\xa0minute ago"


def test_one_invitation_sent_expiring_in_days(client, make_member, django_capture_on_commit_callbacks):
    account = AccountFactory()
    client.force_login(make_member(account, RoleId.OWNER))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("members:invite-bulk", account), {"role": "viewer", "emails": "a@example.test"},
                               follow=True)
    assert "1 invitation sent." in response.content.decode()


def test_a_limit_of_one_call_reads_one_call(client, make_member):
    parent = AccountFactory()
    account = AccountFactory(parent=parent, limit_concurrent_calls=1, limit_agents=1)
    agent = Agent.objects.create(account=account, name="Desk")
    contact = Contact.objects.create(account=account, name="C", email="c@example.test")
    start = timezone.now() - datetime.timedelta(hours=3)
    for offset in (0, 5):
        conversation = conversation_record(account=account, agent=agent, contact=contact, by=None,
                                           started_at=start + datetime.timedelta(minutes=offset),
                                           duration_seconds=600)
    assert conversation.status == Conversation.Status.BLOCKED
    assert "1 call already in progress" in conversation.blocked_reason
    client.force_login(make_member(account, RoleId.OWNER))
    page = client.get(url("workspace:conversation-list", account)).content.decode()
    assert "1 call already in progress" in page and "1 calls" not in page
    refused = client.post(url("workspace:agent-create", account), {"name": "Second", "language": "en",
                                                                    "status": "active"})
    assert "limit of 1 agent." in refused.content.decode()


def test_a_subaccount_with_one_nested_subaccount(client, make_member):
    parent = AccountFactory()
    sub = AccountFactory(parent=parent, name="Acme")
    AccountFactory(parent=sub)
    client.force_login(make_member(parent, RoleId.OWNER))
    html = client.get(url("accounts:subaccount-status", parent, sub_id=sub.public_id)).content.decode()
    assert "its 1 subaccount," in html and "subaccount(s)" not in html
