"""Issue 10: each failure found when the access model was attacked, as a test that failed before its fix.

Numbered as in the issue. Services are called directly (the rule, not the path) and through the
pages where a person meets them.
"""

import tomllib
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from accounts.access import resolve_access
from accounts.models import Account, AuditEvent
from accounts.services import subaccount_create, subaccount_set_access, subaccount_set_defaults
from agency import services as agency
from agency.models import AgencySettings
from members import invitations as inv
from members.grants import GrantRefused
from members.models import Invitation, Membership, User
from members.roles import RoleId
from members.services import membership_change_role, membership_remove
from tests.factories import AccountFactory, UserFactory, account_chain, approved_grant

pytestmark = pytest.mark.django_db


def fresh(user):
    return User.objects.get(pk=user.pk)


def access_of(user, account):
    return resolve_access(fresh(user), account)


def url(name, account, ns="accounts", **kwargs):
    return reverse(f"{ns}:{name}", kwargs={"account_id": account.public_id, **kwargs})


def invite_and_accept(account, email, role, by):
    invitation = inv.invitation_create(account=account, email=email, role=role, by=fresh(by))
    return inv.invitation_accept_signup(invitation=invitation, name="New person", password="a-Long-pass-2026")


@pytest.fixture
def agency_world(db):
    """Northwind (an agency with an Admin) has active agency access to a client owned by Olivia."""
    w = approved_grant("Northwind Agency", "Blue Harbor")
    return dict(agency=w["agency"], adam=w["agency_admin"], client=w["client"], olivia=w["owner"],
                grant=w["grant"])


