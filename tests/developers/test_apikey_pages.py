import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from developers import keys
from developers.models import ApiKey
from developers.services import apikey_create, apikey_set_revoked, apikey_update
from members.models import Membership
from members.roles import RoleId
from members.services import membership_change_role, membership_remove
from tests.factories import AccountFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def u(name, account, key=None):
    kwargs = {"account_id": account.public_id}
    if key is not None:
        kwargs["apikey_id"] = key.public_id
    return reverse(f"developers:apikey-{name}", kwargs=kwargs)


@pytest.fixture
def account():
    return AccountFactory(name="Keyholder")


@pytest.fixture
def owner(account, make_member):
    return make_member(account, RoleId.OWNER)


class TestCreate:
    def test_the_full_key_is_shown_once_and_only_a_keyed_hash_is_stored(self, client, account, owner):
        client.force_login(owner)
        response = client.post(u("create", account), {"label": "Production server"})
        assert response.status_code == 200
        assert response["Cache-Control"] == "no-store"
        key = ApiKey.objects.get(account=account)
        full = response.context["full_key"]
        assert full in response.content.decode()
        prefix, secret = keys.parse(full)
        assert prefix == key.prefix and len(prefix) == 8
        assert secret not in key.secret_hash and key.secret_hash == keys.secret_hash(prefix, secret)
        assert keys.matches(key.secret_hash, prefix, secret)
        assert not keys.matches(key.secret_hash, prefix, secret[:-1] + ("A" if secret[-1] != "A" else "B"))
        listing = client.get(u("list", account)).content.decode()
        assert full not in listing and secret not in listing
        assert f"sk-{prefix}" in listing and "Production server" in listing
        assert reverse("api:docs") in listing and reverse("api:schema") in listing
        assert AuditEvent.objects.filter(account=account, action="api_key.created").exists()

    def test_scopes_are_offered_and_stored(self, client, account, owner):
        client.force_login(owner)
        client.post(u("create", account), {"label": "Read agents", "restrict": "on", "scope_agents": "read",
                                           "scope_billing": "none"})
        assert ApiKey.objects.get(account=account).scopes == {"agents": "read"}

    def test_scopes_above_the_creators_own_are_refused(self, account, make_member):
        member = make_member(account, RoleId.MEMBER)  # Read on developer tools: may not create at all
        with pytest.raises(PermissionDenied):
            apikey_create(account=account, by=member, label="x")
        admin = make_member(account, RoleId.AGENCY_ADMIN)  # everything but billing management
        with pytest.raises(PermissionDenied, match="Billing"):
            apikey_create(account=account, by=admin, label="x", scopes={"billing": "full"})
        key, _ = apikey_create(account=account, by=admin, label="x", scopes={"billing": "read", "agents": "full"})
        assert key.scopes == {"billing": "read", "agents": "full"}

    def test_bad_input_is_named_at_the_field(self, account, owner):
        with pytest.raises(ValidationError) as exc:
            apikey_create(account=account, by=owner, label="  ", expires_at=timezone.now())
        assert set(exc.value.error_dict) == {"label"}
        with pytest.raises(ValidationError) as exc:
            apikey_create(account=account, by=owner, label="ok", expires_at=timezone.now())
        assert set(exc.value.error_dict) == {"expires_at"}
        with pytest.raises(ValidationError):
            apikey_create(account=account, by=owner, label="ok", scopes={"nonsense": "full"})


