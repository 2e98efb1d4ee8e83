"""The audit trail when nearly every event is a conversation's (every recorded call writes one; issue 14): the
default view and the dashboard's latest events read an index without them, in a prepared statement's generic
plan too; the action filter's choices come from a skip scan; the count stops at the rows the page offers."""

import datetime
import random
import re

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import baked, subaccount_views
from accounts.admin import CappedCountPaginator
from accounts.audit import audit_actions
from accounts.dashboard import _recent
from accounts.models import CONVERSATION_EVENTS, AuditEvent, NotConversationEvent
from accounts.subaccount_views import _audit_query
from members.roles import RoleId
from tests.factories import AccountFactory
from tests.test_baked import numbered, prepared_statements

pytestmark = pytest.mark.django_db

ACTIONS = ["conversation.recorded", "conversation.deleted", "conversation", "conversationXrecorded",
           "xconversation.recorded", "member.added", "account.renamed", "agent.created", "100%_done", "a"]
EPOCH = datetime.datetime(2026, 3, 1, tzinfo=datetime.UTC)


def events(account, actions, start=0):
    AuditEvent.objects.bulk_create(
        AuditEvent(account=account, action=action, summary=f"{action} {i}",
                   created_at=EPOCH + datetime.timedelta(minutes=start + i)) for i, action in enumerate(actions))


def test_the_literal_condition_keeps_exactly_what_the_orm_s_exclusion_keeps():
    one, two = AccountFactory(name="One"), AccountFactory(name="Two")
    rng = random.Random(14)
    events(one, rng.choices(ACTIONS, k=120))
    events(two, rng.choices(ACTIONS, k=40))
    for account in (one, two):
        mine = AuditEvent.objects.filter(account=account)
        literal = list(mine.filter(NotConversationEvent()).values_list("pk", flat=True).order_by("pk"))
        orm = list(mine.exclude(action__startswith=CONVERSATION_EVENTS).values_list("pk", flat=True).order_by("pk"))
        assert literal == orm and 0 < len(literal) < mine.count()
        # and the dashboard's latest ten: the same rows as the ORM's exclusion gives
        assert [e.pk for e in _recent(account.pk)] == list(
            mine.exclude(action__startswith=CONVERSATION_EVENTS).order_by("-created_at", "-id")
            .values_list("pk", flat=True)[:10])


def plan(queryset) -> str:
    """The plan the database would use for ``queryset``'s SQL: on PostgreSQL as a prepared statement's generic plan
    (the value of each parameter unknown, as the baked queries run), sequential scans and sorts priced out so that
    an index that fits shows; on SQLite from EXPLAIN QUERY PLAN."""
    sql, params = queryset.query.get_compiler("default").as_sql()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            return " ".join(str(row[-1]) for row in cursor.fetchall())
        statement = numbered(sql)
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute(f"PREPARE audit_plan AS {statement}")  # no parameters: sent as it is
        try:
            cursor.execute(f"EXPLAIN EXECUTE audit_plan({', '.join(['%s'] * len(params))})", params)
            return " ".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("DEALLOCATE audit_plan")


def test_the_default_view_and_the_dashboard_read_the_index_without_conversation_events():
    account = AccountFactory(name="Busy")
    events(account, ["conversation.recorded"] * 300 + ["member.added"] * 30 + ["agent.created"] * 30)
    rng = random.Random(3)
    for n in range(40):  # a platform's spread: many accounts, a few events of several actions each
        events(AccountFactory(name=f"Other {n}"), rng.choices(ACTIONS, k=30))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # the planner's statistics as a real table would have them
    since = until = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
    default = _audit_query(account.pk, account.path, "", "", since, until, subtree=False, by_actor=False,
                           by_action=False, conversations=False, by_since=False, by_until=False)
    assert "audit_not_conversation_idx" in plan(default[:50])
    assert "audit_not_conversation_idx" in plan(_recent.build(account.pk))
    one_action = _audit_query(account.pk, account.path, "", "member.added", since, until, subtree=False,
                              by_actor=False, by_action=True, conversations=False, by_since=False, by_until=False)
    assert "audit_action_idx" in plan(one_action[:50])


def test_the_action_choices_are_the_account_s_distinct_actions_in_order():
    one, two, empty = AccountFactory(name="One"), AccountFactory(name="Two"), AccountFactory(name="Empty")
    rng = random.Random(7)
    for account, count in ((one, 200), (two, 30)):
        events(account, rng.choices(ACTIONS, k=count))
    for account in (one, two, empty):
        assert audit_actions(account.pk) == list(
            AuditEvent.objects.filter(account=account).order_by("action").values_list("action", flat=True)
            .distinct())
    assert audit_actions(empty.pk) == []
    assert audit_actions() == list(AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct())
    if connection.vendor == "sqlite":  # the order comes from the query, not from the index it happens to read
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA reverse_unordered_selects = ON")
            try:
                assert audit_actions(one.pk) == sorted(set(AuditEvent.objects.filter(account=one)
                                                           .values_list("action", flat=True)))
            finally:
                cursor.execute("PRAGMA reverse_unordered_selects = OFF")


