import datetime
import uuid
from unittest import mock

import pytest
import time_machine
from django.utils import timezone

from accounts.models import Account, AuditEvent
from accounts.services import subtree_move
from developers.models import ApiKey
from developers.services import apikey_set_revoked
from members.models import Invitation, Membership
from members.roles import RoleId
from members.services import membership_change_role, membership_remove
from tests.factories import AccountFactory
from workspace.models import Agent, Contact, Conversation

from .conftest import Api, acc, v1

pytestmark = pytest.mark.django_db




class TestAuthentication:
    def test_current_account(self, api, root):
        response = api.get(v1("accounts/current"))
        assert response.status_code == 200
        assert response.json()["id"] == str(root.public_id) and response.json()["parent_account_id"] is None
        api.api_key.refresh_from_db()
        assert api.api_key.last_used_at is not None and api.api_key.last_used_ip == "127.0.0.1"

    def test_no_key_is_401_with_the_error_body(self, root):
        response = Api(None).get(v1("accounts/current"))
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "not_authenticated"
        assert "X-API-Key" in response["WWW-Authenticate"]

    def test_malformed_unknown_wrong_revoked_expired_and_orphaned_keys_get_the_same_answer(
            self, api, api_for, root, owner, make_member):
        prefix, secret = api.key[3:].split(".")
        admin = make_member(root, RoleId.ADMIN)
        orphan = api_for(root, admin)
        membership_remove(membership=Membership.objects.get(user=admin, account=root), by=owner)
        expiring = api_for(root, owner, expires_at=timezone.now() + datetime.timedelta(seconds=1))
        ApiKey.objects.filter(pk=expiring.api_key.pk).update(expires_at=timezone.now() - datetime.timedelta(1))
        revoked = api_for(root, owner)
        apikey_set_revoked(key=revoked.api_key, revoked=True, by=owner)
        wrong = "A" if secret[0] != "A" else "B"
        answers = []
        for key in ["nonsense", f"sk-{prefix}", f"sk-zzzzzzzz.{secret}", f"sk-{prefix}.{wrong}{secret[1:]}",
                    revoked.key, expiring.key, orphan.key, api.key + "x", " "]:
            response = Api(key).get(v1("accounts/current"))
            answers.append((response.status_code, response.content))
        assert {a for a in answers} == {answers[0]}, answers
        assert answers[0][0] == 401
        assert Api(api.key).get(v1("accounts/current")).status_code == 200

    def test_unknown_paths_and_malformed_ids_get_the_error_body(self, api, root):
        for path in ("nope", "accounts/not-a-uuid", f"accounts/{root.public_id}/agents/123",
                     f"accounts/{root.public_id}/agents/", "accounts/current/"):
            for method in ("GET", "POST", "PATCH", "DELETE"):
                for client in (api, Api(None)):
                    response = client(method, v1(path), {} if method in ("POST", "PATCH") else None)
                    assert response.status_code == 404, (method, path)
                    assert response.json() == {"error": {"code": "not_found", "message": "Not found.", "fields": {}}}

    def test_reactivated_key_works_again(self, api, owner):
        apikey_set_revoked(key=api.api_key, revoked=True, by=owner)
        assert api.get(v1("accounts/current")).status_code == 401
        apikey_set_revoked(key=api.api_key, revoked=False, by=owner)
        assert api.get(v1("accounts/current")).status_code == 200


