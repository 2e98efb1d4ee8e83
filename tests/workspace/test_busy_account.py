"""An account with more calls than anyone pages through (issue 14): each agent keeps the count of its
conversations, the Conversations page counts at most the rows it offers, filters by agent from the agent's own
index, sorts by length from an index, and searches contacts and agents before their calls."""

import datetime
import io
import random

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.paging import AtMostPaginator
from members.roles import RoleId
from tests.accounts.test_audit_scale import plan
from tests.factories import AccountFactory
from workspace import services, views
from workspace.counts import recount_agent_conversations
from workspace.models import Agent, Contact, Conversation

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


def call(account, agent, contact, hours=1, seconds=61, summary=""):
    return Conversation.objects.create(account=account, agent=agent, contact=contact, summary=summary,
                                       started_at=NOW - datetime.timedelta(hours=hours), duration_seconds=seconds)


def listed(client, account, **params):
    response = client.get(reverse("workspace:conversation-list", args=[account.public_id]), params)
    assert response.status_code == 200
    return response, [c.pk for c in response.context["object_list"]]


@pytest.fixture
def desk(make_member):
    """An account with two agents and two contacts, and its Owner."""
    account = AccountFactory(name="Busy")
    sales, support = (Agent.objects.create(account=account, name=n) for n in ("Sales line", "Support line"))
    ann = Contact.objects.create(account=account, name="Ann Caller", phone="+14155550101")
    bob = Contact.objects.create(account=account, name="Bob Ringer", phone="+14155550202")
    return account, sales, support, ann, bob, make_member(account, RoleId.OWNER)


def counts_are_right() -> bool:
    return all(a.conversation_count == a.n for a in Agent.objects.annotate(n=Count("conversations")))


# ---- the stored count ----------------------------------------------------------------------------------------

def test_recording_and_deleting_keep_each_agent_s_count(desk):
    account, sales, support, ann, _bob, owner = desk
    recorded = [services.conversation_record(account=account, agent=sales, contact=ann, by=owner,
                                             duration_seconds=60, started_at=NOW - datetime.timedelta(hours=h))
                for h in (1, 2, 3)]
    services.conversation_record(account=account, agent=support, contact=ann, by=owner, duration_seconds=60,
                                 started_at=NOW - datetime.timedelta(hours=4))
    sales.refresh_from_db(), support.refresh_from_db()
    assert (sales.conversation_count, support.conversation_count) == (3, 1)
    services.conversation_delete(conversation=recorded[0], by=owner)
    sales.refresh_from_db()
    assert sales.conversation_count == 2


def test_a_refused_recording_or_deletion_leaves_the_count(desk, make_member):
    account, sales, _support, ann, _bob, owner = desk
    kept = call(account, sales, ann)
    viewer = make_member(account, RoleId.VIEWER)
    with pytest.raises(PermissionDenied):
        services.conversation_record(account=account, agent=sales, contact=ann, by=viewer, duration_seconds=60,
                                     started_at=NOW - datetime.timedelta(hours=2))
    with pytest.raises(PermissionDenied):
        services.conversation_delete(conversation=kept, by=viewer)
    sales.refresh_from_db()
    assert sales.conversation_count == 1


def test_blocked_calls_count_and_the_counts_match_the_rows_after_any_mix_of_writes(desk):
    account, sales, support, ann, bob, _owner = desk
    other = AccountFactory(name="Other")
    theirs = Agent.objects.create(account=other, name="Sales line")
    their_contact = Contact.objects.create(account=other, name="Ann Caller", phone="+14155550101")
    rng, alive = random.Random(14), []
    for step in range(120):
        if alive and rng.random() < 0.3:
            alive.pop(rng.randrange(len(alive))).delete()
        elif rng.random() < 0.2:
            alive.append(call(other, theirs, their_contact, hours=step))
        else:
            made = call(account, rng.choice([sales, support]), rng.choice([ann, bob]), hours=step)
            if rng.random() < 0.2:
                Conversation.objects.filter(pk=made.pk).update(status=Conversation.Status.BLOCKED)
            alive.append(made)
        assert counts_are_right(), f"after step {step}"
    assert sum(a.conversation_count for a in Agent.objects.all()) == Conversation.objects.count() > 0


