import datetime

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


def test_the_account_s_own_joined_membership_is_no_pass_for_another(make_member):
    """The membership joined to the account itself (not its ancestors') is the loader's only (found by review)."""
    from accounts.access import _account_with_lineage

    chain = account_chain(3)
    owner, stranger = make_member(chain[2], RoleId.OWNER), UserFactory()
    account = _account_with_lineage(chain[2].public_id, fresh(owner))
    assert resolve_access(fresh(stranger), account) is None
    top = _account_with_lineage(chain[0].public_id, fresh(make_member(chain[0], RoleId.OWNER)))
    assert resolve_access(fresh(stranger), top) is None


def test_a_joined_membership_is_field_for_field_what_the_database_holds(make_member):
    """Datetimes, booleans and UUIDs as a plain read gives them (services may save the membership)."""
    from accounts.access import access_or_404

    chain = account_chain(3)
    u = make_member(chain[0], RoleId.ADMIN)
    make_member(chain[2], RoleId.VIEWER, user=u)
    Membership.objects.filter(user=u).update(last_active_at=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC))
    for _ in range(2):
        access = access_or_404(fresh(u), chain[2].public_id)
        for m in access.memberships:
            db = Membership.objects.get(pk=m.pk)
            for f in Membership._meta.concrete_fields:
                a, b = getattr(m, f.attname), getattr(db, f.attname)
                assert (type(a), a) == (type(b), b), f.attname


@pytest.mark.parametrize("include", [False, True])
def test_support_window_of_an_ancestor_reaches_a_subaccount_page_only_when_it_includes_subaccounts(make_member,
                                                                                                  include):
    from security import support as svc
    from security.models import SupportAccess
    from security.policy import effective_policy

    root = AccountFactory()
    acme = AccountFactory(parent=root)
    below = AccountFactory(parent=acme)
    owner, member = make_member(acme, RoleId.OWNER), make_member(below, RoleId.MEMBER)
    staff = UserFactory(is_staff=True)
    request = svc.support_request(account=acme, by=fresh(staff), level=SupportAccess.Level.READ,
                                  reason="Customer reports calls dropping", hours=4)
    svc.support_decide(support=request, approve=True, by=fresh(owner), include_subaccounts=include)
    from accounts.access import access_or_404

    access = access_or_404(fresh(member), below.public_id)
    windows = effective_policy(access.account, access.ancestors).support
    assert [w.source.pk for w in windows] == ([acme.pk] if include else [])
    # the same as an account loaded elsewhere
    alone = resolve_access(fresh(member), Account.objects.get(pk=below.pk))
    assert [w.source.pk for w in effective_policy(alone.account, alone.ancestors).support] == [
        w.source.pk for w in windows]
    # and on acme's own page the window shows either way
    acc = access_or_404(fresh(owner), acme.public_id)
    assert [w.source.pk for w in effective_policy(acc.account, acc.ancestors).support] == [acme.pk]


def test_under_an_api_key_a_page_s_access_is_what_resolving_alone_gives(make_member):
    """Every key account and target of a chain: the page's access equals an account loaded on its own."""
    from accounts.access import AccessCeiling, access_or_404
    chain = account_chain(3)
    u = make_member(chain[0], RoleId.ADMIN)
    make_member(chain[2], RoleId.VIEWER, user=u)

    def with_ceiling(key_account):
        person = fresh(u)
        person.access_ceiling = AccessCeiling(account=Account.objects.get(pk=key_account.pk), scopes={}, label="k")
        return person

    for c in chain[1:]:
        for target in chain:
            got = None
            try:
                got = access_or_404(with_ceiling(c), target.public_id)
            except Http404:
                pass
            alone = resolve_access(with_ceiling(c), Account.objects.get(pk=target.pk))
            assert (got and got.permissions) == (alone and alone.permissions)
