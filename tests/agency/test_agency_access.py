import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.access import resolve_access
from accounts.models import Account, AuditEvent
from agency import services
from agency.models import AgencyBaseline, AgencyGrant, AgencySettings
from members.models import Membership, User
from members.roles import RoleId
from members.services import membership_change_role
from tests.factories import AccountFactory, UserFactory
from workspace.models import Agent

pytestmark = pytest.mark.django_db

# Query budget (issue 14): one extra query on the page must fail a test.
CLIENTS_BUDGET = 7

STRICT = {c: "none" for c in ("agents", "conversations", "contacts", "settings", "members", "subaccounts",
                              "trust_center", "developer_tools", "billing", "usage")}


def fresh(user):
    return User.objects.get(pk=user.pk)


def access_of(user, account):
    return resolve_access(fresh(user), account)


@pytest.fixture
def world(make_member):
    """Agency X with an admin, a client that approved X, and agency Y with its own client."""
    agency = AccountFactory(name="Agency X")
    agency_admin = make_member(agency, RoleId.ADMIN)
    client_account = AccountFactory(name="Client", plan_code="pro")
    client_owner = make_member(client_account, RoleId.OWNER)
    client_member = make_member(client_account, RoleId.MEMBER)
    grant = services.access_request(agency=agency, client=client_account, by=agency_admin)
    services.access_decide(grant=grant, approve=True, by=client_owner)
    other_agency = AccountFactory(name="Agency Y")
    other_admin = make_member(other_agency, RoleId.ADMIN)
    other_client = AccountFactory(name="Y's client")
    other_owner = make_member(other_client, RoleId.OWNER)
    g2 = services.access_request(agency=other_agency, client=other_client, by=other_admin)
    services.access_decide(grant=g2, approve=True, by=other_owner)
    return dict(agency=agency, agency_admin=agency_admin, client=client_account, owner=client_owner,
                member=client_member, grant=grant, other_agency=other_agency, other_client=other_client,
                other_admin=other_admin)


def page(account, name="dashboard", ns="accounts", **kwargs):
    return reverse(f"{ns}:{name}", kwargs={"account_id": account.public_id, **kwargs})


class TestPaths:
    def test_approved_agency_member_has_agency_admin_access_but_not_billing(self, world):
        access = access_of(world["agency_admin"], world["client"])
        assert access.is_agency and access.role.id == RoleId.AGENCY_ADMIN
        assert access.has("manage_agents", "manage_members", "manage_developer_tools")
        assert not access.has("manage_billing")

    def test_agency_member_of_x_cannot_reach_a_client_of_y(self, world, client):
        assert access_of(world["agency_admin"], world["other_client"]) is None
        client.force_login(world["agency_admin"])
        assert client.get(page(world["other_client"])).status_code == 404

    def test_a_membership_linked_to_another_agency_gives_nothing(self, world):
        """Y's grant on its client does not make an X-linked agency membership there effective."""
        intruder = UserFactory()
        Membership.objects.create(user=intruder, account=world["other_client"], role=RoleId.AGENCY_ADMIN,
                                  is_agency=True, agency_account=world["agency"])
        assert access_of(intruder, world["other_client"]) is None

    def test_agency_access_does_not_reach_the_clients_subaccounts(self, world, client):
        sub = AccountFactory(parent=world["client"], name="Client branch")
        assert access_of(world["agency_admin"], sub) is None
        assert access_of(world["owner"], sub) is not None
        client.force_login(world["agency_admin"])
        assert client.get(page(sub)).status_code == 404
        switcher = client.get(reverse("accounts:switcher"), {"q": "Client"}, HTTP_HX_REQUEST="true")
        assert [e["account"].name for e in switcher.context["entries"]] == ["Client"]

    def test_non_agency_members_and_the_owner_are_capped_by_agency_settings(self, world):
        services.settings_update(client=world["client"], matrix={**STRICT, "agents": "read", "members": "read"},
                                 by=world["owner"])
        owner = access_of(world["owner"], world["client"])
        assert owner.has("view_agents") and not owner.has("manage_agents") and not owner.has("view_billing")
        member = access_of(world["member"], world["client"])
        assert member.has("view_agents") and not member.has("manage_agents")
        agency = access_of(world["agency_admin"], world["client"])
        assert agency.has("manage_agents")  # agency members keep their access

    def test_the_owner_can_still_see_and_revoke_under_the_strictest_matrix(self, world, client):
        services.settings_update(client=world["client"], matrix=STRICT, by=world["owner"])
        client.force_login(world["owner"])
        listing = client.get(page(world["client"], "client-access", "agency"))
        assert listing.status_code == 200 and "Agency X" in listing.content.decode()
        assert client.get(page(world["client"], "client-settings", "agency")).status_code == 200
        client.post(page(world["client"], "revoke", "agency", grant_id=world["grant"].public_id))
        assert AgencyGrant.objects.get(pk=world["grant"].pk).status == AgencyGrant.Status.REVOKED
        # with the last agency gone the cap lifts
        assert access_of(world["owner"], world["client"]).has("manage_billing")

    def test_settings_changes_apply_to_existing_members_on_their_next_request(self, world, client):
        client.force_login(world["member"])
        create = page(world["client"], "agent-create", "workspace")
        assert client.get(create).status_code == 200
        services.settings_update(client=world["client"], matrix={**STRICT, "agents": "read"}, by=world["owner"])
        assert client.get(create).status_code == 403
        assert client.get(page(world["client"], "agent-list", "workspace")).status_code == 200

    def test_agency_users_never_become_owner_or_change_roles(self, world):
        m = Membership.objects.get(user=world["agency_admin"], account=world["client"])
        with pytest.raises(ValidationError, match="keep the Agency Admin role"):
            membership_change_role(membership=m, role=RoleId.OWNER, by=world["owner"])
        from members.services import ownership_transfer

        with pytest.raises(ValidationError, match="cannot become Owner"):
            ownership_transfer(account=world["client"], to=m, by=world["owner"])

    def test_agency_users_cannot_govern_agency_access_of_the_client(self, world, client):
        client.force_login(world["agency_admin"])
        assert client.get(page(world["client"], "client-access", "agency")).status_code == 403
        assert client.post(page(world["client"], "client-settings", "agency"), STRICT).status_code == 403