def test_the_recount_sets_counts_that_drifted_and_says_how_many(desk):
    account, sales, support, ann, _bob, _owner = desk
    call(account, sales, ann), call(account, sales, ann)
    Agent.objects.filter(pk=sales.pk).update(conversation_count=7)
    Agent.objects.filter(pk=support.pk).update(conversation_count=3)
    call_command("recount_agent_conversations", stdout=(out := io.StringIO()))
    assert "2 corrected" in out.getvalue() and counts_are_right()
    sales.refresh_from_db()
    assert sales.conversation_count == 2
    assert recount_agent_conversations() == 0
    call_command("recount_agent_conversations", stdout=(out := io.StringIO()))
    assert "all were right" in out.getvalue()


def test_the_agents_page_shows_and_sorts_by_the_stored_count_without_counting_calls(client, desk,
                                                                                    count_queries):
    account, sales, support, ann, _bob, owner = desk
    for h in range(3):
        call(account, support, ann, hours=h + 1)
    call(account, sales, ann)
    client.force_login(owner)
    url = reverse("workspace:agent-list", args=[account.public_id])
    client.get(url)
    response = client.get(url, {"sort": "-conversations"})
    assert [a.name for a in response.context["object_list"]] == ["Support line", "Sales line"]
    html = response.content.decode()
    link = reverse("workspace:conversation-list", args=[account.public_id]) + f"?agent={support.public_id}"
    assert link in html  # the count leads to the agent's calls
    for h in range(20):
        call(account, sales, ann, hours=h + 10)
    assert count_queries(lambda: client.get(url, {"sort": "-conversations"})) == 4  # 20 fit on a page: no COUNT
    assert [a.name for a in client.get(url, {"sort": "-conversations"}).context["object_list"]] == [
        "Sales line", "Support line"]


# ---- the Conversations page ----------------------------------------------------------------------------------

def test_the_agent_filter_lists_one_agent_s_calls_newest_first(client, desk):
    account, sales, support, ann, bob, owner = desk
    first, second = call(account, sales, ann, hours=5), call(account, sales, bob, hours=1)
    call(account, support, ann, hours=2)
    blocked = call(account, sales, bob, hours=3)
    Conversation.objects.filter(pk=blocked.pk).update(status=Conversation.Status.BLOCKED)
    client.force_login(owner)
    response, rows = listed(client, account, agent=str(sales.public_id))
    assert rows == [second.pk, blocked.pk, first.pk]
    assert "Sales line" in response.content.decode() and "All agents" in response.content.decode()
    assert listed(client, account, agent=str(sales.public_id), status="blocked")[1] == [blocked.pk]
    assert listed(client, account, agent=str(sales.public_id), sort="started")[1] == [first.pk, blocked.pk,
                                                                                      second.pk]


@pytest.mark.parametrize("value", ["nonsense", "", "00000000-0000-0000-0000-000000000000"])
def test_an_agent_that_is_not_one_of_the_account_s_is_a_404(client, desk, value):
    account, *_rest, owner = desk
    client.force_login(owner)
    url = reverse("workspace:conversation-list", args=[account.public_id])
    assert client.get(url, {"agent": value}).status_code == 404


def test_another_tenant_s_agent_is_a_404_and_shows_nothing_of_theirs(client, desk, make_member):
    account, sales, _support, ann, _bob, owner = desk
    parent = AccountFactory(name="Parent")
    mine, theirs = AccountFactory(parent=parent, name="Mine"), AccountFactory(parent=parent, name="Theirs")
    their_agent = Agent.objects.create(account=theirs, name="Their agent")
    call(theirs, their_agent, Contact.objects.create(account=theirs, name="Secret", phone="+14155550999"))
    client.force_login(make_member(mine, RoleId.OWNER))
    for where in (mine, theirs):
        response = client.get(reverse("workspace:conversation-list", args=[where.public_id]),
                              {"agent": str(their_agent.public_id)})
        assert response.status_code == 404 and b"Secret" not in response.content