class TestFailure1AgencyUserPlantsAnAdmin:
    def test_an_agency_user_cannot_invite_an_admin_or_owner(self, agency_world):
        w = agency_world
        for role in (RoleId.ADMIN, RoleId.OWNER, RoleId.AGENCY_ADMIN):
            with pytest.raises(PermissionDenied):
                inv.invitation_create(account=w["client"], email=f"{role}@outside.example", role=role,
                                      by=fresh(w["adam"]))
        assert not Invitation.objects.filter(account=w["client"]).exists()

    def test_the_invite_page_offers_an_agency_user_member_and_viewer_only(self, agency_world, client):
        client.force_login(agency_world["adam"])
        html = client.get(url("list", agency_world["client"], ns="members")).content.decode()
        invite_roles = html[html.index('id="id_role"'):].split("</select>")[0]
        assert 'value="member"' in invite_roles and 'value="viewer"' in invite_roles
        assert 'value="admin"' not in invite_roles and 'value="owner"' not in invite_roles
        # and no row offers a role change on the client's Owner
        assert 'aria-label="Role of ' + agency_world["olivia"].email not in html
        response = client.post(url("invite", agency_world["client"], ns="members"),
                               {"email": "planted@outside.example", "role": "admin"})
        assert response.status_code == 200 and not Invitation.objects.filter(email="planted@outside.example")

    def test_an_agency_user_cannot_promote_a_member(self, agency_world, make_member):
        w = agency_world
        member = make_member(w["client"], RoleId.MEMBER)
        m = Membership.objects.get(user=member, account=w["client"])
        with pytest.raises(GrantRefused, match="Member or Viewer"):
            membership_change_role(membership=m, role=RoleId.ADMIN, by=fresh(w["adam"]))
        m.refresh_from_db()
        assert m.role == RoleId.MEMBER

    def test_an_agency_user_cannot_touch_the_clients_admins(self, agency_world, make_member):
        w = agency_world
        admin = make_member(w["client"], RoleId.ADMIN)
        m = Membership.objects.get(user=admin, account=w["client"])
        with pytest.raises(GrantRefused):
            membership_change_role(membership=m, role=RoleId.VIEWER, by=fresh(w["adam"]))
        with pytest.raises(GrantRefused):
            membership_remove(membership=m, by=fresh(w["adam"]))
        assert Membership.objects.filter(pk=m.pk, role=RoleId.ADMIN).exists()

    def test_what_an_agency_user_adds_is_recorded_and_shown(self, agency_world, client):
        w = agency_world
        added = invite_and_accept(w["client"], "helper@outside.example", RoleId.MEMBER, w["adam"])
        assert added.via_agency and added.via_grant_id == w["grant"].pk and added.created_by_id == w["adam"].pk
        client.force_login(w["olivia"])
        html = client.get(url("list", w["client"], ns="members")).content.decode()
        assert "added by Northwind Agency" in html

    def test_an_admin_an_agency_planted_never_governs_agency_access(self, agency_world):
        """The data an older version let an agency create: a non-agency Admin added by an agency user."""
        w = agency_world
        planted = UserFactory()
        Membership.objects.create(user=planted, account=w["client"], role=RoleId.ADMIN, created_by=w["adam"],
                                  via_agency=True, via_grant=w["grant"])
        from members.rows import account_sync_permissions

        account_sync_permissions(w["client"])
        access = access_of(planted, w["client"])
        assert access.has("manage_members") and not access.may_govern_agency
        with pytest.raises(PermissionDenied):
            agency.access_update(grant=w["grant"], by=fresh(planted), expires_at=None, matrix={})
        with pytest.raises(PermissionDenied):
            agency.settings_update(client=w["client"], matrix={"billing": "full"}, by=fresh(planted))
        agency.access_revoke(grant=w["grant"], by=fresh(w["olivia"]))
        again = agency.access_request(agency=w["agency"], client=w["client"], by=fresh(w["adam"]))
        with pytest.raises(PermissionDenied):
            agency.access_decide(grant=again, approve=True, by=fresh(planted))
        # delegation passes on: what the planted Admin adds is delegated too, so it cannot launder access
        with pytest.raises(PermissionDenied, match="Member or Viewer"):
            inv.invitation_create(account=w["client"], email="laundered@outside.example", role=RoleId.ADMIN,
                                  by=fresh(planted))

    def test_revoking_offers_to_remove_what_the_agency_added_selected_by_default(self, agency_world, client):
        w = agency_world
        added = invite_and_accept(w["client"], "helper@outside.example", RoleId.MEMBER, w["adam"])
        client.force_login(w["olivia"])
        revoke_url = url("revoke", w["client"], ns="agency", grant_id=w["grant"].public_id)
        html = client.get(revoke_url).content.decode()
        assert "helper@outside.example" in html and f'value="{added.public_id}" checked' in html
        client.post(revoke_url, {"remove": [str(added.public_id)]})
        assert not Membership.objects.filter(pk=added.pk).exists()
        assert access_of(added.user, w["client"]) is None
        assert access_of(w["adam"], w["client"]) is None

    def test_revoking_offers_the_people_the_agencys_people_added_in_the_clients_subaccounts(self, agency_world,
                                                                                        client):
        """A hostile review: an agency user's invitee, promoted to Admin by the Owner, stays delegated and invites
        someone into a subaccount; revoking listed only members of the client itself, so that person stayed."""
        w = agency_world
        helper = invite_and_accept(w["client"], "helper@outside.example", RoleId.MEMBER, w["adam"])
        membership_change_role(membership=helper, role=RoleId.ADMIN, by=fresh(w["olivia"]))
        branch = AccountFactory(parent=w["client"], name="Blue Harbor West")
        below = invite_and_accept(branch, "second@outside.example", RoleId.MEMBER, helper.user)
        assert below.via_agency and below.via_grant_id == w["grant"].pk
        own = invite_and_accept(branch, "own@outside.example", RoleId.MEMBER, w["olivia"])
        assert {m.pk for m in agency.added_through(w["grant"])} == {helper.pk, below.pk}
        client.force_login(w["olivia"])
        revoke_url = url("revoke", w["client"], ns="agency", grant_id=w["grant"].public_id)
        html = client.get(revoke_url).content.decode()
        assert f'value="{below.public_id}" checked' in html and "in Blue Harbor West" in html
        client.post(revoke_url, {"remove": [str(helper.public_id), str(below.public_id)]})
        assert not Membership.objects.filter(pk__in=[helper.pk, below.pk]).exists()
        assert access_of(below.user, branch) is None
        assert Membership.objects.filter(pk=own.pk).exists()  # the Owner's own invitee stays

    def test_revoking_keeps_an_added_member_the_owner_unticks(self, agency_world):
        w = agency_world
        added = invite_and_accept(w["client"], "keeper@outside.example", RoleId.VIEWER, w["adam"])
        agency.access_revoke(grant=w["grant"], by=fresh(w["olivia"]), remove=[])
        assert Membership.objects.filter(pk=added.pk).exists()

    def test_revoking_one_agency_removes_nothing_another_agency_added(self, agency_world, make_member):
        """Two agencies serve one client: what each added is its own (a planted bug dropping the grant's agency
        from added_through survived the suite, which only ever had one agency)."""
        w = agency_world
        other = AccountFactory(name="Southwind Agency")
        sam = make_member(other, RoleId.ADMIN)
        second = agency.access_request(agency=other, client=w["client"], by=sam)
        agency.access_decide(grant=second, approve=True, by=fresh(w["olivia"]))
        second.refresh_from_db()
        by_north = invite_and_accept(w["client"], "north@outside.example", RoleId.MEMBER, w["adam"])
        by_south = invite_and_accept(w["client"], "south@outside.example", RoleId.MEMBER, sam)
        assert [m.pk for m in agency.added_through(w["grant"])] == [by_north.pk]
        assert [m.pk for m in agency.added_through(second)] == [by_south.pk]
        with pytest.raises(ValidationError, match="Only members that the agency's people added"):
            agency.access_revoke(grant=second, by=fresh(sam), remove=[by_north])
        agency.access_revoke(grant=second, by=fresh(sam), remove=[by_south])
        assert Membership.objects.filter(pk=by_north.pk).exists()
        assert not Membership.objects.filter(pk=by_south.pk).exists()

    def test_revoke_refuses_members_the_agency_did_not_add(self, agency_world, make_member):
        w = agency_world
        own = Membership.objects.get(user=make_member(w["client"], RoleId.MEMBER), account=w["client"])
        with pytest.raises(ValidationError):
            agency.access_revoke(grant=w["grant"], by=fresh(w["olivia"]), remove=[own])
        assert Membership.objects.filter(pk=own.pk).exists()
        w["grant"].refresh_from_db()
        assert w["grant"].status == "active"

    def test_the_grant_edit_form_is_capped_at_what_the_editor_holds(self, agency_world, make_member, client):
        """A governing Admin under agency settings with billing=none cannot give the agency billing."""
        w = agency_world
        admin = make_member(w["client"], RoleId.ADMIN)
        agency.settings_update(client=w["client"], matrix={"billing": "none"}, by=fresh(w["olivia"]))
        with pytest.raises(GrantRefused, match="Billing"):
            agency.access_update(grant=w["grant"], by=fresh(admin), expires_at=None, matrix={"billing": "read"})
        client.force_login(admin)
        html = client.get(url("grant-edit", w["client"], ns="agency", grant_id=w["grant"].public_id)).content
        assert b'name="cap-billing"' in html and b'value="read"' in html
        data = {f"cap-{c}": "none" for c in ("agents", "conversations", "contacts", "settings", "members",
                                            "subaccounts", "trust_center", "developer_tools", "usage")}
        data["cap-billing"] = "read"
        response = client.post(url("grant-edit", w["client"], ns="agency", grant_id=w["grant"].public_id), data)
        assert "cannot grant Read" in response.content.decode()
        # the Owner holds everything in their own account, whatever the agency settings say
        agency.access_update(grant=w["grant"], by=fresh(w["olivia"]), expires_at=None, matrix={"billing": "read"})


