"""Invitations (resend, revoke), agency grants (revoke) and memberships in the admin: each action goes through
its service as the platform, with the staff member in the audit trail."""

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from agency import services as agency_services
from agency.models import AgencyGrant
from members.invitations import invitation_create
from members.models import Invitation, Membership
from members.roles import RoleId
from tests.admin.helpers import messages_of
from tests.factories import AccountFactory, MembershipFactory, UserFactory, approved_grant, sent_earlier

pytestmark = pytest.mark.django_db


@pytest.fixture
def invitations(db):
    account = AccountFactory(name="Acme")
    pending = invitation_create(account=account, email="pat@acme.example", role=RoleId.MEMBER, by=None)
    revoked = invitation_create(account=account, email="old@acme.example", role=RoleId.MEMBER, by=None)
    Invitation.objects.filter(pk=revoked.pk).update(status="revoked")
    return pending, Invitation.objects.get(pk=revoked.pk)


class TestInvitations:
    URL = "admin:members_invitation_changelist"

    def test_search_by_email(self, invitations, staff_client):
        result = staff_client.get(reverse(self.URL), {"q": "pat@acme"}).context["cl"].result_list
        assert list(result) == [invitations[0]]

    def test_resend_rotates_the_link_and_names_the_staff_member(self, invitations, support_client, mailoutbox,
                                                                 django_capture_on_commit_callbacks):
        pending, revoked = sent_earlier(*invitations)
        with django_capture_on_commit_callbacks(execute=True):
            response = support_client.post(reverse(self.URL), {"action": "resend_selected",
                                                                "_selected_action": [pending.pk, revoked.pk]})
        fresh = Invitation.objects.get(pk=pending.pk)
        assert fresh.nonce != pending.nonce and fresh.send_count == 2
        assert [m.to for m in mailoutbox] == [["pat@acme.example"]]
        shown = messages_of(response)
        assert "old@acme.example: This invitation is already revoked." in shown
        assert "1 invitation(s) sent again with a new link." in shown
        event = AuditEvent.objects.get(action="invitation.resent")
        assert event.actor == response.wsgi_request.user

    def test_revoke(self, invitations, support_client):
        pending, _ = invitations
        response = support_client.post(reverse(self.URL), {"action": "revoke_selected",
                                                           "_selected_action": [pending.pk]})
        assert Invitation.objects.get(pk=pending.pk).status == "revoked"
        assert "1 invitation(s) revoked: their links no longer work." in messages_of(response)
        assert AuditEvent.objects.get(action="invitation.revoked").actor == response.wsgi_request.user

    def test_the_page_is_read_only_and_hides_the_nonce(self, invitations, staff_client):
        pending, _ = invitations
        url = reverse("admin:members_invitation_change", args=[pending.pk])
        page = staff_client.get(url)
        assert page.status_code == 200 and pending.nonce not in page.content.decode()
        assert staff_client.post(url, {"email": "evil@x.example"}).status_code == 403
        assert staff_client.get(reverse("admin:members_invitation_add")).status_code == 403
        assert staff_client.get(reverse("admin:members_invitation_delete", args=[pending.pk])).status_code == 403


@pytest.fixture
def grant(db):
    return approved_grant("Northwind", "Blue Harbor")["grant"]


