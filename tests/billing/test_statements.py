import datetime

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts.models import Account
from accounts.services import subaccount_create
from billing.models import Invoice, InvoiceLine, UsageRecord, period_start
from billing.rollups import rollups_rebuild
from billing.services import invoice_close
from billing.statements import (
    allocate,
    compute_statement,
    live_statement,
    statement_lines,
    statement_rows,
)
from members.roles import RoleId
from tests.factories import AccountFactory, account_chain, account_tree, plan, usage
from workspace.models import Agent, Contact
from workspace.services import conversation_record

# Time is an input: the clock is frozen mid-month, so "30 minutes ago" is this period and LAST is the one
# before it whatever the real date (at 00:10 on the 1st "30 minutes ago" was last month). The month edges
# themselves are in test_month_edges.py.
NOW = datetime.datetime(2026, 3, 15, 12, 0, tzinfo=datetime.UTC)
LAST = period_start(period_start(NOW) - datetime.timedelta(days=1))

pytestmark = [pytest.mark.django_db, pytest.mark.time_machine(NOW, tick=False)]

# Query budgets (issue 14): one extra query on a page must fail a test.
# The overview: +2 since the live statement reads only the lines shown (the lines grouped by minutes, one lookup
# for the last line that gets a cent more; the page's lines, and the names of their ancestors). The Usage tab
# skips the failed-payment banner's query. -1 on both since the root's plan comes with the account's lineage, -1 on
# every page since the person's memberships come with it too; the Usage tab, which shows no prices, splits no overage
# (no lookup of the last line that gets a cent more).
BILLING_BUDGET = {"overview": 9, "usage": 7, "invoice-list": 4, "invoice-detail": 6}


def record(account, seconds, start=None):
    agent = Agent.objects.filter(account=account).first() or Agent.objects.create(account=account, name="A")
    contact = Contact.objects.filter(account=account).first() or Contact.objects.create(
        account=account, name="C", email="c@example.test")
    return conversation_record(account=account, agent=agent, contact=contact, by=None, duration_seconds=seconds,
                               started_at=start or timezone.now() - datetime.timedelta(minutes=30))


def test_minutes_round_up_per_conversation():
    account = AccountFactory()
    for seconds, minutes in ((1, 1), (60, 1), (61, 2), (119, 2), (3600, 60)):
        assert UsageRecord.objects.get(conversation=record(account, seconds)).minutes == minutes


def test_usage_rolls_up_through_five_levels_to_the_billing_root():
    chain = account_chain(5)
    for account in chain:
        record(account, 60 * account.depth)
    statement = compute_statement(chain[0], period_start())
    assert statement.total_minutes == 1 + 2 + 3 + 4 + 5
    assert [line.minutes for line in statement.lines] == [1, 2, 3, 4, 5]
    assert statement.lines[-1].description == "Level 1 › Level 2 › Level 3 › Level 4 › Level 5"
    assert set(UsageRecord.objects.values_list("billing_root", flat=True)) == {chain[0].pk}


def test_overage_is_priced_by_the_roots_plan_and_lines_add_up():
    root = AccountFactory(plan_code="pro")  # 1000 included, 12 cents a minute over
    a, b, c = (AccountFactory(parent=root) for _ in range(3))
    for account, minutes in ((a, 500), (b, 400), (c, 301)):
        usage(account, minutes)
    statement = compute_statement(root, period_start())
    assert statement.overage_minutes == 201 and statement.overage_cents == 201 * 12
    assert sum(line.amount_cents for line in statement.lines) == statement.overage_cents
    assert statement.total_cents == 9900 + 201 * 12


@pytest.mark.parametrize("total,weights", [(100, [1, 1, 1]), (7, [5, 0, 2]), (0, [3, 4]), (1001, [333, 333, 334])])
def test_allocation_always_sums_to_the_total(total, weights):
    parts = allocate(total, weights)
    assert sum(parts) == total and all(p >= 0 for p in parts)