class TestFailure2LeaversKeepCustomers:
    def test_creating_a_subaccount_adds_no_membership_and_leaving_ends_access(self, make_member):
        agency_root = AccountFactory(name="Agency")
        owner = make_member(agency_root, RoleId.OWNER)
        leaver = make_member(agency_root, RoleId.ADMIN)
        customers = [subaccount_create(parent=agency_root, name=f"Customer {i}", by=fresh(leaver)) for i in range(3)]
        assert not Membership.objects.filter(user=leaver, account__in=customers).exists()
        membership_remove(membership=Membership.objects.get(user=leaver, account=agency_root), by=fresh(owner))
        assert all(access_of(leaver, c) is None for c in customers)

    def test_removal_lists_and_removes_direct_memberships_below(self, make_member, client):
        root, child, grandchild = account_chain(3)
        owner = make_member(root, RoleId.OWNER)
        leaver = make_member(root, RoleId.ADMIN)
        make_member(child, RoleId.OWNER, user=leaver)
        make_member(grandchild, RoleId.ADMIN, user=leaver)
        m = Membership.objects.get(user=leaver, account=root)
        client.force_login(owner)
        remove_url = reverse("members:remove", kwargs={"account_id": root.public_id, "membership_id": m.public_id})
        html = client.get(remove_url).content.decode()
        below = list(Membership.objects.filter(user=leaver).exclude(pk=m.pk))
        assert all(f'value="{b.public_id}" checked' in html for b in below)
        client.post(remove_url, {"also": [str(b.public_id) for b in below]})
        assert not Membership.objects.filter(user=leaver).exists()
        assert access_of(leaver, grandchild) is None

    def test_removal_refuses_memberships_that_are_not_below(self, make_member):
        root = AccountFactory()
        other = AccountFactory()
        owner = make_member(root, RoleId.OWNER)
        person = make_member(root, RoleId.MEMBER)
        elsewhere = Membership.objects.get(account=other, user=make_member(other, RoleId.MEMBER, user=person))
        with pytest.raises(ValidationError):
            membership_remove(membership=Membership.objects.get(user=person, account=root), by=fresh(owner),
                              also=[elsewhere])
        assert Membership.objects.filter(user=person).count() == 2