def test_a_member_without_view_conversations_is_refused_the_filtered_list(client, make_member):
    from accounts.access import resolve_access

    capped_account = AccountFactory(parent=AccountFactory(name="Agency"), name="No calls",
                                    access_categories={"conversations": "none"})
    agent = Agent.objects.create(account=capped_account, name="Desk")
    owner = make_member(capped_account, RoleId.OWNER)
    assert not resolve_access(owner, capped_account).has("view_conversations")
    client.force_login(owner)
    url = reverse("workspace:conversation-list", args=[capped_account.public_id])
    assert client.get(url, {"agent": str(agent.public_id)}).status_code == 403


def test_the_order_by_agent_is_gone_and_its_link_falls_back_to_the_newest_first(client, desk):
    account, sales, support, ann, _bob, owner = desk
    older, newer = call(account, support, ann, hours=2), call(account, sales, ann, hours=1)
    client.force_login(owner)
    response, rows = listed(client, account, sort="agent")
    assert rows == [newer.pk, older.pk] and "sort=agent" not in response.content.decode()


def test_longest_first_and_shortest_first_break_ties_newest_first(client, desk):
    account, sales, _support, ann, _bob, owner = desk
    long_old, long_new = call(account, sales, ann, hours=3, seconds=600), call(account, sales, ann, 1, 600)
    short = call(account, sales, ann, hours=2, seconds=30)
    client.force_login(owner)
    assert listed(client, account, sort="-minutes")[1] == [long_new.pk, long_old.pk, short.pk]
    assert listed(client, account, sort="minutes")[1] == [short.pk, long_new.pk, long_old.pk]


@pytest.fixture
def capped(monkeypatch):
    monkeypatch.setattr(AtMostPaginator, "cap", 4)


def test_the_count_stops_at_the_rows_the_page_offers_and_says_so(client, desk, capped, monkeypatch):
    monkeypatch.setattr(views.ScopedListView, "paginate_by", 2)
    account, sales, support, ann, bob, owner = desk
    made = [call(account, sales, ann, hours=h + 1) for h in range(6)]
    client.force_login(owner)
    response, rows = listed(client, account)
    assert rows == [c.pk for c in made[:2]]
    assert response.context["paginator"].count == 4 and response.context["more_than_max"]
    page = response.content.decode()
    assert "More than 4 conversations match" in page and "the first 4 of more" in page
    assert listed(client, account, page=2)[1] == [c.pk for c in made[2:4]]
    url = reverse("workspace:conversation-list", args=[account.public_id])
    assert client.get(url, {"page": 3}).status_code == 404  # six match, four are offered
    # filtered down to the cap or fewer, the count is exact and the note goes
    for h in range(3):
        call(account, support, bob, hours=h + 20)
    response, rows = listed(client, account, agent=str(support.public_id))
    assert response.context["paginator"].count == 3 and not response.context["more_than_max"]
    assert "More than" not in response.content.decode() and "3 in all" in response.content.decode()
    call(account, support, bob, hours=30)  # exactly as many as the cap: all of them, and no note
    response, rows = listed(client, account, agent=str(support.public_id))
    assert response.context["paginator"].count == 4 and not response.context["more_than_max"]
    assert "More than" not in response.content.decode() and "4 in all" in response.content.decode()


def test_agents_and_contacts_are_counted_and_paged_to_the_end(client, desk, capped, monkeypatch):
    monkeypatch.setattr(views.ScopedListView, "paginate_by", 2)
    account, *_rest, owner = desk
    for n in range(5):
        Contact.objects.create(account=account, name=f"Zed {n}", phone=f"+1415555{n:04d}")
    client.force_login(owner)
    url = reverse("workspace:contact-list", args=[account.public_id])
    response = client.get(url, {"page": 4})  # seven contacts: past the conversations' cap of 4
    assert response.status_code == 200 and response.context["paginator"].count == 7
    assert "7 in all" in response.content.decode()


def test_the_page_s_query_budget_holds_with_filters_search_and_sorts(client, desk, count_queries):
    account, sales, support, ann, bob, owner = desk
    for h in range(30):
        call(account, [sales, support][h % 2], [ann, bob][h % 3 % 2], hours=h + 1, seconds=30 + h)
    client.force_login(owner)
    url = reverse("workspace:conversation-list", args=[account.public_id])
    client.get(url)
    # the list: 5; one agent's: 6 (the agent); a search: 7 (the contacts and the agents that match first); one less
    # when the calls fit on one page (no COUNT: one agent's 15, Ann's 20)
    for params, budget in (({}, 5), ({"sort": "-minutes"}, 5), ({"status": "blocked"}, 4),
                           ({"agent": str(sales.public_id)}, 5), ({"q": "Ann"}, 6),
                           ({"q": "Ann", "agent": str(sales.public_id), "summaries": "1"}, 7)):
        assert count_queries(lambda p=params: client.get(url, p)) == budget, params


