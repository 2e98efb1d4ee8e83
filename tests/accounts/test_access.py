import pytest
from django.http import Http404

from accounts.access import resolve_access
from accounts.models import Account
from members.models import Membership
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


@pytest.mark.parametrize("depth", [1, 3, 5])
def test_a_page_s_account_comes_with_its_lineage_and_the_person_s_access_in_one_query(
        depth, make_member, django_assert_num_queries):
    """``access_or_404`` (every account page): the account, its ancestors, the person's memberships on them with
    their permission rows, in one query at any depth, and the same access as resolving an account loaded alone."""
    from accounts.access import access_or_404

    chain = account_chain(depth)
    admin = make_member(chain[0], RoleId.ADMIN)
    if depth > 1:
        make_member(chain[-2], RoleId.VIEWER, user=admin)  # a second membership on the lineage
    user = fresh(admin)
    with django_assert_num_queries(1):
        access = access_or_404(user, chain[-1].public_id)
    assert [a.pk for a in access.ancestors] == [a.pk for a in chain[:-1]]
    alone = resolve_access(fresh(admin), Account.objects.get(pk=chain[-1].pk))
    assert (access.permissions, access.role, access.inherited_from) == (
        alone.permissions, alone.role, alone.inherited_from)
    assert sorted(m.pk for m in access.memberships) == sorted(m.pk for m in alone.memberships)
    assert all(m.account in (*chain, access.account) for m in access.memberships)
    with pytest.raises(Http404):
        access_or_404(fresh(make_member(AccountFactory(), RoleId.OWNER)), chain[-1].public_id)


def test_an_account_loaded_for_one_person_is_no_pass_for_another(make_member):
    """The membership joined to a page's account is that person's: anyone else resolving access on the same
    object (a service checking another member, say) reads their own, and so does a second copy of the person."""
    from accounts.access import _account_with_lineage, access_or_404

    chain = account_chain(3)
    owner, stranger = make_member(chain[0], RoleId.OWNER), UserFactory()
    member_below = make_member(chain[2], RoleId.VIEWER)
    account = access_or_404(fresh(owner), chain[2].public_id).account
    assert resolve_access(fresh(stranger), account) is None
    # the account as loaded for the owner, before anything resolved it
    account = _account_with_lineage(chain[2].public_id, fresh(owner))
    assert resolve_access(fresh(stranger), account) is None
    assert resolve_access(fresh(owner), account).role.id == RoleId.OWNER
    assert resolve_access(fresh(member_below), account).role.id == RoleId.VIEWER
    page = access_or_404(fresh(stranger := make_member(chain[1], RoleId.MEMBER)), chain[2].public_id).account
    Membership.objects.filter(user=stranger).delete()  # removed while the request runs
    assert resolve_access(fresh(stranger), page) is None  # the copy of the person reads it again
    assert resolve_access(fresh(owner), page).role.id == RoleId.OWNER


def test_a_tree_deeper_than_the_depth_setting_still_resolves_every_ancestor(make_member, settings):
    """A lowered ``ACCOUNT_MAX_DEPTH`` leaves deeper accounts in place: their whole lineage still counts (its
    memberships and its security policies), read by path when the one-query lineage is not whole."""
    from accounts.access import access_or_404

    chain = account_chain(4)
    owner = make_member(chain[0], RoleId.OWNER)
    settings.ACCOUNT_MAX_DEPTH = 2
    access = access_or_404(fresh(owner), chain[3].public_id)
    assert [a.pk for a in access.ancestors] == [a.pk for a in chain[:3]] and access.role.id == RoleId.OWNER
    assert access_or_404(fresh(owner), chain[1].public_id).role.id == RoleId.OWNER
    with pytest.raises(Http404):
        access_or_404(fresh(make_member(chain[1], RoleId.OWNER)), chain[0].public_id)


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
