"""Billing → Plans: upgrade now with a prorated line, downgrade at the period's end, refused downgrades."""

import datetime

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.models import Invoice, PlanChange, Subscription
from billing.plans import apply_due_plan_changes, plan_change, plan_change_cancel
from billing.services import invoice_close
from billing.statements import compute_statement
from members.roles import RoleId
from tests.factories import AccountFactory, plan, usage

pytestmark = pytest.mark.django_db

UTC = datetime.UTC


def at(*args):
    return time_machine.travel(datetime.datetime(*args, tzinfo=UTC), tick=False)


def plan_of(account):
    return Subscription.objects.get(account=account).plan.code


@pytest.fixture
def owner_and_root(make_member):
    root = AccountFactory(name="Solo", plan_code="pro")
    return make_member(root, RoleId.OWNER), root


def test_upgrade_applies_now_with_a_prorated_line_and_the_invoice_keeps_it(owner_and_root):
    owner, root = owner_and_root
    with at(2026, 6, 21, 12):  # 10 of June's 30 days left, the 21st included
        change = plan_change(account=root, plan=plan("agency"), by=owner)
        assert change.status == "applied" and plan_of(root) == "agency"
        assert change.prorated_cents == (29900 - 9900) * 10 // 30
        usage(root, 7)
        statement = compute_statement(root, datetime.date(2026, 6, 1))
        assert statement.plan_price_cents == 9900  # the fee of the plan June started with
        assert statement.included_minutes == 5000  # the new plan's minutes from now
        assert [a.amount_cents for a in statement.adjustments] == [change.prorated_cents]
        assert statement.total_cents == 9900 + change.prorated_cents
    with at(2026, 7, 1, 1):
        invoice, _ = invoice_close(root=root, period=datetime.date(2026, 6, 1))
        assert invoice.total_cents == 9900 + change.prorated_cents
        lines = list(invoice.lines.values_list("position", "kind", "account_id", "minutes", "amount_cents"))
        assert lines == [(0, "plan", root.pk, 0, 9900), (1, "usage", root.pk, 7, 0),
                         (2, "plan", root.pk, 0, change.prorated_cents)]  # the plan, usage, then the proration
        assert sum(amount for *_, amount in lines) == invoice.total_cents
        assert invoice.lines.order_by("position").last().description == statement.adjustments[0].description
        july = compute_statement(root, datetime.date(2026, 7, 1))
        assert july.plan_price_cents == 29900 and not july.adjustments


def test_downgrade_waits_for_the_period_end_and_june_is_billed_on_the_old_plan(make_member):
    root = AccountFactory(name="Big", plan_code="agency")
    owner = make_member(root, RoleId.OWNER)
    with at(2026, 6, 10, 9):
        change = plan_change(account=root, plan=plan("pro"), by=owner)
        assert change.status == "scheduled" and plan_of(root) == "agency"
        assert change.effective_at == datetime.datetime(2026, 7, 1, tzinfo=UTC)
    with at(2026, 7, 1, 0, 30):  # due, the cron has not run yet: June is still the Agency plan, July is Pro
        june = compute_statement(root, datetime.date(2026, 6, 1))
        assert (june.plan_price_cents, june.plan_name) == (29900, "Agency")
        assert compute_statement(root, datetime.date(2026, 7, 1)).plan_name == "Pro"
        assert apply_due_plan_changes() == (1, 0)
        assert plan_of(root) == "pro"
        invoice, _ = invoice_close(root=root, period=datetime.date(2026, 6, 1))
        assert (invoice.plan_name, invoice.plan_price_cents) == ("Agency", 29900)


def test_a_downgrade_is_refused_while_subaccounts_exist_and_cancelled_if_they_come_back(make_member):
    root = AccountFactory(name="Agency Co", plan_code="agency")
    owner = make_member(root, RoleId.OWNER)
    child = AccountFactory(parent=root, name="Customer")
    root.refresh_from_db()
    with pytest.raises(ValidationError, match="no subaccounts and Agency Co has 1"):
        plan_change(account=root, plan=plan("free"), by=owner)
    from accounts.models import Account

    Account.objects.filter(pk=child.pk).delete()
    Account.objects.filter(pk=root.pk).update(numchild=0)
    root.refresh_from_db()
    with at(2026, 6, 10):
        plan_change(account=root, plan=plan("free"), by=owner)
    AccountFactory(parent=root, name="Another")  # created before the downgrade comes due
    with at(2026, 7, 1, 0, 5):
        assert apply_due_plan_changes() == (0, 1)
    assert plan_of(root) == "agency"
    assert PlanChange.objects.get().status == "cancelled"