def test_the_admin_offers_the_actions_and_filters_on_one(client, django_user_model, monkeypatch):
    staff = django_user_model.objects.create_superuser(email="staff@example.com", password="pw-Admin-2026")
    account = AccountFactory(name="Admin view")
    events(account, ["member.added", "100%_done", "conversation.recorded"])
    client.force_login(staff)
    url = reverse("admin:accounts_auditevent_changelist")
    response = client.get(url)
    assert [title for title, _ in response.context["cl"].filter_specs[0].lookup_choices] == audit_actions()
    response = client.get(url, {"action": "100%_done"})
    assert [e.action for e in response.context["cl"].result_list] == ["100%_done"]
    monkeypatch.setattr(CappedCountPaginator, "cap", 2)  # its count stops there, as for accounts
    assert "More than 2 audit events (search or filter to narrow them)" in client.get(url).content.decode()


@pytest.fixture
def capped_trail(client, make_member, monkeypatch):
    """``capped_trail(shown, calls)``: the Audit page's URL of an account with ``shown`` visible events and
    ``calls`` call events, its Owner signed in, the page counting at most 4 rows, 2 a page."""
    monkeypatch.setattr(subaccount_views, "AUDIT_MAX_ROWS", 4)
    monkeypatch.setattr(subaccount_views.AuditLogView, "paginate_by", 2)

    def make(shown, calls):
        account = AccountFactory(name="Long history")
        owner = make_member(account, RoleId.OWNER)
        AuditEvent.objects.filter(account=account).delete()
        events(account, ["member.added"] * shown + ["conversation.recorded"] * calls)
        client.force_login(owner)
        return reverse("accounts:audit-log", kwargs={"account_id": account.public_id})

    return make


def test_the_count_stops_at_the_rows_the_page_offers_and_says_so(client, capped_trail):
    url = capped_trail(6, 5)
    response = client.get(url)
    assert [e.summary for e in response.context["object_list"]] == ["member.added 5", "member.added 4"]
    assert response.context["paginator"].count == 4 and response.context["paginator"].num_pages == 2
    page = response.content.decode()
    assert "More than 4 events match: these are the newest 4." in page
    assert "Page 1 of 2 · the newest 4 of more" in page and "4 in all" not in page
    second = client.get(url, {"page": 2})
    assert [e.summary for e in second.context["object_list"]] == ["member.added 3", "member.added 2"]
    assert client.get(url, {"page": 3}).status_code == 404  # the fifth and sixth are past the cap
    csv = client.get(url, {"format": "csv"}).content.decode().strip().splitlines()
    assert len(csv) == 1 + 4
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"]]
    assert len(counts) == 1 and re.search(r"LIMIT 5\b", counts[0])  # it stops reading after cap + 1 rows
    response = client.get(url, {"action": "member.added", "since": "2026-03-01", "until": "2026-03-01"})
    assert "More than" in response.content.decode()  # still six of them
    response = client.get(url, {"actor": "nobody@example.com"})
    assert response.context["paginator"].count == 0 and "More than" not in response.content.decode()


def test_exactly_as_many_as_the_cap_is_the_whole_count(client, capped_trail):
    response = client.get(capped_trail(4, 3))
    page = response.content.decode()
    assert response.context["paginator"].count == 4 and "More than" not in page and "Page 1 of 2 · 4 in all" in page


def test_with_the_subaccounts_the_rows_are_the_subtree_s_and_the_plans_read_the_indexes(client, make_member):
    root = AccountFactory(name="Root")
    child = AccountFactory(name="Child", parent=root)
    grandchild = AccountFactory(name="Grandchild", parent=child)
    stranger = AccountFactory(name="Stranger")
    owner = make_member(root, RoleId.OWNER)
    rng = random.Random(5)
    for start, account in enumerate((root, child, grandchild, stranger)):
        events(account, rng.choices(ACTIONS, k=25), start=start * 1000)
    client.force_login(owner)
    url = reverse("accounts:audit-log", kwargs={"account_id": root.public_id})
    own, below = subaccount_views._audit_events.sliced(), subaccount_views._audit_events_below.sliced()
    own._entries.clear(), below._entries.clear()
    subtree = AuditEvent.objects.filter(account__in=[root, child, grandchild]).order_by("-created_at", "-pk")
    for params, expected in (({"include_subaccounts": "on"}, subtree.exclude(action__startswith="conversation.")),
                             ({"include_subaccounts": "on", "conversations": "on"}, subtree)):
        shown = client.get(url, params).context["object_list"]
        assert [e.pk for e in shown] == list(expected.values_list("pk", flat=True)[:50])
        assert stranger.pk not in {e.account_id for e in shown}
    # planned for its values each time (never a prepared statement's generic plan), the account's own view baked
    assert below.prepare is False
    if baked.ENABLED:  # (off under TEST_FAKE_NOW: every query then runs plain)
        assert below._entries and not own._entries
    if connection.vendor == "postgresql":  # SQLite prepares nothing, and its plan on a small table is its own
        before = prepared_statements()
        client.get(url, {"include_subaccounts": "on"})
        assert prepared_statements() == before
        since = until = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
        shape = dict(subtree=True, by_actor=False, by_action=False, by_since=False, by_until=False)
        hidden = _audit_query(root.pk, root.path, "", "", since, until, conversations=False, **shape)
        shown = _audit_query(root.pk, root.path, "", "", since, until, conversations=True, **shape)
        assert "audit_recent_idx" in plan(hidden[:50])
        assert "audit_created_idx" in plan(shown[:50])