class TestRevocationAndExpiry:
    def _open_session(self, world):
        browser = Client()
        browser.force_login(world["agency_admin"])
        browser.post(reverse("accounts:switch"), {"account": str(world["client"].public_id)})
        assert browser.get(page(world["client"])).status_code == 200
        return browser

    def test_revocation_ends_access_on_the_next_request(self, world):
        browser = self._open_session(world)
        services.access_revoke(grant=world["grant"], by=world["owner"])
        response = browser.get(page(world["client"]))
        # Not a bare 404: the page says it ended and when (issue 16), and nothing else about the account.
        assert response.status_code == 403 and "ended Agency X's agency access on" in response.content.decode()
        entries = browser.get(reverse("accounts:switcher"), HTTP_HX_REQUEST="true").context["entries"]
        assert world["client"] not in [e["account"] for e in entries]
        assert AuditEvent.objects.filter(account=world["agency"], action="agency.access_revoked").exists()

    def test_expiry_ends_access_at_the_instant_and_is_recorded_once(self, world):
        browser = self._open_session(world)
        AgencyGrant.objects.filter(pk=world["grant"].pk).update(
            expires_at=timezone.now() - datetime.timedelta(seconds=1))
        response = browser.get(page(world["client"]))
        assert response.status_code == 403 and "agency access to Client expired on" in response.content.decode()
        assert access_of(world["agency_admin"], world["client"]) is None
        assert services.record_expiries() == 1 and services.record_expiries() == 0
        assert AuditEvent.objects.filter(account=world["client"], action="agency.access_expired").count() == 1

    def test_the_platform_revokes_without_a_person_naming_the_staff_member(self, world):
        """``by=None`` is the platform (admin action, command): no governor needed; the staff member who
        did it is named in both audit trails, and the agency's people lose access at once."""
        staff = UserFactory(is_staff=True)
        services.access_revoke(grant=world["grant"], by=None, staff=staff)
        grant = AgencyGrant.objects.get(pk=world["grant"].pk)
        assert grant.status == AgencyGrant.Status.REVOKED and grant.decided_by == staff
        assert access_of(world["agency_admin"], world["client"]) is None
        for account in (world["client"], world["agency"]):
            event = AuditEvent.objects.get(account=account, action="agency.access_revoked")
            assert event.actor == staff and "ended by the platform" in event.summary

    def test_only_active_staff_revoke_for_the_platform(self, world):
        with pytest.raises(PermissionDenied, match="platform staff"):
            services.access_revoke(grant=world["grant"], by=None, staff=UserFactory())
        assert AgencyGrant.objects.get(pk=world["grant"].pk).status == AgencyGrant.Status.ACTIVE

    def test_extending_restores_access(self, world):
        grant = world["grant"]
        AgencyGrant.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - datetime.timedelta(days=1))
        services.access_update(grant=grant, by=world["owner"], matrix={},
                               expires_at=timezone.now() + datetime.timedelta(days=30))
        assert access_of(world["agency_admin"], world["client"]) is not None

    def test_narrowing_caps_the_agency(self, world, client):
        client.force_login(world["owner"])
        data = {f"cap-{c}": "full" for c in ("agents", "conversations", "contacts", "settings", "members",
                                             "subaccounts", "trust_center")}
        data.update({"cap-developer_tools": "none", "cap-billing": "read", "cap-usage": "read", "expires_at": ""})
        response = client.post(page(world["client"], "grant-edit", "agency", grant_id=world["grant"].public_id),
                               data, follow=True)
        assert "Agency access updated" in response.content.decode()
        access = access_of(world["agency_admin"], world["client"])
        assert access.has("manage_agents") and not access.has("view_developer_tools")

    def test_narrowing_cannot_exceed_agency_admin(self, world, client):
        client.force_login(world["owner"])
        data = {f"cap-{c}": "full" for c in ("agents", "conversations", "contacts", "settings", "members",
                                             "subaccounts", "trust_center", "developer_tools", "billing")}
        data.update({"cap-usage": "read", "expires_at": "2000-01-01"})
        html = client.post(page(world["client"], "grant-edit", "agency", grant_id=world["grant"].public_id),
                           data).content.decode()
        assert "cannot grant Full" in html and "today or a later date" in html


