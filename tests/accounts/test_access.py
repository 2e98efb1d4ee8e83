import pytest

from accounts.access import resolve_access
from accounts.models import Account
from members.roles import ROLES, RoleId
from tests.factories import AccountFactory, UserFactory, account_chain, plan

pytestmark = pytest.mark.django_db


def fresh(user):
    """The same person as a new request would load them (no per-request cache)."""
    return type(user).objects.get(pk=user.pk)


def test_parent_admin_works_in_every_descendant(make_member):
    chain = account_chain(5)
    admin = make_member(chain[0], RoleId.ADMIN)
    for account in chain:
        access = resolve_access(fresh(admin), account)
        assert access is not None and access.has("manage_subaccounts", "manage_members")
        assert access.role.id == RoleId.ADMIN
    assert resolve_access(fresh(admin), chain[-1]).inherited_from == chain[0]


def test_no_upward_no_sibling_no_cross_root_access(make_member):
    agency = AccountFactory()
    a, b = AccountFactory(parent=agency), AccountFactory(parent=agency)
    other = AccountFactory()
    owner_of_a = make_member(a, RoleId.OWNER)
    assert resolve_access(fresh(owner_of_a), a) is not None
    assert resolve_access(fresh(owner_of_a), agency) is None
    assert resolve_access(fresh(owner_of_a), b) is None
    assert resolve_access(fresh(owner_of_a), other) is None


def test_effective_permissions_are_the_union_over_the_path(make_member):
    root = AccountFactory()
    child = AccountFactory(parent=root)
    user = make_member(root, RoleId.VIEWER)
    make_member(child, RoleId.MEMBER, user=user)
    access = resolve_access(fresh(user), child)
    assert access.permissions == ROLES["viewer"].permissions | ROLES["member"].permissions
    assert resolve_access(fresh(user), root).permissions == ROLES["viewer"].permissions


@pytest.mark.parametrize("depth", [1, 5])
def test_resolving_access_costs_two_queries_three_below_the_top(depth, make_member, django_assert_num_queries):
    chain = account_chain(depth)
    user = fresh(make_member(chain[0], RoleId.ADMIN))
    leaf = Account.objects.get(pk=chain[-1].pk)
    with django_assert_num_queries(2 if depth > 1 else 1):
        assert resolve_access(user, leaf) is not None
    with django_assert_num_queries(0):  # cached for the rest of the request
        assert user.has_perm("accounts.manage_agents", leaf)


def test_backend_answers_has_perm_with_inheritance(make_member):
    root = AccountFactory()
    child = AccountFactory(parent=root)
    member = make_member(root, RoleId.MEMBER)
    assert fresh(member).has_perm("accounts.manage_agents", child)
    assert not fresh(member).has_perm("accounts.delete_agents", child)
    assert not fresh(member).has_perm("accounts.manage_agents", AccountFactory())
    assert not fresh(UserFactory()).has_perm("accounts.view_agents", root)


@pytest.mark.parametrize("plan_code", ["agency", "free", None])
def test_the_access_knows_the_root_s_plan_at_every_depth_without_a_query(make_member, plan_code,
                                                                         django_assert_num_queries):
    """``AccountAccess.plan`` is ``plan_for``'s answer (the root's plan, or None for a root without a
    subscription), read from the lineage the access loaded: no query of its own on an account page."""
    from accounts.access import access_or_404
    from billing.models import Subscription
    from billing.selectors import plan_for

    chain = account_chain(5)
    root = chain[0]
    if plan_code is None:
        Subscription.objects.filter(account=root).delete()
    else:
        Subscription.objects.update_or_create(account=root, defaults={"plan": plan(plan_code)})
    owner = make_member(root, RoleId.OWNER)
    for account in chain:
        expected = plan_for(Account.objects.get(pk=account.pk))
        assert (expected.code if expected else None) == plan_code
        access = access_or_404(fresh(owner), account.public_id)
        with django_assert_num_queries(0):
            assert access.plan == expected
        # an access resolved for an account loaded some other way reads it with a query
        assert resolve_access(fresh(owner), Account.objects.get(pk=account.pk)).plan == expected


def test_a_plan_changed_since_shows_on_the_next_request(make_member):
    from accounts.access import access_or_404
    from billing.models import Subscription

    root = AccountFactory(plan_code="free")
    child = AccountFactory(parent=root)
    child_owner = make_member(child, RoleId.OWNER)
    before = access_or_404(fresh(child_owner), child.public_id)
    assert before.plan.code == "free"
    Subscription.objects.filter(account=root).update(plan=plan("agency"))
    assert access_or_404(fresh(child_owner), before.account.public_id).plan.code == "agency"