def test_closing_freezes_the_invoice_and_is_idempotent():
    root = AccountFactory(plan_code="pro")
    sub = AccountFactory(parent=root, name="Sub")
    usage(root, 700, period=LAST)
    usage(sub, 500, period=LAST)
    invoice, created = invoice_close(root=root, period=LAST)
    assert created and invoice.total_minutes == 1200 and invoice.overage_minutes == 200
    assert invoice.total_cents == sum(invoice.lines.values_list("amount_cents", flat=True))
    assert invoice.total_minutes == sum(UsageRecord.objects.filter(period=LAST).values_list("minutes", flat=True))
    usage(sub, 999, period=LAST)  # even if more usage shows up for that period
    again, created_again = invoice_close(root=root, period=LAST)
    assert again.pk == invoice.pk and not created_again
    again.refresh_from_db()
    assert again.total_minutes == 1200 and InvoiceLine.objects.filter(invoice=invoice).count() == 3


def test_late_usage_for_a_closed_period_goes_to_the_current_one():
    root = AccountFactory()
    invoice_close(root=root, period=LAST)
    conversation = record(root, 120, start=datetime.datetime.combine(LAST, datetime.time(12), tzinfo=datetime.UTC))
    assert UsageRecord.objects.get(conversation=conversation).period == period_start()


@pytest.mark.parametrize("case,message", [
    ("current", "has not ended yet"),
    ("subaccount", "on parent billing"),
])
def test_closing_refuses_what_cannot_close(case, message):
    root = AccountFactory()
    target = AccountFactory(parent=root) if case == "subaccount" else root
    period = period_start() if case == "current" else LAST
    with pytest.raises(ValidationError, match=message):
        invoice_close(root=target, period=period)
    assert not Invoice.objects.exists()


def test_close_command_closes_every_root_once_with_progress(capsys):
    roots = [AccountFactory() for _ in range(3)]
    usage(roots[0], 10, period=LAST)
    call_command("close_billing_period", period=LAST.strftime("%Y-%m"))
    assert Invoice.objects.filter(period=LAST).count() == 3
    call_command("close_billing_period", period=LAST.strftime("%Y-%m"))
    out = capsys.readouterr().out
    assert "3/3" in out and "0 invoice(s) closed, 3 already closed" in out
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("close_billing_period", period="last month")


def test_plan_gating_of_subaccounts():
    free_root = AccountFactory(plan_code="free")
    with pytest.raises(ValidationError, match="does not include subaccount management"):
        subaccount_create(parent=free_root, name="Nope", by=None)
    plan("agency")
    subaccount_create(parent=AccountFactory(plan_code="agency"), name="Yes", by=None)


def test_the_live_statement_gives_each_line_the_ledgers_amount_alone():
    """Pages build only the lines they show (``live_statement``): with many equal remainders (ties broken by
    account id) and a line of an account moved away, every line, its path and its cents equal the invoice's."""
    root = AccountFactory(name="Agency", plan_code="pro")  # 1000 included, 12 cents a minute over
    subs = [AccountFactory(parent=root, name=f"Client {i:02}") for i in range(12)]
    deeper = [AccountFactory(parent=sub, name=f"Team {i}") for i, sub in enumerate(subs[:5])]
    for i, account in enumerate([root, *subs, *deeper]):
        usage(account, (7, 7, 13, 29, 7)[i % 5] * 11)
    gone = AccountFactory(name="Elsewhere")
    usage(gone, 77, root=root)  # paid by root, no longer in its tree
    for _ in (0, 1):
        ledger = compute_statement(root, period_start())
        live = live_statement(root, period_start())
        [lines] = statement_lines(live, statement_rows(live))
        assert live.overage_cents and live.split.last is not None
        assert sorted((ln.account_id, ln.description, ln.minutes, ln.amount_cents) for ln in lines) == sorted(
            (ln.account_id, ln.description, ln.minutes, ln.amount_cents) for ln in ledger.lines)
        assert (live.total_minutes, live.total_cents, live.line_count) == (
            ledger.total_minutes, ledger.total_cents, len(ledger.lines))
        assert [ln.minutes for ln in lines] == sorted((ln.minutes for ln in lines), reverse=True)  # largest first
        assert any("(no longer in this account)" in ln.description for ln in lines)
        usage(subs[3], 1)  # and again with other remainders


