"""Members, invitations and billing transfers through the API: the same services as the pages (their rules,
their refusals), audited with the key's label, idempotent POSTs, 404 outside the key's reach and 403 for a
key whose creator lacks the permission."""

import pytest
from django.core import mail

from accounts.models import AuditEvent
from billing.models import BillingTransfer
from members.models import Invitation, Membership
from members.roles import RoleId
from members.services import membership_change_role
from tests.factories import AccountFactory, MembershipFactory, sent_earlier

from .conftest import acc

pytestmark = pytest.mark.django_db


@pytest.fixture
def key_of(root, owner, make_member, api_for):
    """key_of(role): a key whose creator now has ``role`` in root (Members and Viewers cannot create keys: the
    key was made while its creator was an Admin, then they were demoted, as happens)."""

    def make(role):
        user = make_member(root, RoleId.ADMIN)
        api = api_for(root, user)
        membership_change_role(membership=membership(user, root), role=role, by=owner)
        return api

    return make




def membership(user, account) -> Membership:
    return Membership.objects.get(user=user, account=account)


def call(api, method, url):
    return api(method, url, {"role": "viewer"} if method != "GET" else None)


def via_key(action: str, account) -> list[AuditEvent]:
    rows = list(AuditEvent.objects.filter(account=account, action=action))
    assert rows, f"no {action} audit row"
    assert all(r.data.get("via", "").startswith("API key “Test key”") and "(via API key" in r.summary for r in rows)
    return rows


class TestMembers:
    def test_read_change_role_and_remove_audited_with_the_keys_label(self, api, root, make_member):
        person = make_member(root, RoleId.MEMBER)
        url = acc(root, f"/members/{membership(person, root).public_id}")
        got = api.get(url)
        assert got.status_code == 200 and got.json()["email"] == person.email and got.json()["role"] == "member"
        response = api.patch(url, {"role": "admin"}, if_match=got["ETag"])
        assert response.status_code == 200, response.content
        assert response.json()["role"] == "admin" and membership(person, root).role == RoleId.ADMIN
        via_key("member.role_changed", root)
        assert api.patch(url, {"role": "viewer"}, if_match=got["ETag"]).status_code == 412  # it changed since
        response = api("DELETE", url)
        assert response.status_code == 204
        assert not Membership.objects.filter(user=person, account=root).exists()
        via_key("member.removed", root)
        assert api.get(url).status_code == 404

    def test_removal_can_include_the_persons_memberships_below(self, api, root, make_member):
        child = AccountFactory(parent=root)
        grandchild = AccountFactory(parent=child)
        person = make_member(root, RoleId.MEMBER)
        MembershipFactory(user=person, account=grandchild, role=RoleId.ADMIN)
        stays = make_member(root, RoleId.MEMBER)
        MembershipFactory(user=stays, account=child, role=RoleId.MEMBER)
        api("DELETE", acc(root, f"/members/{membership(stays, root).public_id}"))
        assert Membership.objects.filter(user=stays, account=child).exists()  # not asked: kept
        response = api("DELETE", acc(root, f"/members/{membership(person, root).public_id}?include_subaccounts=true"))
        assert response.status_code == 204
        assert not Membership.objects.filter(user=person).exists()

    def test_the_services_rules_hold(self, api, root, owner, make_member):
        own = acc(root, f"/members/{membership(owner, root).public_id}")
        response = api.patch(own, {"role": "admin"})
        assert response.status_code == 400 and "last Owner" in response.json()["error"]["message"]
        assert api("DELETE", own).status_code == 400
        assert membership(owner, root).role == RoleId.OWNER
        response = api.patch(acc(root, f"/members/{membership(make_member(root), root).public_id}"),
                             {"role": "agency_admin"})
        assert response.status_code == 400  # agency users come through agency access, not a role change
        response = api.patch(own, {"role": "emperor"})
        assert response.status_code == 400 and response.json()["error"]["fields"]["role"]

    def test_a_key_whose_creator_lacks_the_permission_is_refused(self, root, owner, make_member, api_for, key_of):
        person = make_member(root, RoleId.MEMBER)
        url = acc(root, f"/members/{membership(person, root).public_id}")
        member_key = key_of(RoleId.MEMBER)
        assert member_key.get(url).status_code == 200  # members read the team
        assert member_key.patch(url, {"role": "viewer"}).status_code == 403
        assert member_key("DELETE", url).status_code == 403
        admin_key = api_for(root, make_member(root, RoleId.ADMIN))
        response = admin_key.patch(url, {"role": "owner"})  # an Admin never gives Owner (R1)
        assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"
        assert admin_key("DELETE", acc(root, f"/members/{membership(owner, root).public_id}")).status_code == 403
        scoped = api_for(root, owner, scopes={"members": "read"})
        assert scoped.patch(url, {"role": "viewer"}).status_code == 403
        viewer_key = key_of(RoleId.VIEWER)
        assert viewer_key.get(url).status_code == 200 and viewer_key("DELETE", url).status_code == 403
        assert api_for(root, owner, scopes={"agents": "read"}).get(url).status_code == 403  # no members scope
        assert membership(person, root).role == RoleId.MEMBER

    def test_isolation(self, root, owner, api_for, make_member):
        other = AccountFactory()
        foreign = membership(make_member(other, RoleId.MEMBER), other)
        child = AccountFactory(parent=root)
        child_owner = make_member(child, RoleId.OWNER)
        below = membership(make_member(child, RoleId.MEMBER), child)
        parent_key, child_key = api_for(root, owner), api_for(child, child_owner)
        for method in ("GET", "PATCH", "DELETE"):
            assert call(parent_key, method, acc(root, f"/members/{foreign.public_id}")).status_code == 404
            # a membership of the child is not one of the root's (it has its own URL)
            assert call(parent_key, method, acc(root, f"/members/{below.public_id}")).status_code == 404
            # a subaccount's key never reaches its parent's team
            assert call(child_key, method, acc(root, f"/members/{membership(owner, root).public_id}")).status_code \
                == 404
        # a parent key reaches a subaccount's members
        assert parent_key.patch(acc(child, f"/members/{below.public_id}"), {"role": "viewer"}).status_code == 200
        assert Membership.objects.get(pk=foreign.pk).role == RoleId.MEMBER