# ---- search --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("listed_at_most", [views.MATCHES_LISTED, 1, 2])  # ids listed, or too many: a subquery
def test_search_finds_calls_by_contact_phone_and_agent_and_summaries_only_when_asked(client, desk, monkeypatch,
                                                                                    listed_at_most):
    monkeypatch.setattr(views, "MATCHES_LISTED", listed_at_most)
    account, sales, support, ann, bob, owner = desk
    extra = Contact.objects.create(account=account, name="Ann Other", phone="+14155550303")
    by_ann = call(account, support, ann, hours=1, summary="Asked about a refund")
    by_bob = call(account, support, bob, hours=2, summary="Pricing")
    by_extra = call(account, support, extra, hours=3)
    by_sales = call(account, sales, bob, hours=4)
    other = AccountFactory(name="Other")  # the same names elsewhere are not this account's calls
    call(other, Agent.objects.create(account=other, name="Sales line"),
         Contact.objects.create(account=other, name="Ann Caller", phone="+14155550101"), summary="refund")
    client.force_login(owner)
    assert listed(client, account, q="ann")[1] == [by_ann.pk, by_extra.pk]
    assert listed(client, account, q="0303")[1] == [by_extra.pk]  # by phone
    assert listed(client, account, q="4155550")[1] == [by_ann.pk, by_bob.pk, by_extra.pk, by_sales.pk]  # all three
    assert listed(client, account, q="0202")[1] == [by_bob.pk, by_sales.pk]
    assert listed(client, account, q="sales LINE")[1] == [by_sales.pk]
    assert listed(client, account, q="refund")[1] == []
    assert listed(client, account, q="refund", summaries="1")[1] == [by_ann.pk]
    assert listed(client, account, q="refund", summaries="0")[1] == []
    assert listed(client, account, q="pricing", summaries="1", agent=str(support.public_id))[1] == [by_bob.pk]
    response, rows = listed(client, account, q="nobody")
    assert rows == [] and "No conversation matches" in response.content.decode()


@pytest.mark.parametrize("listed_at_most, subquery", [(3, False), (2, True)])
def test_matching_contacts_are_listed_up_to_a_limit_then_asked_for_by_a_subquery(client, desk, monkeypatch,
                                                                                listed_at_most, subquery):
    monkeypatch.setattr(views, "MATCHES_LISTED", listed_at_most)
    account, sales, _support, ann, bob, owner = desk
    call(account, sales, ann), call(account, sales, bob, hours=2)
    Contact.objects.create(account=account, name="Cal Caller", phone="+14155550404")  # three contacts match
    client.force_login(owner)
    url = reverse("workspace:conversation-list", args=[account.public_id])
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        assert len(client.get(url, {"q": "41555"}).context["object_list"]) == 2
    rows = [q["sql"] for q in queries.captured_queries if 'FROM "workspace_conversation"' in q["sql"]
            and "COUNT" not in q["sql"]]
    assert len(rows) == 1 and ('IN (SELECT' in rows[0]) == subquery


def test_a_search_with_no_matching_contact_or_agent_reads_no_call(client, desk, count_queries):
    account, sales, _support, ann, _bob, owner = desk
    call(account, sales, ann)
    client.force_login(owner)
    url = reverse("workspace:conversation-list", args=[account.public_id])
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        client.get(url, {"q": "nobody"})
    assert not any("workspace_conversation" in q["sql"] for q in queries.captured_queries)


# ---- the plans -----------------------------------------------------------------------------------------------