class TestFailure3CapsCompose:
    CAPS = {"members": "read", "billing": "none", "subaccounts": "full"}

    def test_a_capped_account_cannot_create_an_uncapped_child(self, make_member):
        root = AccountFactory()
        capped = AccountFactory(parent=root, access_categories=self.CAPS)
        capped_owner = make_member(capped, RoleId.OWNER)
        child = subaccount_create(parent=capped, name="Escape", by=fresh(capped_owner))
        assert child.access_categories["members"] == "read" and child.access_categories["billing"] == "none"
        child_owner = make_member(child, RoleId.OWNER)
        access = access_of(child_owner, child)
        assert not access.has("manage_members") and not access.has("view_billing")

    def test_caps_above_apply_even_where_a_child_has_none_of_its_own(self, make_member):
        """Composition at check time: legacy rows written before the cap above cannot escape it."""
        root = AccountFactory()
        capped = AccountFactory(parent=root, access_categories=self.CAPS)
        child = AccountFactory(parent=capped)  # no categories of its own
        grandchild_owner = make_member(AccountFactory(parent=child), RoleId.OWNER)
        grandchild = Account.objects.get(memberships__user=grandchild_owner)
        access = access_of(grandchild_owner, grandchild)
        assert not access.has("manage_members") and not access.has("manage_billing")
        assert access.has("manage_agents")

    def test_a_parent_cannot_give_a_child_more_than_it_has(self, make_member):
        root = AccountFactory()
        root_owner = make_member(root, RoleId.OWNER)
        capped = AccountFactory(parent=root, access_categories=self.CAPS)
        child = AccountFactory(parent=capped)
        with pytest.raises(GrantRefused, match="Billing"):
            subaccount_set_access(account=child, matrix={"billing": "full"}, by=fresh(root_owner))
        with pytest.raises(GrantRefused, match="Members"):
            subaccount_set_defaults(account=capped, matrix={"members": "full"}, limits={}, by=fresh(root_owner))
        child.refresh_from_db()
        assert child.access_categories == {}

    def test_tightening_a_parent_recasts_the_rows_of_the_whole_subtree(self, make_member):
        root = AccountFactory()
        root_owner = make_member(root, RoleId.OWNER)
        mid = AccountFactory(parent=root)
        leaf = AccountFactory(parent=AccountFactory(parent=mid))
        leaf_owner = make_member(leaf, RoleId.OWNER)
        assert access_of(leaf_owner, leaf).has("manage_billing")
        subaccount_set_access(account=mid, matrix={"billing": "none"}, by=fresh(root_owner))
        assert not access_of(leaf_owner, leaf).has("view_billing")
        from accounts.models import AccountUserObjectPermission

        assert not AccountUserObjectPermission.objects.filter(
            user=leaf_owner, content_object=leaf, permission__codename__endswith="_billing").exists()

    def test_the_permissions_tab_says_where_each_level_comes_from(self, make_member, client):
        root = AccountFactory(name="Root")
        owner = make_member(root, RoleId.OWNER)
        capped = AccountFactory(parent=root, name="Capped", access_categories={"billing": "none"})
        child = AccountFactory(parent=capped, name="Child", access_categories={"agents": "read"})
        client.force_login(owner)
        html = client.get(url("subaccount-permissions", root, sub_id=child.public_id)).content.decode()
        assert "(from Capped)" in html and "(set here)" in html