class TestReach:
    def test_a_parent_key_reaches_subaccounts_and_a_subaccount_key_never_its_parent(self, root, owner, api_for,
                                                                                    make_member):
        child = AccountFactory(parent=root, name="Acme")
        sibling = AccountFactory(parent=root, name="Globex")
        grandchild = AccountFactory(parent=child, name="Acme Sales")
        other = AccountFactory(name="Other tenant")
        make_member(other, RoleId.OWNER)
        parent_key = api_for(root, owner)
        for account in (root, child, grandchild):
            assert parent_key.get(acc(account)).status_code == 200
        assert parent_key.get(acc(grandchild)).json()["parent_account_id"] == str(child.public_id)
        assert parent_key.get(acc(other)).status_code == 404
        # the owner of the root reaches everything; a key made in the child reaches only the child's subtree
        child_key = api_for(child, owner)
        assert child_key.get(acc(child)).status_code == 200
        assert child_key.get(acc(grandchild)).status_code == 200
        for account in (root, sibling, other):
            response = child_key.get(acc(account))
            assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
        # nothing upward: the child's own parent id is not named to a key that does not reach it
        assert child_key.get(v1("accounts/current")).json()["parent_account_id"] is None
        assert child_key.get(acc(child, "/agents")).status_code == 200
        assert child_key.get(acc(root, "/agents")).status_code == 404

    def test_a_creators_other_tenants_are_out_of_a_keys_reach(self, root, owner, api_for, make_member):
        elsewhere = AccountFactory(name="Owner's other company")
        make_member(elsewhere, RoleId.OWNER, user=owner)
        assert api_for(root, owner).get(acc(elsewhere)).status_code == 404

    def test_another_tenants_object_ids_under_my_account_are_404(self, api, root, make_member):
        other = AccountFactory()
        agent = Agent.objects.create(account=other, name="Theirs")
        contact = Contact.objects.create(account=other, name="Theirs", phone="+14155550100")
        assert api.get(acc(root, f"/agents/{agent.public_id}")).status_code == 404
        assert api.patch(acc(root, f"/agents/{agent.public_id}"), {"name": "Mine"}).status_code == 404
        assert api("DELETE", acc(root, f"/agents/{agent.public_id}")).status_code == 404
        mine = Agent.objects.create(account=root, name="Mine")
        response = api.post(acc(root, "/conversations"), {
            "agent_id": str(mine.public_id), "contact_id": str(contact.public_id),
            "started_at": (timezone.now() - datetime.timedelta(hours=1)).isoformat(), "duration_seconds": 60})
        assert response.status_code == 400 and "contact_id" in response.json()["error"]["fields"]
        assert Agent.objects.get(pk=agent.pk).name == "Theirs"


    @pytest.mark.parametrize("started_at", ["2099-01-01T00:00:00Z", "2020-01-01T00:00:00Z"])
    def test_a_call_dated_in_a_month_nobody_bills_is_a_400(self, api, root, started_at):
        agent = Agent.objects.create(account=root, name="Mine")
        contact = Contact.objects.create(account=root, name="Caller", phone="+14155550100")
        response = api.post(acc(root, "/conversations"), {
            "agent_id": str(agent.public_id), "contact_id": str(contact.public_id), "started_at": started_at,
            "duration_seconds": 600})
        assert response.status_code == 400 and "started_at" in response.json()["error"]["fields"]
        assert not Conversation.objects.exists()