class TestSuspendedAgency:
    """A suspended agency's people work in no client while it lasts; the clients' own people, and other agencies,
    are not touched; lifting it gives the access back."""

    def _open_session(self, world):
        return TestRevocationAndExpiry._open_session(self, world)

    def test_suspending_the_agency_pauses_its_access_on_the_next_request(self, world):
        from accounts.services import account_set_status

        browser = self._open_session(world)
        account_set_status(account=world["agency"], suspended=True, staff=UserFactory(is_staff=True))
        response = browser.get(page(world["client"]))
        html = response.content.decode()
        # said as it is, and nothing else about the account
        assert response.status_code == 403 and "Agency X's account is suspended" in html
        assert "Dashboard" not in html
        assert access_of(world["agency_admin"], world["client"]) is None
        entries = browser.get(reverse("accounts:switcher"), HTTP_HX_REQUEST="true").context["entries"]
        assert world["client"] not in [e["account"] for e in entries]
        assert browser.get(reverse("accounts:switcher"), {"q": "Client"}, HTTP_HX_REQUEST="true").context[
            "entries"] == []  # nor found by a search
        # the client's own people work as before; the grant is untouched, and its Owner sees it paused
        assert access_of(world["owner"], world["client"]).has("manage_members")
        assert AgencyGrant.objects.get(pk=world["grant"].pk).is_effective
        owner = Client()
        owner.force_login(world["owner"])
        listed = owner.get(page(world["client"], "client-access", "agency")).content.decode()
        assert "Paused: agency suspended" in listed

        account_set_status(account=world["agency"], suspended=False, staff=UserFactory(is_staff=True))
        assert browser.get(page(world["client"])).status_code == 200
        assert access_of(world["agency_admin"], world["client"]).is_agency

    def test_another_agency_of_the_same_client_keeps_its_access(self, world, make_member):
        from accounts.models import Account

        second = AccountFactory(name="Agency Z")
        z_admin = make_member(second, RoleId.ADMIN)
        grant = services.access_request(agency=second, client=world["client"], by=z_admin)
        services.access_decide(grant=grant, approve=True, by=world["owner"])
        Account.objects.filter(pk=world["agency"].pk).update(status=Account.Status.SUSPENDED)
        assert access_of(world["agency_admin"], world["client"]) is None
        assert access_of(z_admin, world["client"]).is_agency