class TestFailure4NothingUpward:
    def test_a_viewer_deep_down_sees_no_ancestor_name_or_pool(self, make_member, client):
        from workspace.models import Agent, Contact
        from workspace.services import conversation_record

        chain = account_chain(4, prefix="Secret ancestor")
        Account.objects.filter(pk=chain[1].pk).update(limit_minutes=10)
        leaf = chain[-1]
        agent = Agent.objects.create(account=leaf, name="Receptionist")
        contact = Contact.objects.create(account=leaf, name="Caller", email="caller@example.test")
        import datetime

        from django.utils import timezone

        start = timezone.now() - datetime.timedelta(hours=1)
        conversation_record(account=leaf, agent=agent, contact=contact, by=None, started_at=start,
                            duration_seconds=9 * 60)
        blocked = conversation_record(account=leaf, agent=agent, contact=contact, by=None,
                                      started_at=start, duration_seconds=5 * 60)
        assert blocked.status == "blocked"
        viewer = make_member(leaf, RoleId.VIEWER)
        client.force_login(viewer)
        detail = reverse("workspace:conversation-detail",
                         kwargs={"account_id": leaf.public_id, "pk": blocked.public_id})
        html = client.get(detail).content.decode()
        assert "A minutes pool above this account is used up." in html
        for ancestor in chain[:-1]:
            assert ancestor.name not in html
        assert "of 10 minutes" not in html

    def test_no_page_of_a_deep_subaccount_names_an_account_above(self, make_member, client):
        """Every account-level page (walked from the URL resolver) as the deep subaccount's Owner."""
        from django.urls import get_resolver

        chain = account_chain(4, prefix="Hidden level")
        leaf = chain[-1]
        client.force_login(make_member(leaf, RoleId.OWNER))
        names = []

        def walk(patterns, prefix=""):
            for p in patterns:
                if hasattr(p, "url_patterns"):
                    walk(p.url_patterns, prefix + (p.namespace + ":" if p.namespace else ""))
                elif p.name and list(p.pattern.converters) == ["account_id"]:
                    names.append(prefix + p.name)

        walk(get_resolver().url_patterns)
        assert len(names) > 10
        for name in names:
            response = client.get(reverse(name, kwargs={"account_id": leaf.public_id}))
            if response.status_code != 200 or not response.get("Content-Type", "").startswith("text/"):
                continue
            body = response.content.decode()
            for ancestor in chain[:-1]:
                assert ancestor.name not in body, f"{name} names {ancestor.name}"


class TestFailure5OwnerReadsTheAuditTrail:
    def test_the_owner_reads_it_whatever_the_agency_settings_say(self, agency_world, client):
        w = agency_world
        agency.settings_update(client=w["client"], matrix={"settings": "read"}, by=fresh(w["olivia"]))
        assert not access_of(w["olivia"], w["client"]).has("view_audit_log")
        client.force_login(w["olivia"])
        response = client.get(url("audit-log", w["client"]))
        assert response.status_code == 200
        dashboard = client.get(url("dashboard", w["client"])).content.decode()
        assert url("audit-log", w["client"]) in dashboard

    def test_a_member_without_the_permission_is_still_refused(self, agency_world, make_member, client):
        client.force_login(make_member(agency_world["client"], RoleId.MEMBER))
        assert client.get(url("audit-log", agency_world["client"])).status_code == 403