@pytest.mark.parametrize("root_minutes", [2200, 3120, 3200, 3750])
def test_the_live_statement_breaks_a_tie_that_spans_lines_of_different_minutes(root_minutes):
    """At these totals (12 cents a minute over 1,000) lines of different minutes leave the same remainder (at 3,200:
    2, 6, 14 and 26 minutes), and the leftover cents run out in the middle of such a tie, where only the account
    ids decide (the second of three or four lines gets the last cent). Each line's cents equal the ledger's."""
    root = AccountFactory(name="Agency", plan_code="pro")  # 1000 included, 12 cents a minute over
    minutes = [16, 1, 11, 6, 12, 2, 7, 3, 8, 13, 4, 21, 26, 9, 14]
    for i, m in enumerate(minutes):
        usage(AccountFactory(parent=root, name=f"Client {i:02}"), m)
    usage(root, root_minutes - sum(minutes))
    ledger = compute_statement(root, period_start())
    live = live_statement(root, period_start())
    [lines] = statement_lines(live, statement_rows(live))
    assert live.total_minutes == root_minutes
    assert sorted((ln.account_id, ln.amount_cents) for ln in lines) == sorted(
        (ln.account_id, ln.amount_cents) for ln in ledger.lines)
    assert live.total_cents == ledger.total_cents