def test_the_filters_and_sorts_read_their_indexes(client, desk):
    account, sales, support, ann, bob, owner = desk
    rng = random.Random(5)
    for n in range(40):  # a platform's spread
        other = AccountFactory(name=f"Other {n}")
        agent = Agent.objects.create(account=other, name="A")
        contact = Contact.objects.create(account=other, name="C", phone=f"+1415556{n:04d}")
        for h in range(rng.randrange(1, 8)):
            call(other, agent, contact, hours=h + 1, seconds=rng.randrange(10, 900))
    for h in range(200):
        call(account, [sales, support][h % 2], [ann, bob][h % 3 % 2], hours=h + 1, seconds=rng.randrange(10, 900))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    client.force_login(owner)

    def rows_query(**params):
        return listed(client, account, **params)[0].context["paginator"].object_list[:25]

    assert "conversation_agent_started" in plan(rows_query(agent=str(sales.public_id)))
    assert "conversation_duration" in plan(rows_query(sort="-minutes"))
    assert "conversation_duration" in plan(rows_query(sort="minutes"))
    agent_page = reverse("workspace:agent-detail", args=[account.public_id, sales.public_id])
    assert "conversation_agent_started" in plan(client.get(agent_page).context["recent"])


def test_the_migration_counts_the_calls_already_recorded(desk):
    from django.db.migrations.executor import MigrationExecutor

    account, sales, support, ann, _bob, _owner = desk
    for h in range(3):
        call(account, sales, ann, hours=h + 1)
    Agent.objects.update(conversation_count=0)
    executor = MigrationExecutor(connection)
    migration = executor.loader.get_migration("workspace", "0005_agent_conversation_count")
    state = executor.loader.project_state(("workspace", "0005_agent_conversation_count"))
    migration.operations[1].code(state.apps, None)  # its historical models, as when it runs
    sales.refresh_from_db(), support.refresh_from_db()
    assert (sales.conversation_count, support.conversation_count) == (3, 0)


@pytest.mark.parametrize("model", ["agent", "contact", "conversation"])
def test_the_admin_lists_count_at_most_the_cap(client, desk, django_user_model, monkeypatch, model):
    from accounts.admin import CappedCountPaginator

    account, sales, _support, ann, _bob, _owner = desk
    for h in range(3):
        call(account, sales, ann, hours=h + 1)
    client.force_login(django_user_model.objects.create_superuser(email="staff@example.com",
                                                                  password="pw-Admin-2026"))
    url = reverse(f"admin:workspace_{model}_changelist")
    monkeypatch.setattr(CappedCountPaginator, "cap", 1)
    plural = {"agent": "agents", "contact": "contacts", "conversation": "conversations"}[model]
    assert f"More than 1 {plural} (search or filter to narrow them)" in client.get(url).content.decode()
    monkeypatch.setattr(CappedCountPaginator, "cap", 100)
    page = client.get(url).content.decode()
    assert "More than" not in page and f"{ {'agent': 2, 'contact': 2, 'conversation': 3}[model]} {plural}" in page


# ---- the count against every way of writing ------------------------------------------------------------------

def test_editing_an_agent_loaded_before_calls_were_recorded_keeps_their_count(desk):
    account, sales, _support, ann, _bob, owner = desk
    loaded = Agent.objects.get(pk=sales.pk)  # as the edit page and the API load it, before the calls
    for h in range(2):
        services.conversation_record(account=account, agent=sales, contact=ann, by=owner, duration_seconds=60,
                                     started_at=NOW - datetime.timedelta(hours=h + 1))
    services.agent_update(agent=loaded, by=owner, name="Sales desk", status=Agent.Status.PAUSED)
    loaded.save()  # and any other full save of a stale agent
    sales.refresh_from_db()
    assert (sales.name, sales.status, sales.conversation_count) == ("Sales desk", "paused", 2)


def test_editing_a_call_is_not_another_call_and_deleting_one_twice_counts_once(desk):
    account, sales, _support, ann, _bob, owner = desk
    first, second = call(account, sales, ann), call(account, sales, ann, hours=2)
    services.conversation_update(conversation=first, by=owner, summary="Booked a table")
    first.save()
    stale = Conversation.objects.get(pk=second.pk)
    services.conversation_delete(conversation=second, by=owner)
    stale.delete()  # another request's copy, deleted after
    sales.refresh_from_db()
    assert sales.conversation_count == 1 == Conversation.objects.filter(agent=sales).count()


def test_deleting_a_call_of_an_agent_whose_count_drifted_to_zero_is_no_error(desk):
    account, sales, _support, ann, _bob, owner = desk
    made = call(account, sales, ann)
    Agent.objects.filter(pk=sales.pk).update(conversation_count=0)
    services.conversation_delete(conversation=made, by=owner)
    sales.refresh_from_db()
    assert sales.conversation_count == 0