class TestFailure6AcceptanceIsOneTransaction:
    def test_a_failed_acceptance_leaves_no_user_behind(self, make_member):
        account = AccountFactory(parent=AccountFactory(), limit_members=2)
        owner = make_member(account, RoleId.OWNER)
        invitation = inv.invitation_create(account=account, email="late@example.test", role=RoleId.MEMBER,
                                           by=fresh(owner))
        make_member(account, RoleId.MEMBER)  # the limit is reached after the invitation was sent
        with pytest.raises(ValidationError, match="limit"):
            inv.invitation_accept_signup(invitation=invitation, name="Late", password="a-Long-pass-2026")
        assert not User.objects.filter(email="late@example.test").exists()

    def test_a_second_acceptance_of_one_link_gets_a_clear_page(self, make_member, client):
        account = AccountFactory()
        owner = make_member(account, RoleId.OWNER)
        invitation = inv.invitation_create(account=account, email="twice@example.test", role=RoleId.MEMBER,
                                           by=fresh(owner))
        link = reverse("invitation-accept", kwargs={"token": inv.invitation_token(invitation)})
        data = {"name": "Twice", "password": "a-Long-pass-2026", "password2": "a-Long-pass-2026"}
        first = client.post(link, data)
        assert first.status_code == 302
        client.logout()
        second = client.post(link, data)
        assert second.status_code in (409, 410) and "already" in second.content.decode()
        assert User.objects.filter(email="twice@example.test").count() == 1


def test_failure7_a_garbage_under_parameter_is_a_404_not_a_server_error(make_member, client):
    root = AccountFactory()
    client.force_login(make_member(root, RoleId.OWNER))
    assert client.get(url("subaccount-list", root) + "?under=not-a-uuid").status_code == 404


class TestFailure8NamesAndEmails:
    def test_a_name_of_only_zero_width_characters_is_refused(self, make_member):
        parent = AccountFactory()
        with pytest.raises(ValidationError, match="at least 2 characters"):
            subaccount_create(parent=parent, name="\u200b\u200b\u200b", by=None)
        from accounts.services import account_rename

        owner = make_member(parent, RoleId.OWNER)
        with pytest.raises(ValidationError, match="at least 2 characters"):
            account_rename(account=parent, name="\u200b\u2060\ufeff", by=fresh(owner))

    def test_an_invisible_character_does_not_make_a_name_new(self):
        parent = AccountFactory()
        subaccount_create(parent=parent, name="Acme Corp - Sales", by=None)
        for lookalike in ("Acme Corp\u200b - Sales", "ACME CORP - SALES", "Ａｃｍｅ Corp - Sales"):
            with pytest.raises(ValidationError, match="already has a subaccount"):
                subaccount_create(parent=parent, name=lookalike, by=None)

    def test_bidi_overrides_are_removed(self):
        sub = subaccount_create(parent=AccountFactory(), name="Invoice \u202egnp.exe", by=None)
        assert sub.name == "Invoice gnp.exe"

    def test_invitation_emails_are_bounded_and_visible(self, make_member):
        account = AccountFactory()
        owner = make_member(account, RoleId.OWNER)
        for email in ("a" * 300 + "@example.test", "someone@exa\u200bmple.test"):
            with pytest.raises(ValidationError):
                inv.invitation_create(account=account, email=email, role=RoleId.MEMBER, by=fresh(owner))
        assert not Invitation.objects.exists()


