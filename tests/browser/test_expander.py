"""The arrow of a subaccount row turns when its subaccounts are shown, and back when they are folded
(issue 16 item 8)."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from members.roles import RoleId
from tests.factories import PASSWORD, AccountFactory, MembershipFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_the_arrow_turns_and_the_nested_rows_fold_away(page, live_server, sign_in):
    agency = AccountFactory(name="Northwind")
    acme = AccountFactory(parent=agency, name="Acme")
    sales = AccountFactory(parent=acme, name="Acme Sales")
    AccountFactory(parent=sales, name="Acme Sales Nordics")
    owner = UserFactory()
    MembershipFactory(user=owner, account=agency, role=RoleId.OWNER)
    sign_in(owner.email, PASSWORD)
    page.goto(live_server.url + reverse("accounts:subaccount-list", kwargs={"account_id": agency.public_id}))

    arrow = page.get_by_role("button", name="Show subaccounts of Acme", exact=True)
    expect(arrow).to_have_attribute("aria-expanded", "false")
    assert arrow.evaluate("b => getComputedStyle(b).transform") == "none"
    arrow.click()
    nested = page.get_by_role("link", name="Acme Sales", exact=True)
    expect(nested).to_be_visible()
    expect(arrow).to_have_attribute("aria-expanded", "true")
    # a quarter turn, matrix(0, 1, -1, 0, 0, 0) give or take rounding, once the .15 s transition
    # has run (on a loaded machine the first frames can still be mid-turn)
    page.wait_for_function(
        "b => { const m = new DOMMatrix(getComputedStyle(b).transform);"
        " return Math.abs(m.a) < 0.01 && Math.abs(m.b - 1) < 0.01; }",
        arg=arrow.element_handle(), timeout=5000)

    page.get_by_role("button", name="Show subaccounts of Acme Sales", exact=True).click()
    deeper = page.get_by_role("link", name="Acme Sales Nordics", exact=True)
    expect(deeper).to_be_visible()

    arrow.click()  # fold: everything below Acme hides, the arrow turns back
    expect(nested).to_be_hidden()
    expect(deeper).to_be_hidden()
    expect(arrow).to_have_attribute("aria-expanded", "false")
    page.wait_for_function("b => getComputedStyle(b).transform === 'none'", arg=arrow.element_handle())
    arrow.click()  # unfold: both levels again (Acme Sales was left open)
    expect(nested).to_be_visible()
    expect(deeper).to_be_visible()
