import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from members.roles import RoleId
from tests.factories import AccountFactory
from workspace.models import Agent, Contact, Conversation

pytestmark = pytest.mark.django_db

# Query budgets (issue 14): one extra query on a page must fail a test.
LIST_BUDGET = {"agent": 5, "contact": 5, "conversation": 5}

NOW = timezone.now().replace(microsecond=0)


def make(kind, account, n=0):
    if kind == "agent":
        return Agent.objects.create(account=account, name=f"Agent {n:03d}")
    contact = Contact.objects.create(account=account, name=f"Contact {n:03d}", phone=f"+1415555{n:04d}")
    if kind == "contact":
        return contact
    agent = Agent.objects.create(account=account, name=f"Agent for {n}")
    return Conversation.objects.create(account=account, agent=agent, contact=contact,
                                       started_at=NOW - datetime.timedelta(hours=n + 1), duration_seconds=61)


def u(kind, name, account, obj=None):
    kwargs = {"account_id": account.public_id}
    if obj is not None:
        kwargs["pk"] = obj.public_id
    return reverse(f"workspace:{kind}-{name}", kwargs=kwargs)


KINDS = ["agent", "contact", "conversation"]


@pytest.mark.parametrize("kind", KINDS)
class TestIsolationAndPermissions:
    def test_list_and_detail_show_own_objects(self, client, make_member, kind):
        account = AccountFactory()
        obj = make(kind, account)
        client.force_login(make_member(account, RoleId.VIEWER))
        assert str(obj.public_id) in client.get(u(kind, "list", account)).content.decode()
        assert client.get(u(kind, "detail", account, obj)).status_code == 200

    @pytest.mark.parametrize("page", ["detail", "edit", "delete"])
    def test_a_siblings_object_is_404_under_my_account_and_theirs(self, client, make_member, kind, page):
        parent = AccountFactory()
        mine, theirs = AccountFactory(parent=parent), AccountFactory(parent=parent)
        foreign = make(kind, theirs)
        client.force_login(make_member(mine, RoleId.OWNER))
        assert client.get(u(kind, page, mine, foreign)).status_code == 404  # guessing ids
        assert client.get(u(kind, page, theirs, foreign)).status_code == 404
        if page != "detail":
            assert client.post(u(kind, page, mine, foreign), {"name": "Hijack"}).status_code == 404
        assert kind != "agent" or Agent.objects.get(pk=foreign.pk).name != "Hijack"

    def test_viewer_cannot_create_edit_or_delete(self, client, make_member, kind):
        account = AccountFactory()
        obj = make(kind, account)
        client.force_login(make_member(account, RoleId.VIEWER))
        assert client.get(u(kind, "create", account)).status_code == 403
        assert client.post(u(kind, "edit", account, obj), {"name": "x"}).status_code == 403
        assert client.post(u(kind, "delete", account, obj)).status_code == 403
        assert type(obj).objects.filter(pk=obj.pk).exists()

    def test_list_query_count_does_not_grow_with_rows(self, client, make_member, count_queries, kind):
        account = AccountFactory()
        client.force_login(make_member(account, RoleId.OWNER))
        client.get(u(kind, "list", account))  # first visit records "last active" once
        counts = []
        for total in (5, 50):
            for n in range(Conversation.objects.count() if kind == "conversation" else 0, total):
                make(kind, account, n + (100 if kind == "conversation" else 0) + total)
            counts.append(count_queries(lambda: client.get(u(kind, "list", account))))
        assert counts == [LIST_BUDGET[kind] - 1, LIST_BUDGET[kind]]  # fits on one page: no COUNT


class TestAgents:
    def test_member_creates_and_edits_but_cannot_delete(self, client, make_member):
        account = AccountFactory()
        client.force_login(make_member(account, RoleId.MEMBER))
        response = client.post(u("agent", "create", account), {"name": "Front desk", "language": "en",
                                                                "status": "active"}, follow=True)
        agent = Agent.objects.get(account=account)
        assert "Agent “Front desk” saved" in response.content.decode()
        client.post(u("agent", "edit", account, agent), {"name": "Front desk 2", "language": "de",
                                                         "status": "paused"})
        agent.refresh_from_db()
        assert (agent.name, agent.language, agent.status) == ("Front desk 2", "de", "paused")
        assert client.post(u("agent", "delete", account, agent)).status_code == 403

    def test_delete_asks_for_confirmation_then_deletes(self, client, make_member):
        account = AccountFactory()
        agent = make("agent", account)
        client.force_login(make_member(account, RoleId.ADMIN))
        assert "Delete Agent 000?" in client.get(u("agent", "delete", account, agent)).content.decode()
        response = client.post(u("agent", "delete", account, agent), follow=True)
        assert "deleted" in response.content.decode() and not Agent.objects.filter(pk=agent.pk).exists()

    def test_an_agent_with_conversations_cannot_be_deleted(self, client, make_member):
        account = AccountFactory()
        conversation = make("conversation", account)
        client.force_login(make_member(account, RoleId.OWNER))
        response = client.post(u("agent", "delete", account, conversation.agent), follow=True)
        assert "Pause the agent instead" in response.content.decode()
        assert Agent.objects.filter(pk=conversation.agent_id).exists()

    def test_past_max_agents_is_refused_with_a_message(self, client, make_member):
        account = AccountFactory(parent=AccountFactory(), limit_agents=1)
        make("agent", account)
        client.force_login(make_member(account, RoleId.OWNER))
        response = client.post(u("agent", "create", account), {"name": "Second", "language": "en",
                                                                "status": "active"})
        assert "limit of 1 agent." in response.content.decode()
        assert Agent.objects.filter(account=account).count() == 1

    def test_search_and_pagination(self, client, make_member):
        account = AccountFactory()
        for n in range(30):
            make("agent", account, n)
        Agent.objects.create(account=account, name="Needle")
        client.force_login(make_member(account, RoleId.VIEWER))
        assert [a.name for a in client.get(u("agent", "list", account), {"q": "needle"}).context["object_list"]] \
            == ["Needle"]
        page2 = client.get(u("agent", "list", account), {"page": 2})
        assert len(page2.context["object_list"]) == 6 and page2.context["paginator"].count == 31
        assert "No agent matches" in client.get(u("agent", "list", account), {"q": "zzz"}).content.decode()