class TestLifecycle:
    def test_edit_revoke_reactivate_with_audit_rows(self, client, account, owner):
        key, _ = apikey_create(account=account, by=owner, label="Old")
        client.force_login(owner)
        later = (timezone.now() + datetime.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
        assert client.post(u("edit", account, key), {"label": "New", "expires_at": later}).status_code == 302
        key.refresh_from_db()
        assert key.label == "New" and key.expires_at is not None
        client.post(u("revoke", account, key))
        key.refresh_from_db()
        assert key.status == ApiKey.Status.REVOKED
        assert "Reactivate" in client.get(u("list", account)).content.decode()
        client.post(u("reactivate", account, key))
        key.refresh_from_db()
        assert key.status == ApiKey.Status.ACTIVE
        actions = set(AuditEvent.objects.filter(account=account).values_list("action", flat=True))
        assert {"api_key.created", "api_key.updated", "api_key.revoked", "api_key.reactivated"} <= actions

    def test_expired_status_is_derived(self, account, owner):
        key, _ = apikey_create(account=account, by=owner, label="k",
                               expires_at=timezone.now() + datetime.timedelta(hours=1))
        assert key.status_at(timezone.now() + datetime.timedelta(hours=2)) == ApiKey.Status.EXPIRED

    def test_the_list_says_when_a_keys_creator_left(self, client, account, owner, make_member):
        admin = make_member(account, RoleId.ADMIN)
        apikey_create(account=account, by=admin, label="Admin's key")
        client.force_login(owner)
        assert "Inactive: its creator left" not in client.get(u("list", account)).content.decode()
        membership_remove(membership=Membership.objects.get(user=admin, account=account), by=owner)
        assert "Inactive: its creator left" in client.get(u("list", account)).content.decode()

    def test_a_parents_person_reaching_from_above_keeps_the_key_active(self, client, owner, make_member):
        parent = AccountFactory()
        child = AccountFactory(parent=parent)
        boss = make_member(parent, RoleId.OWNER)
        apikey_create(account=child, by=boss, label="From above")
        client.force_login(boss)
        assert "Inactive: its creator left" not in client.get(u("list", child)).content.decode()

    def test_demotion_keeps_the_key_listed_as_active(self, account, owner, make_member):
        admin = make_member(account, RoleId.ADMIN)
        key, _ = apikey_create(account=account, by=admin, label="k")
        membership_change_role(membership=Membership.objects.get(user=admin, account=account), role=RoleId.MEMBER,
                               by=owner)
        demoted = type(admin).objects.get(pk=admin.pk)  # a new request: access is resolved afresh
        with pytest.raises(PermissionDenied):  # a Member cannot revoke
            apikey_set_revoked(key=key, revoked=True, by=demoted)
        with pytest.raises(PermissionDenied):
            apikey_update(key=key, label="y", by=demoted)


class TestOnlyTheCreatorBringsAKeyBack:
    """A key acts with its creator's access: another manager of developer tools (an agency user, say) may revoke
    or shorten it, never revive or extend it, or they would act with the creator's access."""

    @pytest.fixture
    def other(self, account, make_member):
        return make_member(account, RoleId.AGENCY_ADMIN)  # manages developer tools, less than the Owner

    def test_reactivating_someone_elses_revoked_key_is_refused_by_the_service(self, account, owner, other):
        key, _ = apikey_create(account=account, by=owner, label="Owner's")
        apikey_set_revoked(key=key, revoked=True, by=other)  # revoking is anyone's with the permission
        with pytest.raises(PermissionDenied, match="Only its creator"):
            apikey_set_revoked(key=key, revoked=False, by=other)
        key.refresh_from_db()
        assert key.status == ApiKey.Status.REVOKED
        assert not AuditEvent.objects.filter(account=account, action="api_key.reactivated").exists()
        apikey_set_revoked(key=key, revoked=False, by=None)  # the platform (admin, commands) may
        apikey_set_revoked(key=key, revoked=True, by=owner)
        apikey_set_revoked(key=key, revoked=False, by=owner)  # and the creator
        key.refresh_from_db()
        assert key.status == ApiKey.Status.ACTIVE

    def test_the_page_offers_no_reactivation_and_a_forged_post_changes_nothing(self, client, account, owner, other):
        key, _ = apikey_create(account=account, by=owner, label="Owner's")
        apikey_set_revoked(key=key, revoked=True, by=owner)
        client.force_login(other)
        listing = client.get(u("list", account)).content.decode()
        assert u("reactivate", account, key) not in listing and "Only its creator can reactivate it" in listing
        response = client.post(u("reactivate", account, key), follow=True)
        assert "Only its creator (" in response.content.decode()
        key.refresh_from_db()
        assert key.status == ApiKey.Status.REVOKED

    def test_extending_or_clearing_someone_elses_expiry_is_refused_shortening_is_not(self, client, account, owner,
                                                                                      other):
        soon = timezone.now() + datetime.timedelta(days=2)
        key, _ = apikey_create(account=account, by=owner, label="Owner's", expires_at=soon)
        for later in (None, soon + datetime.timedelta(days=30)):
            with pytest.raises(PermissionDenied, match="extend"):
                apikey_update(key=key, by=other, label="Owner's", expires_at=later)
            key.refresh_from_db()
            assert key.expires_at == soon
        sooner = soon - datetime.timedelta(days=1)
        apikey_update(key=key, by=other, label="Renamed", expires_at=sooner)
        key.refresh_from_db()
        assert key.expires_at == sooner and key.label == "Renamed"
        client.force_login(other)
        page = client.get(u("edit", account, key)).content.decode()
        assert "only the key&#x27;s creator can extend it" in page
        response = client.post(u("edit", account, key), {"label": "Renamed", "expires_at": ""})
        assert response.status_code == 200 and "Only its creator (" in response.content.decode()
        key.refresh_from_db()
        assert key.expires_at == sooner
        apikey_update(key=key, by=owner, label="Renamed", expires_at=None)  # the creator may
        key.refresh_from_db()
        assert key.expires_at is None

    def test_an_expired_key_is_not_revived_by_another_person(self, account, owner, other):
        key, _ = apikey_create(account=account, by=owner, label="Owner's",
                               expires_at=timezone.now() + datetime.timedelta(hours=1))
        ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - datetime.timedelta(hours=1))
        key.refresh_from_db()
        with pytest.raises(PermissionDenied):
            apikey_update(key=key, by=other, label="Owner's", expires_at=None)
        assert ApiKey.objects.get(pk=key.pk).status == ApiKey.Status.EXPIRED