def test_recording_a_blocked_call_reads_its_lineage_once(desk):
    from members.grants import limit_ceiling  # noqa: F401  (the pools' reader, imported before counting)

    account, sales, _support, ann, _bob, owner = desk
    team = AccountFactory(parent=account, name="Team", limit_minutes=3)
    agent = Agent.objects.create(account=team, name="Desk")
    contact = Contact.objects.create(account=team, name="Caller", phone="+14155550999")

    def lineage_reads(seconds):
        with CaptureQueriesContext(connection) as queries:
            made = services.conversation_record(account=team, agent=agent, contact=contact, by=owner,
                                                duration_seconds=seconds, started_at=NOW - datetime.timedelta(hours=3))
        return made.status, sum('"path" IN' in q["sql"] and 'FROM "accounts_account"' in q["sql"]
                                for q in queries.captured_queries)

    lineage_reads(30)  # the owner's access to the team, resolved once
    completed, blocked = lineage_reads(30), lineage_reads(3600)
    assert (completed[0], blocked[0]) == ("completed", "blocked")
    assert blocked[1] == completed[1] == 1  # the lock's: the blocked call is counted on the lineage it locked


# ---- the links keep the page's filters -----------------------------------------------------------------------

def test_the_filter_links_search_form_and_rows_keep_the_other_filters(client, desk):
    import html
    import re

    account, sales, support, ann, _bob, owner = desk
    call(account, sales, ann, summary="refund")
    client.force_login(owner)
    agent = str(sales.public_id)
    response, _rows = listed(client, account, agent=agent, q="Ann", summaries="1", sort="-minutes")
    page = html.unescape(response.content.decode())
    links = re.findall(r'href="\?([^"]*)"', page)

    def link(**expected):
        return any(all(f"{k}={v}" in found.split("&") for k, v in expected.items()) for found in links)

    assert link(status="blocked", agent=agent, q="Ann", summaries="1", sort="-minutes")
    assert link(status="completed", agent=agent, q="Ann", summaries="1")
    assert any("status=" not in found and f"agent={agent}" in found and "summaries=1" in found for found in links)
    assert any(f"agent={agent}" not in found and "q=Ann" in found and "sort=-minutes" in found for found in links)
    assert link(agent=agent, sort="-minutes") and not link(agent=agent, q="Ann", status="")  # Clear keeps the agent
    assert f'<input type="hidden" name="agent" value="{agent}">' in page
    assert 'name="summaries" value="1" checked' in page
    response, _rows = listed(client, account, status="completed", sort="-minutes")
    links = re.findall(r'href="\?([^"]*)"', html.unescape(response.content.decode()))
    assert link(status="completed", sort="-minutes", agent=agent)  # a row's agent keeps the status and order
    for n in range(30):
        call(account, support, ann, hours=n + 2)
    response, _rows = listed(client, account, page="2", agent=str(support.public_id), q="Ann")
    context = response.context
    for query in (context["clear_query"], context["all_agents_query"], context["one_agent_prefix"],
                  *context["status_queries"].values()):
        assert "page=" not in query  # a new filter starts at its first page


def test_an_agent_s_page_leads_to_all_its_calls(client, desk):
    account, sales, _support, ann, _bob, owner = desk
    for h in range(12):
        call(account, sales, ann, hours=h + 1)
    client.force_login(owner)
    page = client.get(reverse("workspace:agent-detail", args=[account.public_id, sales.public_id])).content.decode()
    target = reverse("workspace:conversation-list", args=[account.public_id]) + f"?agent={sales.public_id}"
    assert f'href="{target}">All 12 conversations' in page


def test_the_conversation_table_has_its_indexes_and_not_the_foreign_keys_own(db):
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, Conversation._meta.db_table)
    indexes = {tuple(c["columns"]) for c in found.values() if c["index"] and not c["unique"]}
    assert {("agent_id", "started_at"), ("account_id", "duration_seconds"), ("account_id", "started_at")} <= indexes
    assert ("account_id",) not in indexes and ("agent_id",) not in indexes
    assert ("contact_id",) in indexes  # the contact's calls (its page, erasure, export) keep theirs
