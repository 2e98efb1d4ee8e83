import pytest
from django.core.exceptions import ValidationError

from accounts.access import resolve_access
from accounts.models import Account, AccountHasSubaccounts
from accounts.services import account_delete, subaccount_create
from members.roles import RoleId
from tests.factories import AccountFactory, account_chain

pytestmark = pytest.mark.django_db


def test_subaccount_nesting_stops_at_five_levels(make_member):
    chain = account_chain(5)
    assert [a.depth for a in chain] == [1, 2, 3, 4, 5]
    with pytest.raises(ValidationError, match="at most 5 levels deep"):
        subaccount_create(parent=chain[-1], name="Sixth", by=make_member(chain[0], RoleId.OWNER))
    assert not Account.objects.filter(name="Sixth").exists()


def test_depth_limit_is_a_setting(settings):
    settings.ACCOUNT_MAX_DEPTH = 2
    chain = account_chain(2)
    with pytest.raises(ValidationError, match="at most 2 levels deep"):
        subaccount_create(parent=chain[-1], name="Third", by=None)


def test_subaccount_creator_gets_no_membership_of_their_own_and_parent_is_recorded(make_member):
    """R4: the creator reaches the subaccount through the parent, so leaving the parent ends it."""
    root = AccountFactory()
    user = make_member(root, RoleId.ADMIN)
    child = subaccount_create(parent=root, name="  Acme   Corp ", by=user)
    assert child.name == "Acme Corp"
    assert child.parent == root and child.depth == 2 and child.created_by == user
    assert not child.memberships.exists()
    assert resolve_access(user, child).role.id == RoleId.ADMIN  # inherited from the root
    root.refresh_from_db()
    assert root.numchild == 1


@pytest.mark.parametrize("name", ["", " ", "a", " b "])
def test_account_names_need_two_characters_after_trimming(name):
    with pytest.raises(ValidationError, match="at least 2 characters"):
        subaccount_create(parent=AccountFactory(), name=name, by=None)


def test_names_are_unique_among_siblings_only():
    root_a, root_b = AccountFactory(), AccountFactory()
    subaccount_create(parent=root_a, name="Sales", by=None)
    with pytest.raises(ValidationError, match="already has a subaccount named"):
        subaccount_create(parent=root_a, name="SALES", by=None)
    subaccount_create(parent=root_b, name="Sales", by=None)  # another parent: fine
    AccountFactory(name="Twin")
    AccountFactory(name="Twin")  # two independent customers may share a name


def test_ancestors_and_descendants_are_one_query_each(django_assert_num_queries):
    chain = account_chain(5)
    leaf, root = chain[-1], chain[0]
    with django_assert_num_queries(1):
        assert list(Account.objects.get_ancestors(leaf)) == chain[:-1]
    with django_assert_num_queries(1):
        assert set(root.descendants()) == set(chain[1:])


def test_deleting_a_parent_with_subaccounts_is_refused_everywhere():
    parent = AccountFactory(name="Parent")
    child = AccountFactory(parent=parent)
    with pytest.raises(AccountHasSubaccounts):
        parent.delete()
    with pytest.raises(AccountHasSubaccounts):
        Account.objects.filter(pk=parent.pk).delete()
    with pytest.raises(AccountHasSubaccounts, match="while it has 1 subaccount"):
        account_delete(account=parent, by=None)
    assert Account.objects.filter(pk__in=[parent.pk, child.pk]).count() == 2


def test_deleting_a_leaf_subaccount_works_and_updates_the_parent():
    parent = AccountFactory()
    child = AccountFactory(parent=parent)
    account_delete(account=child, by=None)
    parent.refresh_from_db()
    assert parent.numchild == 0
    assert parent.audit_events.filter(action="subaccount.deleted").exists()


def test_reachable_by_is_downward_only_and_one_query(django_assert_num_queries, make_member):
    agency = AccountFactory(name="Agency")
    client_a = AccountFactory(parent=agency, name="Client A")
    client_a_team = AccountFactory(parent=client_a, name="Client A team")
    client_b = AccountFactory(parent=agency, name="Client B")
    other_root = AccountFactory(name="Other")
    user = make_member(client_a)
    with django_assert_num_queries(1):
        reachable = set(Account.objects.reachable_by(user))
    assert reachable == {client_a, client_a_team}
    assert agency not in reachable and client_b not in reachable and other_root not in reachable


def test_limits_take_the_smallest_of_a_lineage_with_several(make_member):
    """R1 for limits where more than one account of the lineage has one (planted bugs taking the largest, or
    leaving a new child unlimited, survived the suite, whose lineages had one finite value each)."""
    from accounts.services import subaccount_move, subaccount_set_limits
    from members.grants import GrantRefused

    root = AccountFactory(limit_agents=10)
    alpha = AccountFactory(parent=root, limit_agents=5)
    child = subaccount_create(parent=alpha, name="Child", by=None)
    assert child.limit_agents == 5
    with pytest.raises(GrantRefused, match="agents at most 5"):
        subaccount_set_limits(account=child, limits={"agents": 8}, by=None)
    unlimited = AccountFactory(parent=root)
    subaccount_move(account=unlimited, new_parent=alpha, by=make_member(root, RoleId.OWNER))
    unlimited.refresh_from_db()
    assert unlimited.limit_agents == 5


def test_a_move_brings_the_whole_subtree_within_the_new_lineages_limits(make_member):
    """R1 for limits after a move (a hostile review: only the moved account was clamped; agents, members and
    calls are counted per account, so a descendant kept more than its new lineage allows)."""
    from accounts.services import subaccount_move

    root = AccountFactory(plan_code="agency")
    old_parent = AccountFactory(parent=root)
    new_parent = AccountFactory(parent=root, limit_agents=5, limit_members=10)
    moved = AccountFactory(parent=old_parent, limit_agents=20)
    below = AccountFactory(parent=moved, limit_agents=50, limit_members=4)
    deepest = AccountFactory(parent=below)  # no limits of its own
    untouched = AccountFactory(parent=old_parent, limit_agents=50)
    subaccount_move(account=moved, new_parent=new_parent, by=make_member(root, RoleId.OWNER))
    limits = {a.name: (a.limit_agents, a.limit_members) for a in Account.objects.filter(
        pk__in=[moved.pk, below.pk, deepest.pk, untouched.pk])}
    assert limits == {moved.name: (5, 10), below.name: (5, 4), deepest.name: (5, 10), untouched.name: (50, None)}
    moved.refresh_from_db()
    assert moved.parent_id == new_parent.pk