class TestCreatorsRights:
    def test_a_key_loses_power_when_its_creator_is_demoted_and_all_power_when_removed(self, root, owner, api_for,
                                                                                      make_member):
        admin = make_member(root, RoleId.ADMIN)
        api = api_for(root, admin)
        assert api.post(acc(root, "/agents"), {"name": "Before"}).status_code == 201
        membership = Membership.objects.get(user=admin, account=root)
        membership_change_role(membership=membership, role=RoleId.VIEWER, by=owner)
        response = api.post(acc(root, "/agents"), {"name": "After"})
        assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"
        assert api.get(acc(root, "/agents")).status_code == 200
        membership_remove(membership=Membership.objects.get(pk=membership.pk), by=owner)
        assert api.get(acc(root, "/agents")).status_code == 401
        assert list(Agent.objects.values_list("name", flat=True)) == ["Before"]

    def test_a_key_stops_where_its_creator_must_have_a_second_factor_and_has_none(self, root, owner, api_for,
                                                                                 make_member):
        """A hostile review: the pages sent a creator without a second factor to set one up once the policy's
        deadline passed, but their key went on working. The policy of the URL's account (its lineage's) holds."""
        from allauth.mfa.models import Authenticator

        from security.models import SecurityPolicy
        from security.services import policy_update

        admin = make_member(root, RoleId.ADMIN)
        child = AccountFactory(parent=root)
        api = api_for(root, admin)
        assert api.get(acc(child, "/agents")).status_code == 200
        policy_update(account=root, by=None, require_mfa=SecurityPolicy.MfaScope.ADMINS,
                      mfa_deadline=timezone.now() + datetime.timedelta(days=3))
        assert api.get(acc(root, "/agents")).status_code == 200  # before the deadline: a banner on the pages only
        policy_update(account=root, by=None, require_mfa=SecurityPolicy.MfaScope.ADMINS, mfa_deadline=None)
        for account in (root, child):  # the subaccount is under the root's policy too
            response = api.post(acc(account, "/agents"), {"name": "x"})
            assert response.status_code == 403 and response.json()["error"]["code"] == "mfa_required"
            assert api.get(acc(account, "/agents")).status_code == 403
        assert not Agent.objects.exists()
        Authenticator.objects.create(user=admin, type=Authenticator.Type.TOTP, data={"secret": "JBSWY3DPEHPK3PXP"})
        assert api.post(acc(root, "/agents"), {"name": "x"}).status_code == 201

    def test_a_parents_key_holds_no_more_in_a_subaccount_than_its_creator_holds_in_the_parent(self, root, owner,
                                                                                              api_for,
                                                                                              make_member):
        """A key of P acts in P's subaccounts with at most what its creator holds in P (AccessCeiling), even where
        the creator holds more of their own (a planted bug dropping that intersection survived the suite)."""
        person = make_member(root, RoleId.ADMIN)
        child = AccountFactory(parent=root)
        make_member(child, RoleId.OWNER, user=person)  # the direct Owner of the child
        api = api_for(root, person)
        assert api.post(acc(child, "/agents"), {"name": "While Admin above"}).status_code == 201
        membership_change_role(membership=Membership.objects.get(user=person, account=root), role=RoleId.VIEWER,
                               by=owner)
        response = api.post(acc(child, "/agents"), {"name": "As Viewer above"})
        assert response.status_code == 403, response.content
        assert api.get(acc(child, "/agents")).status_code == 200  # a Viewer above still reads
        assert list(Agent.objects.values_list("name", flat=True)) == ["While Admin above"]

    def test_scopes_cap_the_creator(self, root, owner, api_for):
        api = api_for(root, owner, scopes={"agents": "read"})
        assert api.get(acc(root, "/agents")).status_code == 200
        assert api.post(acc(root, "/agents"), {"name": "x"}).status_code == 403
        assert api.get(acc(root, "/contacts")).status_code == 403
        assert api.post(acc(root, "/subaccounts"), {"name": "x"}).status_code == 403

    def test_an_owners_scoped_key_cannot_hand_out_more_than_its_scopes(self, root, owner, api_for):
        viewer_and_members = {"members": "full", "agents": "read", "conversations": "read", "contacts": "read",
                              "settings": "read", "subaccounts": "read", "usage": "read"}
        api = api_for(root, owner, scopes=viewer_and_members)
        for role in ("owner", "admin", "member"):  # each would hold more than the key
            response = api.post(acc(root, "/invitations"), {"email": f"{role}@example.test", "role": role})
            assert response.status_code == 403, response.content
        assert api.post(acc(root, "/invitations"), {"email": "v@example.test", "role": "viewer"}).status_code == 201

    def test_the_subaccounts_caps_hold_for_its_own_members_keys(self, root, owner, api_for, make_member):
        from accounts.services import subaccount_set_access

        child = AccountFactory(parent=root)
        child_owner = make_member(child, RoleId.OWNER)
        api = api_for(child, child_owner)
        subaccount_set_access(account=child, matrix={"agents": "read"}, by=owner)
        assert api.post(acc(child, "/agents"), {"name": "x"}).status_code == 403
        assert api.get(acc(child, "/agents")).status_code == 200


