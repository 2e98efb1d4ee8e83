"""Reach and the switcher's entry points answered in SQL (issue 14, item 3), checked against the rule
written out in Python over random forests and random memberships."""

import random

import pytest

from accounts.models import Account
from accounts.selectors import entry_points, search_page
from agency.models import AgencyGrant
from members.models import Membership
from members.roles import RoleId
from tests.factories import AccountFactory, UserFactory, account_chain

pytestmark = pytest.mark.django_db


def forest(rng, roots=3, size=25):
    made = [AccountFactory(name=f"Root {i}") for i in range(roots)]
    for i in range(size):
        parent = rng.choice([a for a in made if a.depth < 5])
        made.append(AccountFactory(parent=Account.objects.get(pk=parent.pk), name=f"Node {i}"))
    return list(Account.objects.all())


@pytest.mark.parametrize("agency_user", [True, False], ids=["agency user", "own memberships only"])
@pytest.mark.parametrize("search", ["within the memberships", "within the entry points", "testing reach"])
@pytest.mark.parametrize("seed", range(4))
def test_reach_and_entry_points_follow_the_rule(seed, search, agency_user, make_member, monkeypatch):
    """Search reads the memberships in force by SQL for an agency user and decides a result's parent in SQL past
    the cap; a person with their own memberships only, under the cap, has both decided in Python."""
    rng = random.Random(seed)
    accounts = forest(rng)
    user = UserFactory()
    own = rng.sample(accounts, 6)
    for account in own:
        make_member(account, rng.choice([RoleId.MEMBER, RoleId.ADMIN]), user=user)
    if search == "within the entry points":  # a membership in every account below the widest one: more memberships
        widest = max(own, key=lambda top: sum(a.path.startswith(top.path) for a in accounts))
        below = [a for a in accounts if a.path.startswith(widest.path) and a.path != widest.path and a not in own]
        for account in below:                # than entry points, and a search within the entry points' subtrees
            make_member(account, RoleId.MEMBER, user=user)
        tops = Membership.objects.filter(user=user, below_own=False).count() + (3 if agency_user else 0)
        # (+ the agency and two clients)
        assert Membership.objects.filter(user=user).count() + 2 > tops, "the forest gave nothing below"
        monkeypatch.setattr("accounts.selectors.MAX_SEARCH_MEMBERSHIPS", tops)
    elif search == "testing reach":  # more memberships and entry points than a search restricts itself to
        monkeypatch.setattr("accounts.selectors.MAX_SEARCH_MEMBERSHIPS", 0)
    clients = []
    if agency_user:
        agency = AccountFactory(name="Agency")
        make_member(agency, RoleId.ADMIN, user=user)
        clients = [a for a in accounts if a.depth == 1 and a not in own][:2]
        for client, status in zip(clients, ("active", "revoked"), strict=False):  # a revoked grant reaches nothing
            AgencyGrant.objects.create(client=client, agency=agency, status=status)
            Membership.objects.create(user=user, account=client, role=RoleId.AGENCY_ADMIN, is_agency=True,
                                      agency_account=agency)
        clients = clients[:1]
        own.append(agency)
    own_paths = [a.path for a in own]
    expected_reach = {a.pk for a in Account.objects.all()
                      if any(a.path.startswith(p) for p in own_paths) or a in clients}
    assert set(Account.objects.reachable_by(user).values_list("pk", flat=True)) == expected_reach
    tops = [a for a in own if not any(a.path.startswith(p) and a.path != p for p in own_paths)]
    expected_tops = sorted(tops, key=lambda a: (a.name.lower(), a.path)) + clients
    assert [e.account.pk for e in entry_points(user)] == [a.pk for a in expected_tops]
    for text in ("node", "root"):  # (the agency clients, one of them revoked, are roots)
        found = search_page(user, text, per_page=500)
        assert {a.pk for a in found} == {pk for pk in expected_reach
                                         if text in Account.objects.get(pk=pk).name.lower()}
        for a in found:  # R6: the parent is named only when the person reaches it too (not through agency access)
            assert a.parent_reached == (a.parent_id is not None
                                        and any(a.parent.path.startswith(p) for p in own_paths))


def test_a_membership_below_another_is_no_entry_point_even_past_a_lowered_depth_limit(make_member, settings):
    chain = account_chain(5, prefix="Deep")  # levels 1-5
    person = make_member(chain[2], RoleId.ADMIN)  # level 3
    make_member(chain[4], RoleId.MEMBER, user=person)  # level 5, below it
    settings.ACCOUNT_MAX_DEPTH = 3  # lowered after the tree was built deeper
    assert [e.account.pk for e in entry_points(person)] == [chain[2].pk]


def test_search_does_not_depend_on_the_entry_point_flag(make_member):
    """``below_own`` is kept apart from the memberships and can be stale after a race (DESIGN-NOTES, "Switcher at
    scale"): search must find what the person reaches whatever the flag says."""
    chain = account_chain(3, prefix="Flag")
    person = make_member(chain[1], RoleId.MEMBER)
    Membership.objects.filter(user=person).update(below_own=True)  # as a lost race could leave it
    assert {a.pk for a in search_page(person, "flag")} == {chain[1].pk, chain[2].pk}
    assert [a.pk for a in search_page(UserFactory(), "flag")] == []  # no membership: nothing


def test_past_the_membership_cap_an_agency_client_is_searched_with_the_entry_points(make_member, monkeypatch):
    """Searching within the entry points keeps the agency clients among them (each is its own entry point)."""
    monkeypatch.setattr("accounts.selectors.MAX_SEARCH_MEMBERSHIPS", 2)
    agency = AccountFactory(name="Agency")
    person = make_member(agency, RoleId.ADMIN)
    make_member(AccountFactory(parent=agency, name="Below"), RoleId.MEMBER, user=person)  # 3 memberships, 2 tops
    client = AccountFactory(name="Zebra client")
    AgencyGrant.objects.create(client=client, agency=agency, status=AgencyGrant.Status.ACTIVE)
    Membership.objects.create(user=person, account=client, role=RoleId.AGENCY_ADMIN, is_agency=True,
                              agency_account=agency)
    assert [a.pk for a in search_page(person, "Zebra")] == [client.pk]
    assert [a.pk for a in search_page(person, "Below")] == [Account.objects.get(name="Below").pk]
