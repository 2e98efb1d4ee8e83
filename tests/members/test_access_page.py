"""Members → Who has access: every person once, how they reach the account, their levels and what caps them."""

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Account
from accounts.services import subaccount_set_access
from agency import services as agency_services
from agency.services import access_update, settings_update
from members.roles import RoleId
from tests.factories import AccountFactory, UserFactory, account_tree

pytestmark = pytest.mark.django_db


def url(account, **params):
    base = reverse("members:access", kwargs={"account_id": account.public_id})
    return base + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def entries(client, account, **params):
    response = client.get(url(account, **params))
    assert response.status_code == 200
    return {e.user.email: e for e in response.context["entries"]}


@pytest.fixture
def world(make_member):
    """Agency X (its admin ann) has agency access to Client (owner olga, member mo), narrowed on agents; Client's
    agency settings cap conversations; Client has a subaccount Team (own admin tim) capped on members."""
    agency = AccountFactory(name="Agency X")
    ann = make_member(agency, RoleId.ADMIN, user=UserFactory(email="ann@x.example"))
    client_account = AccountFactory(name="Client", plan_code="agency")
    olga = make_member(client_account, RoleId.OWNER, user=UserFactory(email="olga@client.example"))
    mo = make_member(client_account, RoleId.MEMBER, user=UserFactory(email="mo@client.example"))
    grant = agency_services.access_request(agency=agency, client=client_account, by=ann)
    agency_services.access_decide(grant=grant, approve=True, by=olga)
    access_update(grant=grant, by=olga, expires_at=None, matrix={"agents": "read"})
    settings_update(client=client_account, matrix={"conversations": "none"}, by=olga)
    team = AccountFactory(parent=client_account, name="Team")
    subaccount_set_access(account=team, matrix={"members": "read"}, by=olga)
    tim = make_member(team, RoleId.ADMIN, user=UserFactory(email="tim@client.example"))
    make_member(team, RoleId.MEMBER, user=olga)  # olga is also a member of Team: listed once
    return dict(agency=agency, ann=ann, client=client_account, olga=olga, mo=mo, team=team, tim=tim, grant=grant)


def test_each_kind_of_access_once_with_its_levels_and_causes(world, client):
    client.force_login(world["olga"])
    seen = entries(client, world["client"])
    assert set(seen) == {"ann@x.example", "olga@client.example", "mo@client.example"}
    ann = seen["ann@x.example"]
    assert ann.how == "agency" and ann.agency == "Agency X" and ann.until is None
    assert ann.levels["agents"].label == "Read"
    assert any(c.category == "agents" and c.cause == "the grant's narrowing" for c in ann.caps)
    mo = seen["mo@client.example"]
    assert mo.how == "direct" and mo.levels["conversations"].label == "None"
    assert any(c.category == "conversations" and c.cause == "the agency settings" for c in mo.caps)
    page = client.get(url(world["client"])).content.decode()
    assert "limited by the agency settings" in page and "until revoked" in page

    team = entries(client, world["team"])
    # Client's people reach Team from above; agency access is not inherited by subaccounts.
    assert set(team) == {"olga@client.example", "mo@client.example", "tim@client.example"}
    olga = team["olga@client.example"]
    assert olga.how == "inherited" and olga.source == "Client" and olga.other_sources == ["Member in Team"]
    tim = team["tim@client.example"]
    assert tim.how == "direct" and tim.levels["members"].label == "Read"
    assert [c.cause for c in tim.caps if c.category == "members"] == ["its access categories, set by the parent"]


def test_nothing_upward_is_named_to_a_reader_inside_the_subaccount(world, client):
    client.force_login(world["tim"])
    team = entries(client, world["team"])
    assert team["olga@client.example"].source == "an account above"
    assert team["olga@client.example"].source_account is None
    page = client.get(url(world["team"])).content.decode()
    assert "Members of Client" not in page and "from an account above" in page


def test_filters_and_search(world, client):
    client.force_login(world["olga"])
    assert set(entries(client, world["client"], how="agency")) == {"ann@x.example"}
    assert set(entries(client, world["client"], how="direct")) == {"olga@client.example", "mo@client.example"}
    assert set(entries(client, world["team"], how="inherited")) == {"olga@client.example", "mo@client.example"}
    assert set(entries(client, world["client"], q="mo@")) == {"mo@client.example"}
    assert set(entries(client, world["client"], how="nonsense")) == {"ann@x.example", "olga@client.example",
                                                                     "mo@client.example"}


def test_csv_lists_everyone_with_levels(world, client):
    client.force_login(world["olga"])
    response = client.get(url(world["client"], format="csv"))
    assert response["Content-Disposition"].startswith("attachment")
    rows = {r["Email"]: r for r in csv.DictReader(io.StringIO(response.content.decode()))}
    assert set(rows) == {"ann@x.example", "olga@client.example", "mo@client.example"}
    assert rows["ann@x.example"]["Agents"] == "Read" and rows["ann@x.example"]["Until"] == "until revoked"
    assert "agents: Read (the grant's narrowing)" in rows["ann@x.example"]["Capped by"]


def test_revoked_agency_people_disappear(world, client):
    agency_services.access_revoke(grant=world["grant"], by=world["olga"])
    client.force_login(world["olga"])
    assert "ann@x.example" not in entries(client, world["client"])


def test_refused_without_member_viewing_and_404_for_another_tenant(world, client, make_member):
    # Team's members category is "read": its members still view members. A subaccount with members "none":
    hidden = AccountFactory(parent=world["client"], name="Hidden")
    subaccount_set_access(account=hidden, matrix={"members": "none"}, by=world["olga"])
    outsider = make_member(hidden, RoleId.ADMIN)
    client.force_login(outsider)
    assert client.get(url(hidden)).status_code == 403
    client.force_login(world["ann"])
    assert client.get(url(world["team"])).status_code == 404  # an agency user never reaches subaccounts
    assert client.get(url(AccountFactory(name="Elsewhere"))).status_code == 404


def test_query_budget_is_fixed_whatever_the_people_and_subaccounts(client, make_member):
    def budget(n_people, breadth):
        root = account_tree(breadth=breadth, depth=2)
        owner = make_member(root, RoleId.OWNER)
        for _ in range(n_people):
            make_member(root, RoleId.MEMBER)
        leaf = Account.objects.filter(parent=root).first()
        make_member(leaf, RoleId.ADMIN)
        client.force_login(owner)
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url(leaf)).status_code == 200
        return len(ctx.captured_queries)

    small, big = budget(3, 5), budget(60, 500)
    # access and the lineage's security policy: 1 query; the small one's list fits on one page: no COUNT
    assert (small, big) == (7, 8)