class TestAgencyGrants:
    URL = "admin:agency_agencygrant_changelist"

    def test_revoke_ends_the_agency_peoples_access(self, grant, support_client):
        assert Membership.objects.filter(account=grant.client, is_agency=True).exists()
        response = support_client.post(reverse(self.URL), {"action": "revoke_selected",
                                                           "_selected_action": [grant.pk]})
        assert AgencyGrant.objects.get(pk=grant.pk).status == "revoked"
        assert not Membership.objects.filter(account=grant.client, is_agency=True).exists()
        assert any(m.startswith("1 agency access grant(s) revoked.") for m in messages_of(response))
        event = AuditEvent.objects.get(account=grant.client, action="agency.access_revoked")
        assert event.actor == response.wsgi_request.user and "by the platform" in event.summary

    def test_revoking_twice_reports_it(self, grant, staff_client):
        agency_services.access_revoke(grant=grant, by=None)
        response = staff_client.post(reverse(self.URL), {"action": "revoke_selected",
                                                         "_selected_action": [grant.pk]})
        assert "Northwind → Blue Harbor: This agency access is already revoked." in messages_of(response)

    def test_the_account_page_shows_grants_settings_and_memberships(self, grant, staff_client):
        page = staff_client.get(reverse("admin:accounts_account_change", args=[grant.client.pk]))
        html = page.content.decode()
        assert page.status_code == 200 and "Northwind" in html and "Agency settings" in html
        assert grant.client.memberships.get(role=RoleId.OWNER).user.email in html


class TestMemberships:
    def test_a_refused_role_change_saves_nothing_and_says_why(self, staff_client):
        account = AccountFactory()
        owner = MembershipFactory(account=account, user=UserFactory(), role=RoleId.OWNER)
        url = reverse("admin:members_membership_change", args=[owner.pk])
        response = staff_client.post(url, {"role": RoleId.MEMBER}, follow=True)
        assert Membership.objects.get(pk=owner.pk).role == RoleId.OWNER
        assert any(m.startswith("Nothing was saved:") for m in messages_of(response))
        assert not any("was changed successfully" in m for m in messages_of(response))

    def test_adding_goes_through_the_service(self, support_client):
        account, user = AccountFactory(), UserFactory()
        response = support_client.post(reverse("admin:members_membership_add"),
                                       {"user": user.pk, "account": account.pk, "role": RoleId.ADMIN})
        assert response.status_code == 302
        membership = Membership.objects.get(account=account, user=user)
        assert membership.role == RoleId.ADMIN
        assert AuditEvent.objects.filter(account=account, action__startswith="member.").exists()
        assert user.has_perm("accounts.manage_members", account)  # permission rows were written

    def test_the_customers_trail_names_the_staff_member_for_each_change(self, support_client):
        """Add, change the role, remove: each audit row names the staff member who did it in the admin (not
        "system"), marked as the platform's staff on the customer's Audit page and in its CSV."""
        account, user = AccountFactory(name="Acme"), UserFactory(email="pat@acme.example")
        owner = MembershipFactory(account=account, role=RoleId.OWNER)
        support_client.post(reverse("admin:members_membership_add"),
                            {"user": user.pk, "account": account.pk, "role": RoleId.ADMIN})
        membership = Membership.objects.get(account=account, user=user)
        support_client.post(reverse("admin:members_membership_change", args=[membership.pk]),
                            {"role": RoleId.MEMBER})
        response = support_client.post(reverse("admin:members_membership_delete", args=[membership.pk]),
                                       {"post": "yes"})
        staff = response.wsgi_request.user
        events = [e for e in AuditEvent.objects.filter(account=account, action__startswith="member.").order_by("pk")
                  if e.data.get("user") == user.email]
        assert [(e.action, e.actor, e.actor_email, e.data.get("staff")) for e in events] == [
            ("member.added", staff, staff.email, True), ("member.role_changed", staff, staff.email, True),
            ("member.removed", staff, staff.email, True)]
        assert not Membership.objects.filter(pk=membership.pk).exists()

        support_client.force_login(owner.user)
        page = support_client.get(reverse("accounts:audit-log", kwargs={"account_id": account.public_id}))
        html = page.content.decode()
        assert page.status_code == 200 and staff.email in html and html.count("platform staff") == 3
        assert html.count("<td>system</td>") == 1  # the Owner's row only, made by the factory as the platform
        csv = support_client.get(reverse("accounts:audit-log", kwargs={"account_id": account.public_id}),
                                 {"format": "csv"}).content.decode()
        assert csv.count(f"{staff.email},platform staff,member.") == 3