class TestRequests:
    def test_request_approve_flow_in_the_browser_pages(self, client, make_member):
        agency = AccountFactory(name="Northwind")
        agency_admin = make_member(agency, RoleId.OWNER)
        target = AccountFactory(name="Dental")
        owner = make_member(target, RoleId.OWNER)
        client.force_login(agency_admin)
        response = client.post(page(agency, "request", "agency"),
                               {"client": f"https://console.example/a/{target.public_id}/agents/", "note": "Hi"},
                               follow=True)
        assert "Request sent" in response.content.decode()
        grant = AgencyGrant.objects.get(client=target)
        assert grant.status == "requested"
        client.force_login(owner)
        listing = client.get(page(target, "client-access", "agency")).content.decode()
        assert "Northwind" in listing and "Approve" in listing
        client.post(page(target, "decide", "agency", grant_id=grant.public_id), {"decision": "approve"})
        assert resolve_access(fresh(agency_admin), target).is_agency

    @pytest.mark.parametrize("case,message", [
        ("unknown", "No independent account has that ID"),
        ("subaccount", "No independent account has that ID"),  # the same answer: nothing told about the id
        ("self", "cannot grant agency access to itself"),
        ("twice", "already has access"),
    ])
    def test_bad_requests_are_explained(self, client, make_member, case, message):
        agency = AccountFactory(name="Northwind")
        admin = make_member(agency, RoleId.ADMIN)
        target = {"unknown": None, "subaccount": AccountFactory(parent=AccountFactory()), "self": agency,
                  "twice": AccountFactory()}[case]
        if case == "twice":
            services.access_request(agency=agency, client=target, by=admin)
        client.force_login(admin)
        value = "0b5c6a1e-0000-4000-8000-000000000000" if target is None else str(target.public_id)
        response = client.post(page(agency, "request", "agency"), {"client": value})
        assert message in response.content.decode()
        assert AgencyGrant.objects.count() == (1 if case == "twice" else 0)

    def test_member_of_the_agency_cannot_request(self, client, make_member):
        agency = AccountFactory()
        client.force_login(make_member(agency, RoleId.MEMBER))
        assert client.get(page(agency, "request", "agency")).status_code == 403

    def test_decline_and_only_the_client_decides(self, make_member):
        agency = AccountFactory()
        admin = make_member(agency, RoleId.ADMIN)
        target = AccountFactory()
        owner = make_member(target, RoleId.OWNER)
        viewer = make_member(target, RoleId.VIEWER)
        grant = services.access_request(agency=agency, client=target, by=admin)
        with pytest.raises(PermissionDenied):
            services.access_decide(grant=grant, approve=True, by=admin)
        with pytest.raises(PermissionDenied):
            services.access_decide(grant=grant, approve=True, by=viewer)
        services.access_decide(grant=grant, approve=False, by=owner)
        assert AgencyGrant.objects.get(pk=grant.pk).status == "declined"
        assert resolve_access(fresh(admin), target) is None

    def test_another_clients_grant_ids_are_404(self, world, client):
        client.force_login(world["owner"])
        foreign = AgencyGrant.objects.get(client=world["other_client"])
        assert client.post(page(world["client"], "revoke", "agency", grant_id=foreign.public_id)).status_code == 404
        assert client.get(page(world["client"], "grant-edit", "agency", grant_id=foreign.public_id)).status_code == 404
        client.force_login(world["agency_admin"])
        assert client.get(page(world["agency"], "client-people", "agency",
                               grant_id=foreign.public_id)).status_code == 404


