"""Sorting the main tables (issue 16 item 8): one helper (``accounts.sorting``) for every table, with header
links that keep the other parameters, ``aria-sort`` on the column the rows follow, and no error or extra
query for whatever the URL says."""

import datetime
import re

import pytest
from django.db.models import F
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone

from accounts.sorting import Column, Sorting
from billing.models import Invoice
from developers.services import apikey_create
from members.models import Membership
from members.roles import RoleId
from tests.factories import AccountFactory, UserFactory
from workspace.models import Agent, Contact, Conversation

pytestmark = pytest.mark.django_db

SORTS = Sorting(Column("name"), Column("joined", "created_at", descending_first=True),
                Column("seen", F("seen_at").asc(nulls_first=True), descending_first=True), default="name")


class TestSortingHelper:
    @pytest.mark.parametrize("value", ["", "nope", "--name", "-", "pk", "password", "name;drop", "\x00", "-pk"])
    def test_unknown_or_malformed_values_give_the_default_order(self, value):
        sort = SORTS.parse(QueryDict(f"sort={value}" if value else ""))
        assert sort.value == "name" and sort.is_default and sort.order_by == ("name", "pk")

    def test_field_and_minus_field_with_a_stable_tie_break(self):
        assert SORTS.parse(QueryDict("sort=joined")).order_by == ("created_at", "pk")
        assert SORTS.parse(QueryDict("sort=-joined")).order_by == ("-created_at", "pk")
        assert SORTS.parse(QueryDict("sort=-name")).order_by == ("-name", "pk")

    def test_empty_values_move_to_the_other_end_with_the_direction(self):
        newest_first = SORTS.parse(QueryDict("sort=-seen")).order_by[0]
        assert newest_first.descending and newest_first.nulls_last and not newest_first.nulls_first
        oldest_first = SORTS.parse(QueryDict("sort=seen")).order_by[0]
        assert not oldest_first.descending and oldest_first.nulls_first

    def test_header_links_turn_the_current_column_round_and_keep_other_parameters(self):
        sort = SORTS.parse(QueryDict("q=ann&status=x&page=3&sort=name"))
        assert QueryDict(sort.query_for("name")) == QueryDict("q=ann&status=x&sort=-name")  # the page resets
        assert QueryDict(sort.query_for("joined")) == QueryDict("q=ann&status=x&sort=-joined")  # newest first
        assert sort.direction("name") == "ascending" and sort.direction("joined") is None
        assert QueryDict(SORTS.parse(QueryDict("sort=-joined&status=x")).extra_query.rstrip("&")) == QueryDict(
            "status=x&sort=-joined")

    def test_a_default_that_is_not_a_column_is_a_programming_error(self):
        with pytest.raises(ValueError):
            Sorting(Column("name"), default="age")


def page(client, name, account, **params):
    url = reverse(name, kwargs={"account_id": account.public_id})
    return client.get(url, params)


def header(html, label):
    return re.search(rf'<th scope="col"[^>]*><a href="\?([^"]*)"[^>]*>{label}\b', html)


class TestMembers:
    def test_sorted_by_last_active_with_aria_sort_and_search_kept(self, client, make_member):
        account = AccountFactory()
        owner = make_member(account, RoleId.OWNER, UserFactory(name="Zed Owner", email="zed@example.com"))
        now = timezone.now()
        for name, seen in (("Ann Early", now - datetime.timedelta(days=9)), ("Bob Recent", now),
                           ("Cy Never", None)):
            user = make_member(account, RoleId.MEMBER,
                               UserFactory(name=name, email=f"{name.split()[0].lower()}@example.com"))
            Membership.objects.filter(user=user).update(last_active_at=seen)
        client.force_login(owner)
        names = lambda r: [m.user.name for m in r.context["object_list"]]  # noqa: E731
        assert names(page(client, "members:list", account)) == ["Ann Early", "Bob Recent", "Cy Never", "Zed Owner"]
        recent = page(client, "members:list", account, sort="-active")
        # the reader's own visit counts as activity
        assert names(recent) == ["Zed Owner", "Bob Recent", "Ann Early", "Cy Never"]
        html = recent.content.decode()
        assert 'aria-sort="descending"' in html and html.count("aria-sort=") == 1
        searched = page(client, "members:list", account, sort="-active", q="example").content.decode()
        link = QueryDict(header(searched, "Last active").group(1).replace("&amp;", "&"))
        assert link["sort"] == "active" and link["q"] == "example"  # turns round, keeps the search
        assert page(client, "members:list", account, sort="user__password").status_code == 200


