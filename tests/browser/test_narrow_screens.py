"""Phones (issue 16 item 7): at 390 px no main page scrolls sideways, and the navigation folds behind "Menu"."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from agency import services as agency_services
from members.roles import RoleId
from tests.factories import PASSWORD, AccountFactory, MembershipFactory, UserFactory, usage
from workspace.models import Agent, Contact

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PHONE = {"width": 390, "height": 844}


def test_main_pages_fit_a_390_px_screen(browser, live_server, screenshot):
    agency = AccountFactory(name="Northwind Agency With A Rather Long Name For Phones")
    client = AccountFactory(parent=agency, name="Acme Corporation International Holdings", limit_minutes=50,
                            limit_agents=3)
    AccountFactory(parent=client, name="Acme Sales Europe Middle East and Africa")
    for i in range(3):
        AccountFactory(parent=agency, name=f"Customer {i} with a long descriptive account name")
    owner = UserFactory(email="a.very.long.owner.address@northwind-agency.example")
    MembershipFactory(user=owner, account=agency, role=RoleId.OWNER)
    for i in range(3):
        MembershipFactory(user=UserFactory(email=f"teammate.number.{i}@northwind-agency.example"), account=agency,
                          role=RoleId.MEMBER)
    Agent.objects.create(account=agency, name="Front desk receptionist agent", description="Answers calls. " * 10)
    Contact.objects.create(account=agency, name="Jane Customer", email="jane.customer@example.com")
    usage(client, 42)
    other = AccountFactory(name="Client Co")
    other_owner = UserFactory()
    MembershipFactory(user=other_owner, account=other, role=RoleId.OWNER)
    agency_services.access_request(agency=agency, client=other, by=owner)

    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill(owner.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Northwind Agency")

    def url(name, account=agency, **kwargs):
        return live_server.url + reverse(name, kwargs={"account_id": account.public_id, **kwargs})

    pages = [
        url("accounts:dashboard"), url("accounts:subaccount-list"), url("accounts:subaccount-overview",
                                                                         sub_id=client.public_id),
        url("workspace:agent-list"), url("workspace:contact-list"), url("workspace:conversation-list"),
        url("members:list"), url("members:access"), url("members:invite-bulk"),
        url("agency:clients"), url("billing:overview"), url("billing:usage"), url("accounts:audit-log"),
        url("accounts:settings"), live_server.url + reverse("profile"),
        url("accounts:subaccount-limits", sub_id=client.public_id), url("developers:apikey-list"),
        url("billing:invoice-list"), url("members:list") + "?sort=-active",
    ]
    too_wide = []
    for address in pages:
        response = page.goto(address)
        assert response.status == 200, address
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            too_wide.append((address.removeprefix(live_server.url), width))
            screenshot("too-wide-" + address.rstrip("/").rsplit("/", 1)[-1])
    assert not too_wide, too_wide

    # The navigation is behind "Menu" and opens with it.
    page.goto(url("accounts:dashboard"))
    nav = page.get_by_role("navigation", name="Account", exact=True)
    expect(nav).to_be_hidden()
    page.get_by_text("Menu", exact=True).click()
    expect(nav).to_be_visible()
    nav.get_by_role("link", name="Members").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Members")
    screenshot("phone-members")
    context.close()