class TestBaselineAndInvitation:
    def test_new_clients_start_from_the_baseline(self, make_member):
        agency = AccountFactory()
        admin = make_member(agency, RoleId.ADMIN)
        AgencyBaseline.objects.create(account=agency, matrix={"billing": "none"})
        target = AccountFactory()
        owner = make_member(target, RoleId.OWNER)
        services.access_decide(grant=services.access_request(agency=agency, client=target, by=admin),
                               approve=True, by=owner)
        assert AgencySettings.objects.get(account=target).matrix == {"billing": "none"}
        assert not access_of(owner, target).has("view_billing")

    def test_changing_the_baseline_names_clients_and_asks_before_applying(self, world, client):
        client.force_login(world["agency_admin"])
        url = page(world["agency"], "baseline", "agency")
        data = {**STRICT, "agents": "full", "usage": "read"}
        preview = client.post(url, data)
        html = preview.content.decode()
        assert "1 existing client has different settings" in html and "Client" in html
        client.post(url, {**data, "scope": "new"})
        assert AgencySettings.objects.get(account=world["client"]).matrix == {}
        # R2: a client's agency settings are the client's to set; the agency's admin does not govern them
        response = client.post(url, {**data, "scope": "existing"}, follow=True)
        assert AgencySettings.objects.get(account=world["client"]).matrix == {}
        assert "1 client decides their own agency settings" in response.content.decode()
        assert access_of(world["member"], world["client"]).has("view_contacts")

    def test_the_baseline_applies_to_clients_the_agencys_person_governs(self, world, make_member):
        """An agency whose person is also the client's Owner may apply its baseline there (they govern it)."""
        both = make_member(world["agency"], RoleId.ADMIN, user=world["owner"])
        changed = services.baseline_update(agency=world["agency"], matrix={**STRICT, "agents": "full",
                                                                           "usage": "read"},
                                           by=fresh(both), apply_to_existing=True)
        assert changed == [world["client"]]
        assert AgencySettings.objects.get(account=world["client"]).matrix["agents"] == "full"

    def test_client_invites_an_agency_user_who_names_their_agency(self, make_member,
                                                                   django_capture_on_commit_callbacks):
        from members.invitations import invitation_create, invitation_token

        target = AccountFactory(name="Dental")
        owner = make_member(target, RoleId.OWNER)
        agency = AccountFactory(name="Agency Z")
        person = make_member(agency, RoleId.OWNER, user=UserFactory(email="pat@agency.test"))
        invitation = invitation_create(account=target, email="pat@agency.test", role=RoleId.AGENCY_ADMIN,
                                       is_agency=True, by=owner)
        browser = Client()
        browser.force_login(person)
        link = reverse("invitation-accept", kwargs={"token": invitation_token(invitation)})
        assert "Agency Z" in browser.get(link).content.decode()
        browser.post(link, {"agency": agency.pk})
        m = Membership.objects.get(user=person, account=target)
        assert m.is_agency and m.agency_account == agency
        assert AgencyGrant.objects.get(client=target, agency=agency).status == "active"
        assert resolve_access(fresh(person), target).is_agency

    def test_new_person_invited_as_agency_user_creates_their_agency(self, make_member):
        from members.invitations import invitation_create, invitation_token

        target = AccountFactory(name="Dental")
        owner = make_member(target, RoleId.OWNER)
        invitation = invitation_create(account=target, email="new@agency.test", role=RoleId.AGENCY_ADMIN,
                                       is_agency=True, by=owner)
        link = reverse("invitation-accept", kwargs={"token": invitation_token(invitation)})
        Client().post(link, {"name": "New", "password": "a-good-long-secret", "agency_name": "Fresh Agency"})
        m = Membership.objects.get(user__email="new@agency.test", account=target)
        assert m.agency_account.name == "Fresh Agency" and m.is_agency


class TestAgencyDashboard:
    def test_lists_both_models_side_by_side(self, world, client):
        AccountFactory(parent=world["agency"], name="Parent-billed Co")
        client.force_login(world["agency_admin"])
        html = client.get(page(world["agency"], "clients", "agency")).content.decode()
        assert "Parent-billed Co" in html and "Parent billing" in html
        assert "Client" in html and "Agency access · billed directly" in html
        assert world["agency_admin"].email in html

    def test_client_owned_accounts_are_searched_listed_by_name_and_name_their_people(self, make_member, client,
                                                                                    no_orm_compilation):
        """The list is compiled once (accounts.baked), not by the ORM on each request; ended grants stay off it."""
        agency = AccountFactory(name="Agency Q")
        admin = make_member(agency, RoleId.ADMIN)
        for name, status in (("Zeta Dental", "active"), ("Alpha Dental", "requested"), ("Beta Bakery", "active"),
                             ("Gone Dental", "revoked"), ("No Dental", "declined")):
            AgencyGrant.objects.create(client=AccountFactory(name=name), agency=agency, status=status)
        zeta = Account.objects.get(name="Zeta Dental")
        for email in ("zoe@agency.test", "amy@agency.test"):
            Membership.objects.create(user=UserFactory(email=email), account=zeta, role=RoleId.AGENCY_ADMIN,
                                      is_agency=True, agency_account=agency)
        client.force_login(admin)
        url = page(agency, "clients", "agency")
        client.get(url)  # (compiled here)
        no_orm_compilation()
        html = client.get(url).content.decode()
        table = html[html.index('id="clients"'):html.index("</table>", html.index('id="clients"'))]
        assert [n for n in ("Alpha Dental", "Beta Bakery", "Zeta Dental") if n in table] == [
            "Alpha Dental", "Beta Bakery", "Zeta Dental"]
        assert table.index("Alpha Dental") < table.index("Beta Bakery") < table.index("Zeta Dental")
        assert "Gone Dental" not in table and "No Dental" not in table
        assert "amy@agency.test, zoe@agency.test" in table
        found = client.get(url, {"q": "dental"}).content.decode()
        assert "Alpha Dental" in found and "Zeta Dental" in found and "Beta Bakery" not in found
        assert "No client-owned account matches" in client.get(url, {"q": "nothing"}).content.decode()

    def test_query_count_is_the_same_for_5_and_200_clients(self, make_member, client, count_queries):
        counts = []
        for n in (5, 200):
            agency = AccountFactory()
            admin = make_member(agency, RoleId.ADMIN)
            for _ in range(n):
                target = AccountFactory()
                AgencyGrant.objects.create(client=target, agency=agency, status="active")
                Membership.objects.create(user=admin, account=target, role=RoleId.AGENCY_ADMIN, is_agency=True,
                                          agency_account=agency)
                AccountFactory(parent=agency)
            client.force_login(admin)
            client.get(page(agency, "clients", "agency"))
            counts.append(count_queries(lambda a=agency: client.get(page(a, "clients", "agency"))))
        assert counts == [CLIENTS_BUDGET - 1, CLIENTS_BUDGET]  # the grants fit on their first page: no COUNT

    def test_switcher_groups_clients_apart(self, world, client):
        client.force_login(world["agency_admin"])
        response = client.get(reverse("accounts:switcher"), HTTP_HX_REQUEST="true")
        groups = [(e["account"].name, e["group"]) for e in response.context["entries"]]
        assert groups == [("Agency X", "Your accounts"), ("Client", "Clients (agency access)")]
        assert "Clients (agency access)" in response.content.decode()

    def test_agency_changes_in_the_client_are_audited_with_the_agency(self, world, client):
        client.force_login(world["agency_admin"])
        client.post(page(world["client"], "agent-create", "workspace"),
                    {"name": "Built by agency", "language": "en", "status": "active"})
        assert Agent.objects.filter(account=world["client"]).exists()
        event = AuditEvent.objects.get(account=world["client"], action="agent.created")
        assert event.data["via_agency"] == "Agency X"
        client.force_login(world["owner"])
        html = client.get(page(world["client"], "audit-log")).content.decode()
        assert "via Agency X" in html