class TestPages:
    def test_statement_lines_are_paginated_and_searchable_within_the_tenant(self, client, make_member):
        from billing.views import LINES_PER_PAGE

        root = AccountFactory(name="Agency", plan_code="pro")
        subs = [AccountFactory(parent=root, name=f"Client {i:03}") for i in range(LINES_PER_PAGE + 5)]
        for i, sub in enumerate(subs):
            usage(sub, 100 + i)
        other = AccountFactory(name="Rival")
        usage(AccountFactory(parent=other, name="Client 999 of Rival"), 5000)
        client.force_login(make_member(root, RoleId.OWNER))
        url = reverse("billing:overview", kwargs={"account_id": root.public_id})
        first, second = (client.get(url, {"page": n}).context for n in (1, 2))
        assert [ln.minutes for ln in first["lines"]] == list(range(100 + len(subs) - 1, 99 + 5, -1))
        assert [ln.minutes for ln in second["lines"]] == [104, 103, 102, 101, 100]
        assert first["page_obj"].paginator.count == len(subs) and first["by_account"]["more"] == len(subs) - 10
        total = compute_statement(root, period_start(), plan=first["plan"])
        assert first["statement"].total_cents == total.total_cents
        assert {ln.account_id: ln.amount_cents for ln in first["lines"]} == {
            ln.account_id: ln.amount_cents for ln in total.lines if ln.account_id in {x.account_id for x in
                                                                                      first["lines"]}}
        found = client.get(url, {"q": "client 00"})
        assert [ln.description for ln in found.context["lines"]] == [f"Agency › Client 00{i}" for i in range(9, -1, -1)]
        assert "Rival" not in client.get(url, {"q": "999"}).content.decode()
        assert "Rival" not in client.get(url).content.decode()
        usage_url = reverse("billing:usage", kwargs={"account_id": root.public_id})
        assert "$" not in client.get(usage_url, {"q": "Client 001"}).content.decode()

    def test_a_root_s_usage_tab_shows_the_overview_s_lines_and_minutes_without_pricing_them(self, client, make_member):
        """The Usage tab shows no prices, so it skips the overage split (no lookup of the tied line) and shows the
        same lines, in the same order, with the same minutes and totals as the overview."""
        root = AccountFactory(name="Agency", plan_code="pro")
        for i in range(30):
            usage(AccountFactory(parent=root, name=f"Client {i:02}"), 70 + i % 4)  # over the plan, tied lines
        client.force_login(make_member(root, RoleId.OWNER))
        kwargs = {"account_id": root.public_id}
        overview = client.get(reverse("billing:overview", kwargs=kwargs)).context
        tab = client.get(reverse("billing:usage", kwargs=kwargs))
        assert overview["statement"].split.last is not None  # the overview's split needed the tied line
        assert tab.context["statement"].split is None and "$" not in tab.content.decode()
        assert [(ln.description, ln.minutes) for ln in tab.context["lines"]] == [
            (ln.description, ln.minutes) for ln in overview["lines"]]
        assert (tab.context["minutes_used"], tab.context["line_count"]) == (
            overview["minutes_used"], overview["line_count"])

    def test_a_subaccounts_usage_tab_pages_its_own_subtree_only(self, client, make_member):
        root = AccountFactory(name="Agency")
        sub = AccountFactory(parent=root, name="Client")
        teams = [AccountFactory(parent=sub, name=f"Team {i}") for i in range(3)]
        sibling = AccountFactory(parent=root, name="Sibling")
        for i, team in enumerate(teams):
            usage(team, 10 + i)
        usage(sibling, 99)
        client.force_login(make_member(sub, RoleId.MEMBER))
        url = reverse("billing:usage", kwargs={"account_id": sub.public_id})
        ctx = client.get(url).context
        assert [(ln.description, ln.minutes) for ln in ctx["lines"]] == [("Team 2", 12), ("Team 1", 11),
                                                                          ("Team 0", 10)]
        assert ctx["minutes_used"] == 33
        assert [ln.description for ln in client.get(url, {"q": "team 1"}).context["lines"]] == ["Team 1"]
        assert client.get(url, {"q": "Sibling"}).context["lines"] == []
        assert client.get(url, {"q": "team", "page": 2}).context["page_obj"].number == 1  # past the last: the last
        # R6: the payer is named only to people who reach it
        assert "invoiced to the account that pays for it" in client.get(url).content.decode()
        client.force_login(make_member(root, RoleId.VIEWER))
        assert "invoiced to Agency" in client.get(url).content.decode()
        client.force_login(make_member(sub, RoleId.MEMBER))
        assert client.get(reverse("billing:overview", kwargs={"account_id": sub.public_id})).status_code == 403

    def test_root_owner_sees_the_statement_chart_and_prices(self, client, make_member):
        root = AccountFactory(name="Agency")
        sub = AccountFactory(parent=root, name="Client")
        usage(sub, 42)
        client.force_login(make_member(root, RoleId.OWNER))
        html = client.get(reverse("billing:overview", kwargs={"account_id": root.public_id})).content.decode()
        assert "Agency › Client" in html and "$299.00" in html and "<svg" in html and "Minutes per day" in html

    def test_subaccount_sees_its_usage_but_not_the_parents_prices(self, client, make_member):
        root = AccountFactory(name="Agency")
        sub = AccountFactory(parent=root, name="Client")
        sibling = AccountFactory(parent=root, name="Sibling")
        usage(sub, 42)
        usage(sibling, 7)
        client.force_login(make_member(sub, RoleId.OWNER))
        html = client.get(reverse("billing:overview", kwargs={"account_id": sub.public_id})).content.decode()
        assert "42" in html and "$" not in html and "Sibling" not in html and "$299" not in html
        assert client.get(reverse("billing:invoice-list", kwargs={"account_id": sub.public_id})).status_code == 403

    def test_parent_may_show_prices_to_a_subaccount(self, client, make_member):
        root = AccountFactory(plan_code="pro")
        sub = AccountFactory(parent=root, access_categories={"billing": "read"})
        usage(sub, 1100)
        client.force_login(make_member(sub, RoleId.OWNER))
        html = client.get(reverse("billing:overview", kwargs={"account_id": sub.public_id})).content.decode()
        assert "$12.00" in html  # its share of the overage: 100 min at 12 cents

    def test_another_roots_invoice_is_404(self, client, make_member):
        mine, theirs = AccountFactory(), AccountFactory()
        their_invoice, _ = invoice_close(root=theirs, period=LAST)
        client.force_login(make_member(mine, RoleId.OWNER))
        for account in (mine, theirs):
            url = reverse("billing:invoice-detail", kwargs={"account_id": account.public_id,
                                                            "invoice_id": their_invoice.public_id})
            assert client.get(url).status_code == 404

    def test_member_without_billing_is_refused(self, client, make_member):
        root = AccountFactory()
        client.force_login(make_member(root, RoleId.MEMBER))
        assert client.get(reverse("billing:overview", kwargs={"account_id": root.public_id})).status_code == 403
        assert client.get(reverse("billing:usage", kwargs={"account_id": root.public_id})).status_code == 200

    def test_invoice_detail_csv_and_printable(self, client, make_member):
        root = AccountFactory(name="Agency")
        usage(AccountFactory(parent=root, name="Client"), 12, period=LAST)
        invoice, _ = invoice_close(root=root, period=LAST)
        client.force_login(make_member(root, RoleId.ADMIN))
        url = reverse("billing:invoice-detail", kwargs={"account_id": root.public_id, "invoice_id": invoice.public_id})
        html = client.get(url).content.decode()
        assert "Agency › Client" in html and "data-print" in html
        csv = client.get(url, {"format": "csv"})
        assert csv["Content-Type"].startswith("text/csv")
        rows = csv.content.decode().splitlines()
        assert rows[0] == "line,account,minutes,amount" and "usage,Agency › Client,12,0.00" in rows
        assert rows[-1] == "total,,12,299.00"
        listing = client.get(reverse("billing:invoice-list", kwargs={"account_id": root.public_id}))
        assert invoice in listing.context["object_list"]

    @pytest.mark.parametrize("name", ["overview", "usage", "invoice-list", "invoice-detail"])
    def test_query_counts_do_not_grow_with_subaccounts(self, client, make_member, count_queries, name):
        counts = []
        for n in (5, 500):
            root = account_tree(breadth=n, root=AccountFactory(plan_code="pro"))
            usage(root, 1000)  # over the plan, with lines tied on the leftover cents: the live statement's most queries
            UsageRecord.objects.bulk_create(
                UsageRecord(account_id=pk, billing_root=root, period=p, occurred_on=p, minutes=3, seconds=170)
                for pk in root.descendants().values_list("pk", flat=True) for p in (period_start(), LAST))
            rollups_rebuild()
            invoice, _ = invoice_close(root=root, period=LAST)
            client.force_login(make_member(root, RoleId.OWNER))
            kwargs = {"account_id": root.public_id}
            if name == "invoice-detail":
                kwargs["invoice_id"] = invoice.public_id
            url = reverse(f"billing:{name}", kwargs=kwargs)
            client.get(url)
            counts.append(count_queries(lambda u=url: client.get(u)))
            assert count_queries.last_result.status_code == 200
        assert counts == [BILLING_BUDGET[name]] * 2


