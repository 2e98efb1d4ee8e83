import pytest
from playwright.sync_api import expect

from members.roles import RoleId
from tests.factories import PASSWORD, AccountFactory, MembershipFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_sign_in_switch_account_and_see_the_dashboard_change(page, sign_in, screenshot):
    agency = AccountFactory(name="Northwind Agency")
    client = AccountFactory(parent=agency, name="Acme Corp")
    AccountFactory(parent=client, name="Acme Sales")
    owner = UserFactory(email="owner@northwind.test")
    MembershipFactory(user=owner, account=agency, role=RoleId.OWNER)

    sign_in(owner.email, PASSWORD)
    expect(page.get_by_role("heading", level=1)).to_have_text("Northwind Agency")
    expect(page.get_by_test_id("subaccounts-count")).to_have_text("1")
    screenshot("dashboard-agency")

    page.locator("#switcher summary").click()
    page.get_by_role("button", name="Show subaccounts of Northwind Agency").click()
    page.get_by_role("button", name="Acme Corp", exact=True).click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Acme Corp")
    expect(page.get_by_test_id("role")).to_have_text("Owner")
    expect(page.get_by_text("Inherited from Northwind Agency")).to_be_visible()
    expect(page.locator("#switcher summary")).to_contain_text("Subaccount · level 2")
    assert f"/a/{client.public_id}/" in page.url
    screenshot("dashboard-subaccount")

    # Search runs on the server.
    page.locator("#switcher summary").click()
    page.get_by_role("searchbox", name="Search accounts").fill("sales")
    page.get_by_role("button", name="Acme Sales", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme Sales")

    # "/" returns to the account last chosen.
    page.goto(page.url.split("/a/")[0] + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme Sales")


def test_create_subaccount_switch_in_create_agent_switch_back_and_see_the_count(page, sign_in, screenshot):
    agency = AccountFactory(name="Northwind Agency")
    owner = UserFactory(email="owner@northwind.test")
    MembershipFactory(user=owner, account=agency, role=RoleId.OWNER)

    sign_in(owner.email, PASSWORD)
    page.get_by_role("link", name="Subaccounts").click()
    expect(page.get_by_text("No subaccounts yet")).to_be_visible()
    page.get_by_role("link", name="Create subaccount").click()
    page.get_by_label("Account name").fill("Acme Corp")
    page.get_by_role("button", name="Create subaccount").click()

    # created and switched in
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme Corp")
    expect(page.locator("#switcher summary")).to_contain_text("Subaccount · level 2")

    page.get_by_role("link", name="Agents").click()
    page.get_by_role("link", name="New agent").click()
    page.get_by_label("Name").fill("Front desk")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Agent “Front desk” saved.")).to_be_visible()

    # back to the agency through the switcher
    page.locator("#switcher summary").click()
    page.get_by_role("button", name="Northwind Agency", exact=True).click()
    # from an agent's page (an object of Acme) the switch opens the agency's dashboard
    expect(page.get_by_role("heading", level=1)).to_have_text("Northwind Agency")
    page.get_by_role("link", name="Subaccounts").click()
    row = page.locator("#subaccounts tbody tr", has_text="Acme Corp")
    expect(row.locator("td").nth(3)).to_have_text("1")  # agents column
    screenshot("subaccounts-table")


def test_invite_accept_in_a_second_browser_and_the_member_appears(page, browser, live_server, sign_in, screenshot):
    import re

    from django.core import mail

    account = AccountFactory(name="Blue Harbor Dental")
    owner = UserFactory(email="owner@blueharbor.test")
    MembershipFactory(user=owner, account=account, role=RoleId.OWNER)

    sign_in(owner.email, PASSWORD)
    page.get_by_role("link", name="Members").click()
    page.locator("#id_email").fill("frontdesk@blueharbor.test")
    page.locator("#id_role").select_option("member")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text("Invitation sent to frontdesk@blueharbor.test")).to_be_visible()
    expect(page.locator("#invitations")).to_contain_text("frontdesk@blueharbor.test")

    link = re.search(r"https?://\S+/invitations/\S+/", mail.outbox[-1].body).group(0)
    invitee = browser.new_context().new_page()
    invitee.goto(link)
    expect(invitee.get_by_text("Create your login for frontdesk@blueharbor.test")).to_be_visible()
    invitee.get_by_label("Your name").fill("Front Desk")
    invitee.get_by_label("Choose a password").fill("a-good-long-secret")
    invitee.get_by_role("button", name="Create login and join").click()
    expect(invitee.get_by_text("Welcome to Blue Harbor Dental! You joined as Member.")).to_be_visible()
    expect(invitee.get_by_role("heading", level=1)).to_have_text("Blue Harbor Dental")

    page.reload()
    expect(page.locator("#members")).to_contain_text("frontdesk@blueharbor.test")
    expect(page.locator("#invitations")).to_have_count(0)
    screenshot("members")


def test_agency_requests_client_approves_agency_edits_client_revokes(page, browser, live_server, sign_in,
                                                                     screenshot):
    from workspace.models import Agent

    agency = AccountFactory(name="Northwind Agency")
    agency_admin = UserFactory(email="adam@northwind.test")
    MembershipFactory(user=agency_admin, account=agency, role=RoleId.ADMIN)
    client = AccountFactory(name="Blue Harbor Dental", plan_code="pro")
    client_owner = UserFactory(email="bea@blueharbor.test")
    MembershipFactory(user=client_owner, account=client, role=RoleId.OWNER)
    Agent.objects.create(account=client, name="Receptionist")

    # the agency asks
    sign_in(agency_admin.email, PASSWORD)
    page.get_by_role("link", name="Clients").click()
    page.get_by_role("link", name="Request access to a client").click()
    page.get_by_label("Client account ID or link").fill(str(client.public_id))
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_text("Request sent.")).to_be_visible()
    expect(page.locator("#clients")).to_contain_text("Requested")

    # the client approves, in another browser
    owner_page = browser.new_context().new_page()
    owner_page.goto(f"{live_server.url}/accounts/login/")
    owner_page.get_by_label("Email").fill(client_owner.email)
    owner_page.get_by_label("Password").fill(PASSWORD)
    owner_page.get_by_role("button", name="Sign in").click()
    owner_page.get_by_role("link", name="Agency access", exact=True).click()
    owner_page.get_by_role("button", name="Approve").click()
    expect(owner_page.get_by_text("Northwind Agency now has agency access.")).to_be_visible()

    # the agency switches in and edits an agent
    page.reload()
    page.locator("#clients").get_by_role("button", name="Switch to").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Blue Harbor Dental")
    page.get_by_role("link", name="Agents").click()
    page.get_by_role("link", name="Receptionist").click()
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Name").fill("Receptionist v2")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Agent “Receptionist v2” updated.")).to_be_visible()
    screenshot("agency-editing-client")

    # the client sees it in the audit trail and revokes
    owner_page.get_by_role("link", name="Audit").click()
    expect(owner_page.get_by_text("via Northwind Agency").first).to_be_visible()
    owner_page.get_by_role("link", name="Agency access", exact=True).click()
    owner_page.get_by_role("link", name="Revoke…").click()
    owner_page.get_by_role("button", name="Revoke access").click()
    expect(owner_page.get_by_text("Its people lose it on their next click.")).to_be_visible()

    # the agency member's next page is refused
    page.get_by_role("navigation", name="Account", exact=True).get_by_role("link", name="Agents").click()
    # ... with a page that says it ended and when (issue 16), nothing else about the account
    expect(page.get_by_role("heading", level=1)).to_have_text("Your agency access ended")
    expect(page.get_by_text("ended Northwind Agency's agency access on")).to_be_visible()
    page.get_by_role("link", name="Back to your accounts").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Northwind Agency")