def test_cancel_and_replace_a_scheduled_change(make_member):
    root = AccountFactory(name="Big", plan_code="agency")
    owner = make_member(root, RoleId.OWNER)
    first = plan_change(account=root, plan=plan("pro"), by=owner)
    second = plan_change(account=root, plan=plan("free"), by=owner)
    first.refresh_from_db()
    assert first.status == "cancelled" and second.status == "scheduled"
    plan_change_cancel(change=second, by=owner)
    assert not PlanChange.objects.filter(status="scheduled").exists()


def test_refused_actors_and_subaccounts(make_member, owner_and_root):
    owner, root = owner_and_root
    for role in (RoleId.ADMIN, RoleId.MEMBER, RoleId.VIEWER):
        person = make_member(root, role)
        if role == RoleId.ADMIN:
            continue  # Admins hold billing management
        with pytest.raises(PermissionDenied):
            plan_change(account=root, plan=plan("agency"), by=person)
    agency = AccountFactory(name="Parent")
    sub = AccountFactory(parent=agency, name="Sub")
    with pytest.raises(ValidationError, match="billed through the account above"):
        plan_change(account=sub, plan=plan("pro"), by=None)
    with pytest.raises(PermissionDenied):
        plan_change(account=root, plan=plan("agency"), by=make_member(AccountFactory(name="Other"), RoleId.OWNER))
    assert plan_of(root) == "pro" and not Invoice.objects.exists()


def test_the_pages(client, owner_and_root, make_member):
    owner, root = owner_and_root
    client.force_login(owner)
    plans_url = reverse("billing:plans", kwargs={"account_id": root.public_id})
    page = client.get(plans_url).content.decode()
    assert "Upgrade to Agency" in page and "Switch to Free" in page
    change_url = reverse("billing:plan-change", kwargs={"account_id": root.public_id}) + "?plan=agency"
    assert "This month&#x27;s statement adds" in client.get(change_url).content.decode() or \
        "This month's statement adds" in client.get(change_url).content.decode()
    response = client.post(change_url, {"plan": "agency"}, follow=True)
    assert client.get(change_url.replace("agency", "nope")).status_code == 404
    assert "You are on the Agency plan now" in response.content.decode() and plan_of(root) == "agency"
    # A member sees the plans but cannot change them; a subaccount has no plans page; another tenant is a 404.
    member = make_member(root, RoleId.MEMBER)
    client.force_login(member)
    assert client.get(change_url).status_code == 403
    sub = AccountFactory(parent=root, name="Sub")
    client.force_login(owner)
    assert client.get(reverse("billing:plans", kwargs={"account_id": sub.public_id})).status_code == 403
    client.force_login(make_member(AccountFactory(name="Other"), RoleId.OWNER))
    assert client.get(plans_url).status_code == 404
    assert client.post(change_url, {"plan": "agency"}).status_code == 404


def test_the_plans_page_query_budget(client, owner_and_root):
    owner, root = owner_and_root
    client.force_login(owner)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(reverse("billing:plans", kwargs={"account_id": root.public_id})).status_code == 200
    assert len(ctx.captured_queries) <= 10, len(ctx.captured_queries)


def test_a_malformed_plan_code_is_a_404_not_a_server_error(client, owner_and_root):
    owner, root = owner_and_root
    client.force_login(owner)
    url = reverse("billing:plan-change", kwargs={"account_id": root.public_id})
    for bad in ("\x00", "x" * 300, "../free", "pro'; --"):
        assert client.get(url, {"plan": bad}).status_code == 404
        assert client.post(url, {"plan": bad}).status_code == 404
    assert plan_of(root) == "pro"