class TestSubaccounts:
    def test_create_update_suspend_reactivate_audited_with_the_keys_label(self, api, root):
        response = api.post(acc(root, "/subaccounts"), {"name": "Acme Corp"})
        assert response.status_code == 201, response.content
        child = Account.objects.get(public_id=response.json()["id"])
        assert response["Location"].endswith(f"/subaccounts/{child.public_id}")
        response = api.patch(acc(root, f"/subaccounts/{child.public_id}"), {
            "name": "Acme Inc", "limits": {"minutes": 100}, "access": {"billing": "none", "agents": "read"}})
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["name"] == "Acme Inc" and body["limits"]["minutes"] == 100
        assert body["access"] == {"billing": "none", "agents": "read"}
        assert api.post(acc(root, f"/subaccounts/{child.public_id}/suspend")).json()["status"] == "suspended"
        assert api.get(acc(root, "/subaccounts?is_active=false")).json()["results"][0]["id"] == str(child.public_id)
        assert api.post(acc(root, f"/subaccounts/{child.public_id}/reactivate")).json()["is_active"] is True
        rows = AuditEvent.objects.filter(account=child, action__startswith="subaccount.")
        assert rows.exists() and all("Test key" in r.summary and r.data["via"] for r in rows)

    def test_an_invalid_update_changes_nothing(self, api, root):
        child = AccountFactory(parent=root, name="Keep")
        response = api.patch(acc(root, f"/subaccounts/{child.public_id}"), {"name": "New name",
                                                                            "access": {"billing": "everything"}})
        assert response.status_code == 400
        assert response.json()["error"]["fields"]["access"]
        child.refresh_from_db()
        assert child.name == "Keep"
        response = api.patch(acc(root, f"/subaccounts/{child.public_id}"), {"name": "New name",
                                                                            "limits": {"agents": -1}})
        assert response.status_code == 400
        child.refresh_from_db()
        assert child.name == "Keep"

    def test_service_refusals_are_the_error_body(self, api, root):
        AccountFactory(parent=root, name="Taken")
        response = api.post(acc(root, "/subaccounts"), {"name": "taken"})
        assert response.status_code == 400
        assert set(response.json()["error"]) == {"code", "message", "fields"}
        assert response.json()["error"]["code"] == "invalid"

    def test_a_grandchild_is_not_a_direct_subaccount(self, api, root):
        child = AccountFactory(parent=root)
        grandchild = AccountFactory(parent=child)
        assert api.get(acc(root, f"/subaccounts/{grandchild.public_id}")).status_code == 404
        assert api.get(acc(child, f"/subaccounts/{grandchild.public_id}")).status_code == 200