def test_labels_name_every_level_that_exists_and_mark_a_missing_one():
    from billing.statements import SEP, tree_labels

    root = AccountFactory(name="Root")
    middle = AccountFactory(parent=root, name="Middle")
    leaf = AccountFactory(parent=middle, name="Leaf")
    below = AccountFactory(parent=leaf, name="Below")
    labels = tree_labels(root)
    assert labels[below.pk] == (SEP.join(["Root", "Middle", "Leaf", "Below"]), 4)
    Account.objects.filter(pk=middle.pk).update(path="ZZZZ9999")  # the middle level gone from the tree's paths
    labels = tree_labels(root)
    assert labels[leaf.pk][0] == SEP.join(["Root", "…", "Leaf"])
    assert labels[below.pk][0] == SEP.join(["Root", "…", "Leaf", "Below"])


def _allocate_by_key_function(total_cents, weights, keys=None):
    """The split as first written (a stable sort with a key function): the reference for ``allocate``."""
    whole = sum(weights)
    if not whole or not total_cents:
        return [0] * len(weights)
    keys = range(len(weights)) if keys is None else keys
    exact = [total_cents * w for w in weights]
    parts = [e // whole for e in exact]
    for i in sorted(range(len(weights)), key=lambda i: (-(exact[i] % whole), keys[i]))[:total_cents - sum(parts)]:
        parts[i] += 1
    return parts


@settings(max_examples=300, deadline=None)
@given(total=st.integers(0, 10**7), weights=st.lists(st.integers(0, 50), max_size=40), data=st.data())
def test_allocation_gives_the_leftover_cents_as_the_reference_does(total, weights, data):
    """Ties in remainder go to the smaller key, then to the earlier line, with or without keys."""
    keys = data.draw(st.one_of(st.none(), st.lists(st.integers(1, 5), min_size=len(weights), max_size=len(weights))))
    assert allocate(total, weights, keys) == _allocate_by_key_function(total, weights, keys)