class TestInvitations:
    def test_invite_revoke_resend_through_the_services(self, api, root, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            response = api.post(acc(root, "/invitations"), {"email": "New@Example.test", "role": "member"},
                                idempotency_key="inv-1")
        assert response.status_code == 201, response.content
        assert response.json()["email"] == "new@example.test" and len(mail.outbox) == 1
        replay = api.post(acc(root, "/invitations"), {"email": "New@Example.test", "role": "member"},
                          idempotency_key="inv-1")
        assert replay.json() == response.json() and Invitation.objects.count() == 1 and len(mail.outbox) == 1
        # the page's rules: one pending invitation per address
        assert api.post(acc(root, "/invitations"), {"email": "new@example.test", "role": "viewer"}).status_code == 400
        url = acc(root, f"/invitations/{response.json()['id']}")
        assert api.get(url).json()["status"] == "pending"
        assert api.post(f"{url}/resend").status_code == 400  # just sent: not again within a minute
        sent_earlier(Invitation.objects.get(public_id=response.json()["id"]))
        with django_capture_on_commit_callbacks(execute=True):
            assert api.post(f"{url}/resend").status_code == 200
        assert len(mail.outbox) == 2
        via_key("invitation.resent", root)
        revoked = api.post(f"{url}/revoke", idempotency_key="rev-1")
        assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
        assert api.post(f"{url}/revoke", idempotency_key="rev-1").json() == revoked.json()  # replayed
        again = api.post(f"{url}/revoke")
        assert again.status_code == 400 and "already" in again.json()["error"]["message"]
        via_key("invitation.revoked", root)
        via_key("invitation.sent", root)

    def test_a_key_whose_creator_lacks_the_permission_is_refused(self, root, owner, make_member, api_for, key_of):
        invitation = Invitation.objects.create(account=root, email="someone@example.test", invited_by=owner)
        url = acc(root, f"/invitations/{invitation.public_id}")
        member_key = key_of(RoleId.MEMBER)
        assert member_key.get(url).status_code == 200
        for action in ("revoke", "resend"):
            assert member_key.post(f"{url}/{action}").status_code == 403
        assert member_key.post(acc(root, "/invitations"), {"email": "x@example.test", "role": "viewer"}) \
            .status_code == 403
        # an Admin's key cannot withdraw an invitation to a role above what it may give
        owner_invite = Invitation.objects.create(account=root, email="boss@example.test", invited_by=owner,
                                                 role=RoleId.OWNER)
        admin_key = api_for(root, make_member(root, RoleId.ADMIN))
        assert admin_key.post(acc(root, f"/invitations/{owner_invite.public_id}/revoke")).status_code == 403
        assert Invitation.objects.get(pk=invitation.pk).status == Invitation.Status.PENDING

    def test_isolation(self, root, owner, make_member, api_for):
        other = AccountFactory()
        theirs = Invitation.objects.create(account=other, email="t@example.test", invited_by=make_member(other))
        child = AccountFactory(parent=root)
        mine = Invitation.objects.create(account=root, email="m@example.test", invited_by=owner)
        child_key = api_for(child, make_member(child, RoleId.OWNER))
        parent_key = api_for(root, owner)
        for suffix in ("", "/revoke", "/resend"):
            method = "POST" if suffix else "GET"
            assert call(parent_key, method, acc(root, f"/invitations/{theirs.public_id}{suffix}")).status_code == 404
            assert call(child_key, method, acc(root, f"/invitations/{mine.public_id}{suffix}")).status_code == 404
            assert call(child_key, method, acc(child, f"/invitations/{mine.public_id}{suffix}")).status_code == 404
        assert Invitation.objects.get(pk=theirs.pk).status == Invitation.Status.PENDING


class TestBillingTransfers:
    @pytest.fixture
    def started(self, api, root):
        child = AccountFactory(parent=root, name="Going solo")
        url = acc(root, f"/subaccounts/{child.public_id}/billing-transfers")
        response = api.post(url, {"billing_owner_email": "payer@solo.example", "plan": "agency"})
        assert response.status_code == 201, response.content
        return child, f"{url}/{response.json()['id']}"

    def test_status_and_cancel(self, api, root, started):
        child, url = started
        assert api.get(url).json()["status"] == "pending"
        response = api.post(f"{url}/cancel", idempotency_key="c-1")
        assert response.status_code == 200 and response.json()["status"] == "cancelled"
        assert api.post(f"{url}/cancel", idempotency_key="c-1").json() == response.json()
        again = api.post(f"{url}/cancel")
        assert again.status_code == 400 and "already" in again.json()["error"]["message"]
        assert api.get(url).json()["status"] == "cancelled"
        via_key("billing.transfer_cancelled", root)
        child.refresh_from_db()
        assert child.parent_id == root.pk

    def test_a_key_whose_creator_lacks_the_permission_is_refused(self, root, make_member, api_for, started, key_of):
        _, url = started
        agency_admin = api_for(root, make_member(root, RoleId.AGENCY_ADMIN))  # no billing management
        assert agency_admin.post(f"{url}/cancel").status_code == 403
        member = key_of(RoleId.MEMBER)
        assert member.get(url).status_code == 403
        assert BillingTransfer.objects.get().status == BillingTransfer.Status.PENDING

    def test_isolation(self, root, owner, api, api_for, make_member, started):
        child, url = started
        transfer_id = url.rsplit("/", 1)[1]
        sibling = AccountFactory(parent=root)
        other = AccountFactory()
        other_owner = make_member(other, RoleId.OWNER)
        other_child = AccountFactory(parent=other)
        child_key = api_for(child, make_member(child, RoleId.OWNER))
        for suffix, method in (("", "GET"), ("/cancel", "POST")):
            # under another subaccount of the same parent, or another tenant's: 404
            assert call(api, method, acc(root, f"/subaccounts/{sibling.public_id}/billing-transfers/{transfer_id}"
                                               f"{suffix}")).status_code == 404
            assert call(api_for(other, other_owner), method, acc(
                other, f"/subaccounts/{other_child.public_id}/billing-transfers/{transfer_id}{suffix}")).status_code \
                == 404
            # the subaccount's own key never reaches its parent's URL
            assert call(child_key, method, f"{url}{suffix}").status_code == 404
        assert BillingTransfer.objects.get().status == BillingTransfer.Status.PENDING