class TestIdempotency:
    def test_same_key_twice_acts_once_and_returns_the_first_answer(self, api, root):
        first = api.post(acc(root, "/agents"), {"name": "Once"}, idempotency_key="abc-1")
        second = api.post(acc(root, "/agents"), {"name": "Once"}, idempotency_key="abc-1")
        assert first.status_code == second.status_code == 201
        assert first.json() == second.json()
        assert second["Idempotent-Replayed"] == "true"
        assert Agent.objects.filter(account=root).count() == 1

    def test_same_key_with_a_different_body_is_refused(self, api, root):
        api.post(acc(root, "/agents"), {"name": "Once"}, idempotency_key="abc-2")
        response = api.post(acc(root, "/agents"), {"name": "Twice"}, idempotency_key="abc-2")
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "idempotency_key_reused"
        assert Agent.objects.filter(account=root).count() == 1

    def test_a_refusal_is_remembered_too_and_keys_are_per_api_key(self, api, root, owner, api_for):
        bad = api.post(acc(root, "/agents"), {"name": ""}, idempotency_key="k")
        assert bad.status_code == 400
        assert api.post(acc(root, "/agents"), {"name": ""}, idempotency_key="k").json() == bad.json()
        other = api_for(root, owner)
        assert other.post(acc(root, "/agents"), {"name": "Fine"}, idempotency_key="k").status_code == 201

    def test_without_a_key_each_post_acts(self, api, root):
        api.post(acc(root, "/agents"), {"name": "A"})
        api.post(acc(root, "/agents"), {"name": "A"})
        assert Agent.objects.filter(account=root).count() == 2


    def test_records_are_kept_a_day_then_purged_in_batches_as_new_ones_come(self, api, root):
        from api.base import idempotency_purge
        from api.models import IdempotencyRecord

        start = timezone.now()
        with time_machine.travel(start, tick=False):
            api.post(acc(root, "/agents"), {"name": "Day one"}, idempotency_key="old-1")
            api.post(acc(root, "/agents"), {"name": "Day one too"}, idempotency_key="old-2")
        with time_machine.travel(start + datetime.timedelta(hours=23), tick=False):
            assert api.post(acc(root, "/agents"), {"name": "Day one"}, idempotency_key="old-1")[
                "Idempotent-Replayed"] == "true"  # within the day: replayed
            assert idempotency_purge() == 0
        with time_machine.travel(start + datetime.timedelta(hours=25), tick=False):
            assert idempotency_purge(batch=1) == 1  # a batch at a time
            api.post(acc(root, "/agents"), {"name": "Day two"}, idempotency_key="new")  # purges the rest first
            assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
        assert Agent.objects.filter(account=root).count() == 3

    def test_a_key_older_than_a_day_acts_again(self, api, root):
        from api.models import IdempotencyRecord

        start = timezone.now()
        with time_machine.travel(start, tick=False):
            api.post(acc(root, "/agents"), {"name": "Once"}, idempotency_key="k")
        IdempotencyRecord.objects.update(created_at=start - datetime.timedelta(hours=25))
        with mock.patch("api.base.idempotency_purge"):  # not purged yet: still a new key
            response = api.post(acc(root, "/agents"), {"name": "Other body"}, idempotency_key="k")
        assert response.status_code == 201 and "Idempotent-Replayed" not in response
        assert Agent.objects.filter(account=root).count() == 2