class TestContacts:
    def test_phone_or_email_is_required_and_phone_is_unique(self, client, make_member):
        account = AccountFactory()
        make("contact", account, 1)
        client.force_login(make_member(account, RoleId.MEMBER))
        missing = client.post(u("contact", "create", account), {"name": "Nobody"})
        assert "phone number or an email" in missing.content.decode()
        dup = client.post(u("contact", "create", account), {"name": "Dup", "phone": "+14155550001"})
        assert "already exists" in dup.content.decode()
        bad = client.post(u("contact", "create", account), {"name": "Bad", "phone": "555"})
        assert "international format" in bad.content.decode()
        assert Contact.objects.filter(account=account).count() == 1

    def test_the_same_phone_in_another_account_is_fine(self, client, make_member):
        other = AccountFactory()
        make("contact", other, 1)
        account = AccountFactory()
        client.force_login(make_member(account, RoleId.MEMBER))
        client.post(u("contact", "create", account), {"name": "Same", "phone": "+14155550001"})
        assert Contact.objects.filter(account=account).count() == 1


class TestConversations:
    def test_recording_meters_usage_rounded_up(self, client, make_member):
        from billing.models import UsageRecord

        account = AccountFactory()
        agent, contact = make("agent", account), make("contact", account)
        client.force_login(make_member(account, RoleId.MEMBER))
        client.post(u("conversation", "create", account), {
            "agent": agent.pk, "contact": contact.pk, "direction": "inbound",
            "started_at": (NOW - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"), "duration_seconds": 61,
        })
        conversation = Conversation.objects.get(account=account)
        assert conversation.status == "completed"
        assert UsageRecord.objects.get(conversation=conversation).minutes == 2

    def test_another_tenants_agent_is_not_a_valid_choice(self, client, make_member):
        account, other = AccountFactory(), AccountFactory()
        foreign_agent = make("agent", other)
        contact = make("contact", account)
        client.force_login(make_member(account, RoleId.MEMBER))
        response = client.post(u("conversation", "create", account), {
            "agent": foreign_agent.pk, "contact": contact.pk, "direction": "inbound",
            "started_at": NOW.strftime("%Y-%m-%dT%H:%M"), "duration_seconds": 30,
        })
        assert "Select a valid choice" in response.content.decode()
        assert not Conversation.objects.exists()

    def test_future_start_and_zero_duration_are_refused(self, client, make_member):
        account = AccountFactory()
        agent, contact = make("agent", account), make("contact", account)
        client.force_login(make_member(account, RoleId.MEMBER))
        response = client.post(u("conversation", "create", account), {
            "agent": agent.pk, "contact": contact.pk, "direction": "inbound",
            "started_at": (NOW + datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"), "duration_seconds": 0,
        })
        html = response.content.decode()
        assert "cannot start in the future" in html and "greater than or equal to 1" in html

    def test_editing_keeps_start_and_duration(self, client, make_member):
        account = AccountFactory()
        conversation = make("conversation", account)
        client.force_login(make_member(account, RoleId.MEMBER))
        client.post(u("conversation", "edit", account, conversation), {"direction": "outbound", "summary": "Booked",
                                                                        "duration_seconds": 9999})
        conversation.refresh_from_db()
        assert (conversation.summary, conversation.duration_seconds) == ("Booked", 61)

    def test_status_filter(self, client, make_member):
        account = AccountFactory()
        blocked = make("conversation", account, 1)
        Conversation.objects.filter(pk=blocked.pk).update(status="blocked", blocked_reason="Minutes limit")
        make("conversation", account, 2)
        client.force_login(make_member(account, RoleId.VIEWER))
        rows = client.get(u("conversation", "list", account), {"status": "blocked"}).context["object_list"]
        assert [c.pk for c in rows] == [blocked.pk]