class TestServicesEnforceToo:
    """The matrix holds at the service layer, not only in views and links."""

    def test_a_capped_owner_cannot_create_an_agent_through_the_service(self, world):
        from workspace.services import agent_create

        services.settings_update(client=world["client"], matrix={**STRICT, "agents": "read"}, by=world["owner"])
        with pytest.raises(PermissionDenied, match="create and edit agents"):
            agent_create(account=world["client"], by=fresh(world["owner"]), name="Nope")
        agent_create(account=world["client"], by=fresh(world["agency_admin"]), name="Agency built")
        assert list(Agent.objects.filter(account=world["client"]).values_list("name", flat=True)) == ["Agency built"]

    def test_a_capped_member_cannot_invite_through_the_service(self, world):
        from members.invitations import invitation_create

        services.settings_update(client=world["client"], matrix={**STRICT, "members": "read"}, by=world["owner"])
        with pytest.raises(PermissionDenied):
            invitation_create(account=world["client"], email="x@example.test", role=RoleId.VIEWER,
                              by=fresh(world["owner"]))

    def test_settings_rename_and_subaccount_governance_check_the_actor(self, world, make_member):
        from accounts.services import account_rename, subaccount_set_limits

        viewer = make_member(world["client"], RoleId.VIEWER)
        with pytest.raises(PermissionDenied):
            account_rename(account=world["client"], name="Renamed", by=fresh(viewer))
        sub = AccountFactory(parent=world["client"])
        with pytest.raises(PermissionDenied):
            subaccount_set_limits(account=sub, limits={"agents": 1}, by=fresh(viewer))


def test_a_person_who_leaves_the_agency_no_longer_reaches_its_clients_by_any_query(world):
    """R3 in the SQL every reach query shares (``effective_membership_q``): with the grant still active, the
    agency membership stops counting once its person's own membership of the agency is gone."""
    from accounts.models import Account
    from accounts.selectors import entry_points, search_page

    person, client_account = world["agency_admin"], world["client"]
    via = Membership.objects.get(user=person, account=client_account, is_agency=True, agency_account=world["agency"])
    assert Membership.objects.effective().filter(pk=via.pk).exists()
    assert client_account.pk in {a.pk for a in search_page(person, "Client")}
    Membership.objects.filter(user=person, account=world["agency"], is_agency=False).delete()
    assert not Membership.objects.effective().filter(pk=via.pk).exists()
    assert not Account.objects.reachable_by(fresh(person)).filter(pk=client_account.pk).exists()
    assert [e.account.pk for e in entry_points(person)] == []
    assert list(search_page(person, "Client")) == []