class TestRateLimit:
    def test_429_with_code_and_retry_after_per_key(self, api, root, owner, api_for, settings):
        settings.API_RATE_LIMIT = "3/min"
        statuses = [api.get(v1("accounts/current")).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        response = api.get(v1("accounts/current"))
        assert response.status_code == 429
        assert response.json()["error"]["code"] == "rate_limit_exceeded"
        assert 1 <= int(response["Retry-After"]) <= 61
        assert api_for(root, owner).get(v1("accounts/current")).status_code == 200  # another key: its own budget


class TestEtags:
    def test_if_none_match_gives_304_and_a_stale_if_match_412(self, api, root):
        agent = Agent.objects.create(account=root, name="Tagged")
        url = acc(root, f"/agents/{agent.public_id}")
        first = api.get(url)
        etag = first["ETag"]
        assert api.get(url, if_none_match=etag).status_code == 304
        assert api.patch(url, {"name": "Renamed"}, if_match=etag).status_code == 200
        assert api.get(url, if_none_match=etag).status_code == 200
        response = api.patch(url, {"name": "Again"}, if_match=etag)
        assert response.status_code == 412 and response.json()["error"]["code"] == "precondition_failed"


class TestWorkspace:
    def test_agents_contacts_conversations_round_trip(self, api, root):
        agent = api.post(acc(root, "/agents"), {"name": "Receptionist", "language": "de"}).json()
        contact = api.post(acc(root, "/contacts"), {"name": "Ada", "phone": "+14155550123"}).json()
        assert api.post(acc(root, "/contacts"), {"name": "No way to reach"}).status_code == 400
        conv = api.post(acc(root, "/conversations"), {
            "agent_id": agent["id"], "contact_id": contact["id"], "duration_seconds": 61,
            "started_at": (timezone.now() - datetime.timedelta(minutes=5)).isoformat()})
        assert conv.status_code == 201, conv.content
        assert conv.json()["minutes"] == 2
        listed = api.get(acc(root, f"/conversations?agent_id={agent['id']}")).json()["results"]
        assert [c["id"] for c in listed] == [conv.json()["id"]]
        assert api.get(acc(root, "/usage")).json()["account"]["minutes"] == 2
        assert api("DELETE", acc(root, f"/agents/{agent['id']}")).status_code == 400  # in use: the service says no

    def test_cursor_pagination(self, api, root):
        for i in range(7):
            Agent.objects.create(account=root, name=f"A{i}")
        seen, url = [], acc(root, "/agents?limit=3")
        while url:
            body = api.get(url).json()
            seen += [a["id"] for a in body["results"]]
            url = body["next"]
        assert len(seen) == len(set(seen)) == 7


class TestFiltering:
    def test_the_conversations_agent_filter_lists_that_agent_s_calls_only(self, api, root):
        from workspace.models import Contact, Conversation

        started = timezone.now() - datetime.timedelta(hours=1)
        Contact.objects.create(account=root, name="First", phone="+14155550100")  # the keys of the two tables differ
        contact = Contact.objects.create(account=root, name="Ada", phone="+14155550123")
        agents = [Agent.objects.create(account=root, name=n) for n in ("One", "Two")]
        calls = [Conversation.objects.create(account=root, agent=a, contact=contact, started_at=started,
                                             duration_seconds=60) for a in agents]
        other = AccountFactory(name="Other tenant")
        theirs = Agent.objects.create(account=other, name="Theirs")

        def ids(agent_id):
            return [c["id"] for c in api.get(acc(root, f"/conversations?agent_id={agent_id}")).json()["results"]]

        assert ids(agents[1].public_id) == [str(calls[1].public_id)]
        assert ids(agents[0].public_id) == [str(calls[0].public_id)]
        assert ids(uuid.uuid4()) == [] and ids(theirs.public_id) == [] and ids("nonsense") == []

    def test_lists_filter_on_their_documented_parameters(self, api, root, owner):
        active = Agent.objects.create(account=root, name="On")
        Agent.objects.create(account=root, name="Off", status=Agent.Status.PAUSED)
        ids = [a["id"] for a in api.get(acc(root, "/agents?status=active")).json()["results"]]
        assert ids == [str(active.public_id)]
        assert len(api.get(acc(root, "/agents?status=nonsense")).json()["results"]) == 2  # unknown: unfiltered
        pending = Invitation.objects.create(account=root, email="p@example.test", invited_by=owner)
        Invitation.objects.create(account=root, email="r@example.test", invited_by=owner,
                                  status=Invitation.Status.REVOKED)
        ids = [i["id"] for i in api.get(acc(root, "/invitations?status=pending")).json()["results"]]
        assert ids == [str(pending.public_id)]
        child = AccountFactory(parent=root)
        AccountFactory(parent=root, status=Account.Status.SUSPENDED)
        ids = [a["id"] for a in api.get(acc(root, "/subaccounts?is_active=true")).json()["results"]]
        assert ids == [str(child.public_id)]


class TestUsage:
    def test_per_period_and_per_subaccount(self, api, root):
        from billing.services import usage_record_create

        child = AccountFactory(parent=root, name="Acme")
        grandchild = AccountFactory(parent=child, name="Acme Sales")
        march, april = datetime.date(2026, 3, 1), datetime.date(2026, 4, 1)
        for account, period, minutes in ((root, march, 2), (child, march, 5), (grandchild, march, 7),
                                         (child, april, 1)):
            usage_record_create(account=account, billing_root=root, period=period, occurred_on=period,
                                minutes=minutes, seconds=minutes * 60)
        body = api.get(acc(root, "/usage?period=2026-03")).json()
        assert body["period"] == "2026-03-01"
        assert body["account"] | {"account_id": None} == {"account_id": None, "name": "Northwind", "level": 1,
                                                           "minutes": 2, "subtree_minutes": 14,
                                                           "pool_minutes": 14}
        assert [(r["name"], r["minutes"], r["subtree_minutes"]) for r in body["subaccounts"]] == [("Acme", 5, 12)]
        # a subaccount's own usage, with its subaccounts
        body = api.get(acc(child, "/usage?period=2026-03")).json()
        assert (body["account"]["minutes"], body["subaccounts"][0]["subtree_minutes"]) == (5, 7)
        assert api.get(acc(root, "/usage?period=2026-04")).json()["subaccounts"][0]["minutes"] == 1
        # a subaccount that leaves takes its minutes from the lineage's figures, not from the pools it drew on
        subtree_move(grandchild, None)
        body = api.get(acc(root, "/usage?period=2026-03")).json()
        assert (body["account"]["subtree_minutes"], body["account"]["pool_minutes"]) == (7, 14)
        assert [(r["subtree_minutes"], r["pool_minutes"]) for r in body["subaccounts"]] == [(5, 12)]
        for bad in ("2026-13", "March", "2026-3-1"):
            response = api.get(acc(root, f"/usage?period={bad}"))
            assert response.status_code == 400 and response.json()["error"]["fields"]["period"], bad


@pytest.mark.parametrize("path", ["/agents", "/contacts", "/conversations", "/subaccounts", "/members",
                                  "/invitations", "/invoices"])
def test_lists_cost_a_fixed_number_of_queries(api, root, path, count_queries):
    def fill(n):
        for i in range(n):
            agent = Agent.objects.create(account=root, name=f"Agent {path} {i}")
            contact = Contact.objects.create(account=root, name=f"C{i}", email=f"c{i}-{len(path)}@example.test")
            from workspace.models import Conversation

            Conversation.objects.create(account=root, agent=agent, contact=contact, duration_seconds=60,
                                        started_at=timezone.now() - datetime.timedelta(hours=i + 1))
            AccountFactory(parent=root)

    fill(2)
    api.get(acc(root, path))
    small = count_queries(lambda: api.get(acc(root, path)))
    fill(15)
    large = count_queries(lambda: api.get(acc(root, path)))
    assert small == large <= 8, (small, large)


class TestBillingTransfers:
    def test_start_and_read_status(self, api, root, make_member):
        child = AccountFactory(parent=root, name="Going solo")
        url = acc(root, f"/subaccounts/{child.public_id}/billing-transfers")
        response = api.post(url, {"billing_owner_email": "payer@solo.example", "plan": "agency"},
                            idempotency_key="t-1")
        assert response.status_code == 201, response.content
        assert response.json()["status"] == "pending" and response.json()["plan"] == "agency"
        assert api.post(url, {"billing_owner_email": "payer@solo.example", "plan": "agency"},
                        idempotency_key="t-1").json() == response.json()
        listed = api.get(url).json()["results"]
        assert [t["id"] for t in listed] == [response.json()["id"]]
        again = api.post(url, {"billing_owner_email": "other@solo.example", "plan": "agency"})
        assert again.status_code == 400  # one open transfer per account: the service says why
        assert api.post(url, {"billing_owner_email": "x@solo.example", "plan": "nope"}).status_code == 400

    def test_an_admin_without_billing_cannot_start_one(self, root, owner, make_member, api_for):
        child = AccountFactory(parent=root)
        agency_admin = make_member(root, RoleId.AGENCY_ADMIN)  # everything but billing management
        response = api_for(root, agency_admin).post(acc(root, f"/subaccounts/{child.public_id}/billing-transfers"),
                                                    {"billing_owner_email": "p@x.example", "plan": "agency"})
        assert response.status_code == 403
