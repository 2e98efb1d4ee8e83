"""Refusals that explain (issue 16 item 5): the category, the cause and who can change it; ended agency access."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.services import subaccount_set_access
from agency import services as agency_services
from agency.models import AgencyGrant
from members.roles import RoleId
from tests.factories import AccountFactory, UserFactory

pytestmark = pytest.mark.django_db


def page(account, name, ns):
    return reverse(f"{ns}:{name}", kwargs={"account_id": account.public_id})


@pytest.fixture
def world(make_member):
    agency = AccountFactory(name="Agency X")
    ann = make_member(agency, RoleId.ADMIN, user=UserFactory(email="ann@x.example"))
    client_account = AccountFactory(name="Client Co", plan_code="agency")
    olga = make_member(client_account, RoleId.OWNER)
    mo = make_member(client_account, RoleId.MEMBER)
    grant = agency_services.access_request(agency=agency, client=client_account, by=ann)
    agency_services.access_decide(grant=grant, approve=True, by=olga)
    team = AccountFactory(parent=client_account, name="Team")
    subaccount_set_access(account=team, matrix={"members": "read"}, by=olga)
    tim = make_member(team, RoleId.ADMIN)
    return dict(agency=agency, ann=ann, client=client_account, olga=olga, mo=mo, team=team, tim=tim, grant=grant)


def refusal(client, user, url):
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 403
    return " ".join(response.content.decode().split())


def test_a_missing_role_permission_names_the_role_and_where_it_comes_from(world, client):
    text = refusal(client, world["mo"], page(world["client"], "invite", "members"))
    assert "Your role in Client Co does not allow this (manage members and invitations)" in text
    assert "Your role comes from Client Co: its Owner or Admins can change it." in text


def test_a_parents_cap_names_the_category_and_the_parent_or_not_when_unreachable(world, client, make_member):
    text = refusal(client, world["tim"], page(world["team"], "invite", "members"))
    # tim belongs to Team only: the account above is not named (R6).
    assert "Members is read-only here" in text and "the account above limits what Team&#x27;s members" in text
    # A person of Client Co with a membership in Team too is capped there by the categories Client Co set: named.
    both = make_member(world["client"], RoleId.VIEWER)
    make_member(world["team"], RoleId.ADMIN, user=both)
    text = refusal(client, both, page(world["team"], "invite", "members"))
    assert "Client Co limits what Team&#x27;s members can do" in text


def test_narrowed_agency_access_and_agency_settings_are_named(world, client):
    agency_services.access_update(grant=world["grant"], by=world["olga"], expires_at=None, matrix={"agents": "read"})
    text = refusal(client, world["ann"], page(world["client"], "agent-create", "workspace"))
    assert "Agents is read-only for Agency X here" in text and "Client Co narrowed its agency access" in text
    agency_services.settings_update(client=world["client"], matrix={"conversations": "none"}, by=world["olga"])
    text = refusal(client, world["mo"], page(world["client"], "conversation-list", "workspace"))
    assert "Conversations is not available here" in text and "agency settings" in text


def test_ended_agency_access_says_so_and_when_not_a_bare_404(world, client):
    agency_services.access_revoke(grant=world["grant"], by=world["olga"])
    text = refusal(client, world["ann"], page(world["client"], "dashboard", "accounts"))
    assert "Client Co ended Agency X's agency access on" in text
    # Someone who never had access through an agency still gets a 404.
    client.force_login(UserFactory())
    assert client.get(page(world["client"], "dashboard", "accounts")).status_code == 404


def test_expired_agency_access_says_when(world, client):
    AgencyGrant.objects.filter(pk=world["grant"].pk).update(
        expires_at=timezone.now() - datetime.timedelta(days=2))
    text = refusal(client, world["ann"], page(world["client"], "dashboard", "accounts"))
    assert "agency access to Client Co expired on" in text