class TestWorkspaceTables:
    def test_agents_by_conversations_contacts_by_name_conversations_by_minutes(self, client, make_member):
        account = AccountFactory()
        client.force_login(make_member(account, RoleId.OWNER))
        busy, quiet = Agent.objects.create(account=account, name="Busy"), Agent.objects.create(account=account,
                                                                                               name="Alpha")
        contact = Contact.objects.create(account=account, name="Zoe", email="zoe@example.com")
        Contact.objects.create(account=account, name="Adam", email="adam@example.com")
        start = timezone.now() - datetime.timedelta(hours=3)
        for i, seconds in enumerate((60, 600, 120)):
            Conversation.objects.create(account=account, agent=busy, contact=contact, duration_seconds=seconds,
                                        started_at=start + datetime.timedelta(minutes=i))
        Conversation.objects.create(account=account, agent=quiet, contact=contact, duration_seconds=30,
                                    started_at=start - datetime.timedelta(hours=1))
        agents = page(client, "workspace:agent-list", account, sort="-conversations")
        assert [a.name for a in agents.context["object_list"]] == ["Busy", "Alpha"]
        assert 'aria-sort="descending"' in agents.content.decode()
        contacts = page(client, "workspace:contact-list", account, sort="-name")
        assert [c.name for c in contacts.context["object_list"]] == ["Zoe", "Adam"]
        default = page(client, "workspace:conversation-list", account)
        assert [c.duration_seconds for c in default.context["object_list"]] == [120, 600, 60, 30]  # newest first
        longest = page(client, "workspace:conversation-list", account, sort="-minutes", status="completed")
        assert [c.duration_seconds for c in longest.context["object_list"]] == [600, 120, 60, 30]
        link = QueryDict(header(longest.content.decode(), "Started").group(1).replace("&amp;", "&"))
        assert link["status"] == "completed" and link["sort"] == "-started"


class TestInvoicesAndKeys:
    def test_invoices_by_total(self, client, make_member):
        root = AccountFactory()
        client.force_login(make_member(root, RoleId.OWNER))
        for month, cents in ((1, 900), (2, 4900), (3, 100)):
            Invoice.objects.create(account=root, period=datetime.date(2026, month, 1), plan_name="Agency",
                                   plan_price_cents=0, included_minutes=0, overage_cents_per_minute=0,
                                   total_minutes=0, overage_minutes=0, total_cents=cents)
        default = page(client, "billing:invoice-list", root)
        assert [i.period.month for i in default.context["object_list"]] == [3, 2, 1]
        by_total = page(client, "billing:invoice-list", root, sort="-total")
        assert [i.total_cents for i in by_total.context["object_list"]] == [4900, 900, 100]

    def test_api_keys_by_label(self, client, make_member):
        account = AccountFactory()
        owner = make_member(account, RoleId.OWNER)
        client.force_login(owner)
        for label in ("billing sync", "CRM", "analytics"):
            apikey_create(account=account, by=owner, label=label)
        by_label = page(client, "developers:apikey-list", account, sort="label")
        labels = [k.label for k in by_label.context["object_list"]]
        assert labels.index("analytics") < labels.index("billing sync")  # the database's collation decides "CRM"
        newest = page(client, "developers:apikey-list", account)
        assert [k.label for k in newest.context["object_list"]] == ["analytics", "CRM", "billing sync"]
        assert 'aria-sort="ascending"' in by_label.content.decode()