class TestIsolationAndPermissions:
    def test_another_tenants_key_is_404(self, client, account, owner):
        other = AccountFactory()
        other_owner = UserFactory()
        MembershipFactory(user=other_owner, account=other, role=RoleId.OWNER)
        foreign, _ = apikey_create(account=other, by=other_owner, label="Theirs")
        client.force_login(owner)
        for name in ("edit", "revoke", "reactivate"):
            assert client.get(u(name, account, foreign)).status_code in (404, 405)
            assert client.post(u(name, account, foreign), {"label": "Hijack"}).status_code == 404
            assert client.post(u(name, other, foreign), {"label": "Hijack"}).status_code == 404
        assert client.get(u("list", other)).status_code == 404
        foreign.refresh_from_db()
        assert foreign.label == "Theirs" and foreign.revoked_at is None

    def test_a_subaccounts_key_is_404_under_its_parent(self, client, account, owner):
        child = AccountFactory(parent=account)
        key, _ = apikey_create(account=child, by=owner, label="Child's")
        client.force_login(owner)
        assert client.get(u("edit", account, key)).status_code == 404
        assert client.get(u("edit", child, key)).status_code == 200

    @pytest.mark.parametrize("role,list_ok,manage_ok", [
        (RoleId.OWNER, True, True), (RoleId.ADMIN, True, True), (RoleId.AGENCY_ADMIN, True, True),
        (RoleId.MEMBER, True, False), (RoleId.VIEWER, False, False)])
    def test_the_issues_matrix(self, client, account, owner, make_member, role, list_ok, manage_ok):
        key, _ = apikey_create(account=account, by=owner, label="k")
        client.force_login(make_member(account, role))
        assert client.get(u("list", account)).status_code == (200 if list_ok else 403)
        assert client.get(u("create", account)).status_code == (200 if manage_ok else 403)
        assert client.get(u("edit", account, key)).status_code == (200 if manage_ok else 403)
        assert client.post(u("revoke", account, key)).status_code == (302 if manage_ok else 403)
        listing = client.get(u("list", account)).content.decode()
        assert ("Revoke" in listing or "Reactivate" in listing) == manage_ok

    def test_developer_tools_capped_by_the_parent_refuses_the_subaccounts_owner(self, client, account, owner,
                                                                                 make_member):
        from accounts.services import subaccount_set_access

        child = AccountFactory(parent=account)
        child_owner = make_member(child, RoleId.OWNER)
        subaccount_set_access(account=child, matrix={"developer_tools": "none"}, by=owner)
        client.force_login(child_owner)
        assert client.get(u("list", child)).status_code == 403


def test_the_list_costs_a_fixed_number_of_queries(client, account, owner, make_member, count_queries):
    client.force_login(owner)

    def keys_of(n):
        for i in range(n):
            apikey_create(account=account, by=make_member(account, RoleId.ADMIN), label=f"k{i}")

    keys_of(2)
    client.get(u("list", account))  # "last active" is written on the first visit
    small = count_queries(lambda: client.get(u("list", account)))
    keys_of(20)
    large = count_queries(lambda: client.get(u("list", account)))
    assert small == large <= 10, (small, large)