class TestFailure9InvitationsAreRecheckedWhenAccepted:
    def test_a_demoted_senders_invitation_stops_working(self, make_member):
        account = AccountFactory()
        owner = make_member(account, RoleId.OWNER)
        admin = make_member(account, RoleId.ADMIN)
        invitation = inv.invitation_create(account=account, email="new-admin@example.test", role=RoleId.ADMIN,
                                           by=fresh(admin))
        membership_change_role(membership=Membership.objects.get(user=admin, account=account), role=RoleId.MEMBER,
                               by=fresh(owner))
        with pytest.raises(inv.InvitationInvalid, match="can no longer"):
            inv.invitation_from_token(inv.invitation_token(invitation))
        with pytest.raises(ValidationError, match="can no longer"):
            inv.invitation_accept_signup(invitation=invitation, name="N", password="a-Long-pass-2026")
        assert not User.objects.filter(email="new-admin@example.test").exists()

    def test_a_removed_senders_invitation_stops_working(self, make_member):
        account = AccountFactory()
        owner = make_member(account, RoleId.OWNER)
        admin = make_member(account, RoleId.ADMIN)
        invitation = inv.invitation_create(account=account, email="x@example.test", role=RoleId.MEMBER,
                                           by=fresh(admin))
        membership_remove(membership=Membership.objects.get(user=admin, account=account), by=fresh(owner))
        with pytest.raises(inv.InvitationInvalid):
            inv.invitation_from_token(inv.invitation_token(invitation))

    def test_an_agency_users_invitation_dies_with_the_grant(self, agency_world):
        w = agency_world
        invitation = inv.invitation_create(account=w["client"], email="late@outside.example", role=RoleId.MEMBER,
                                           by=fresh(w["adam"]))
        agency.access_revoke(grant=w["grant"], by=fresh(w["olivia"]))
        with pytest.raises(inv.InvitationInvalid):
            inv.invitation_from_token(inv.invitation_token(invitation))

    def test_a_still_entitled_senders_invitation_works(self, make_member):
        account = AccountFactory()
        admin = make_member(account, RoleId.ADMIN)
        invitation = inv.invitation_create(account=account, email="ok@example.test", role=RoleId.MEMBER,
                                           by=fresh(admin))
        membership = inv.invitation_accept_signup(invitation=invitation, name="Ok", password="a-Long-pass-2026")
        assert membership.role == RoleId.MEMBER


class TestFailure11ClientsPage:
    def test_every_client_and_subaccount_is_reachable_by_page_links_and_search(self, make_member, client):
        agency_root = AccountFactory(name="Agency")
        owner = make_member(agency_root, RoleId.OWNER)
        for i in range(30):
            AccountFactory(parent=agency_root, name=f"Customer {i:02d}")
        client.force_login(owner)
        page1 = client.get(url("clients", agency_root, ns="agency")).content.decode()
        assert "Page 1 of 2 · 30 in all" in page1 and "spage=2" in page1
        page2 = client.get(url("clients", agency_root, ns="agency") + "?spage=2").content.decode()
        assert "Customer 29" in page2
        found = client.get(url("clients", agency_root, ns="agency") + "?q=customer+07").content.decode()
        assert "Customer 07" in found and "Customer 08" not in found


def test_failure12_every_local_app_is_packaged():
    pyproject = tomllib.loads((Path(settings.BASE_DIR) / "pyproject.toml").read_text())
    packaged = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    local = {app.split(".")[0] for app in settings.INSTALLED_APPS
             if (Path(settings.BASE_DIR) / app.split(".")[0]).is_dir()}
    assert local <= packaged, f"not packaged: {sorted(local - packaged)}"


def test_agency_settings_are_kept_when_an_admin_edits_them_within_their_own_level(agency_world, make_member):
    """The Owner's exemption is the Owner's alone: a governing Admin sets at most what they hold."""
    w = agency_world
    admin = make_member(w["client"], RoleId.ADMIN)
    agency.settings_update(client=w["client"], matrix={"billing": "read"}, by=fresh(w["olivia"]))
    with pytest.raises(GrantRefused):
        agency.settings_update(client=w["client"], matrix={"billing": "full"}, by=fresh(admin))
    assert AgencySettings.objects.get(account=w["client"]).matrix["billing"] == "read"
    assert AuditEvent.objects.filter(account=w["client"], action="agency.settings_changed").count() == 1
