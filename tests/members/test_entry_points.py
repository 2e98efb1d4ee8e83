"""``Membership.below_own``, which the switcher's entry points read, follows the rule after whatever happens to
memberships and accounts: random memberships added and removed (one by one, by queryset, with their account),
subtrees moved within a tree and made independent (as billing transfers do), agency memberships; the migration
and ``refresh`` mend rows that are wrong."""

import random

import pytest
from django.apps import apps
from django.db import connection  # noqa: F401 (read by a skipif condition)

from accounts.models import STEPLEN, Account
from accounts.selectors import entry_points
from accounts.services import subtree_move
from agency.models import AgencyGrant
from members import entry_points as kept
from members.models import Membership
from members.roles import RoleId
from tests.factories import AccountFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def rule(membership: Membership, own_paths: set[str]) -> bool:
    path = membership.account.path
    return not membership.is_agency and any(path[:cut] in own_paths for cut in range(STEPLEN, len(path), STEPLEN))


def assert_follows_rule(users):
    for user in users:
        mine = list(Membership.objects.filter(user=user).select_related("account"))
        own = {m.account.path for m in mine if not m.is_agency}
        assert {m.pk: m.below_own for m in mine} == {m.pk: rule(m, own) for m in mine}
        tops = sorted((m for m in mine if not rule(m, own) and not m.is_agency),
                      key=lambda m: (m.account.name.lower(), m.account.path))
        in_force = set(Membership.objects.effective().filter(user=user).values_list("pk", flat=True))
        clients = sorted((m for m in mine if m.is_agency and m.pk in in_force),
                         key=lambda m: (m.account.name.lower(), m.account.path))
        assert [e.account.pk for e in entry_points(user)] == [m.account_id for m in tops + clients]


def grow(rng, roots=3, size=30):
    made = [AccountFactory(name=f"Root {i}") for i in range(roots)]
    for i in range(size):
        parent = Account.objects.get(pk=rng.choice([a for a in made if a.depth < 4]).pk)
        made.append(AccountFactory(parent=parent, name=f"Node {i}"))


@pytest.mark.parametrize("seed", range(5))
def test_the_flag_follows_the_rule_through_random_changes(seed):
    rng = random.Random(seed)
    grow(rng)
    users = [UserFactory() for _ in range(3)]
    agency = AccountFactory(name="Agency")
    for _step in range(40):
        accounts = list(Account.objects.exclude(pk=agency.pk))
        user = rng.choice(users)
        action = rng.choice(["add", "add", "add", "remove", "remove_qs", "move", "top", "delete_leaf", "agency"])
        if action == "add":
            account = rng.choice(accounts)
            if not Membership.objects.filter(user=user, account=account).exists():
                MembershipFactory(user=user, account=account, role=rng.choice([RoleId.MEMBER, RoleId.ADMIN]))
        elif action == "remove" and (m := Membership.objects.filter(user=user).order_by("?").first()):
            m.delete()
        elif action == "remove_qs":
            Membership.objects.filter(user=user, account__depth=rng.randint(1, 5)).delete()
        elif action in ("move", "top"):
            subs = [a for a in accounts if a.depth > 1]
            if not subs:
                continue
            account = rng.choice(subs)
            if action == "top":
                subtree_move(account, None)  # what an applied billing transfer does
                continue
            targets = [a for a in accounts if a.root_path == account.root_path and not a.path.startswith(account.path)
                       and a.pk != account.parent_id]
            rng.shuffle(targets)
            for target in targets:
                try:
                    subtree_move(account, Account.objects.get(pk=target.pk))
                    break
                except Exception:  # too deep there: try another
                    continue
        elif action == "delete_leaf":
            leaves = [a for a in accounts if a.numchild == 0 and a.depth > 1]
            if leaves:
                Account.objects.get(pk=rng.choice(leaves).pk).delete()
        elif action == "agency":
            client = rng.choice([a for a in accounts if a.depth == 1])
            if not Membership.objects.filter(user=user, account=client).exists():
                if not Membership.objects.filter(user=user, account=agency).exists():
                    MembershipFactory(user=user, account=agency, role=RoleId.ADMIN)
                AgencyGrant.objects.get_or_create(client=client, agency=agency, defaults={"status": "active"})
                Membership.objects.create(user=user, account=client, role=RoleId.AGENCY_ADMIN, is_agency=True,
                                          agency_account=agency)
        assert_follows_rule(users)


def test_refresh_mends_wrong_rows_and_changes_only_those():
    root = AccountFactory(name="Root")
    child = AccountFactory(parent=root, name="Child")
    grandchild = AccountFactory(parent=child, name="Grandchild")
    user = UserFactory()
    for account in (root, child, grandchild):
        MembershipFactory(user=user, account=account, role=RoleId.MEMBER)
    assert kept.refresh([user.pk]) == 0
    Membership.objects.filter(user=user).update(below_own=False)  # as rows written around the signals would be
    assert [e.account.pk for e in entry_points(user)] == [child.pk, grandchild.pk, root.pk]  # by name
    assert kept.refresh([user.pk]) == 2
    assert_follows_rule([user])
    assert [e.account.pk for e in entry_points(user)] == [root.pk]


def test_the_migration_fills_the_flag_for_existing_rows():
    from importlib import import_module

    fill = import_module("members.migrations.0009_membership_below_own").fill
    root = AccountFactory(name="Root")
    child = AccountFactory(parent=root, name="Child")
    users = [UserFactory(), UserFactory()]
    MembershipFactory(user=users[0], account=root, role=RoleId.MEMBER)
    MembershipFactory(user=users[0], account=child, role=RoleId.MEMBER)
    MembershipFactory(user=users[1], account=child, role=RoleId.MEMBER)
    Membership.objects.update(below_own=False)
    fill(apps, None)
    assert_follows_rule(users)
    assert Membership.objects.filter(below_own=True).count() == 1


def test_a_role_change_or_an_activity_stamp_reads_nothing_more(django_assert_num_queries):
    root = AccountFactory(name="Root")
    membership = MembershipFactory(user=UserFactory(), account=root, role=RoleId.MEMBER)
    membership.role = RoleId.ADMIN
    with django_assert_num_queries(1):  # the UPDATE alone: no refresh for what cannot change the flag
        membership.save(update_fields=["role"])


def test_after_a_commit_the_flags_are_decided_again_from_committed_memberships(make_member,
                                                                               django_capture_on_commit_callbacks):
    """The refresh inside a transaction cannot see another's uncommitted change to the same person (one removes a
    membership while the other adds one below it); each change refreshes the person again after its commit."""
    chain = [AccountFactory(name="Top")]
    chain.append(AccountFactory(parent=chain[0], name="Below"))
    person = UserFactory()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        below = make_member(chain[1], RoleId.MEMBER, user=person).memberships.get(account=chain[1])
        # what the other transaction's refresh left: flagged below a membership (on Top) that it saw, now gone
        Membership.objects.filter(pk=below.pk).update(below_own=True)
    assert callbacks
    assert Membership.objects.get(pk=below.pk).below_own is False
    assert [e.account.pk for e in entry_points(person)] == [chain[1].pk]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="two connections at once")
def test_two_transactions_changing_one_persons_memberships_at_once_leave_the_flags_right():
    """One adds a membership below the person's membership on Top while the other removes that one: the adding
    transaction's refresh still sees Top's (uncommitted removal) and flags the new one below it, the removing one's
    cannot see the new one. After both commit, the new membership is an entry point again."""
    import threading

    from django.db import connections, transaction

    top = AccountFactory(name="Top")
    below = AccountFactory(parent=top, name="Below")
    person = UserFactory()
    on_top = MembershipFactory(user=person, account=top)
    added, removed, failed = threading.Event(), threading.Event(), []

    def add_below():
        try:
            with transaction.atomic():
                MembershipFactory(user=person, account=Account.objects.get(pk=below.pk))
                added.set()
                removed.wait(10)  # the other transaction removes the membership on Top and commits first
        except Exception as error:  # noqa: BLE001 (reported by the test below)
            failed.append(error)
        finally:
            added.set()
            connections.close_all()

    worker = threading.Thread(target=add_below)
    worker.start()
    assert added.wait(10)
    with transaction.atomic():
        Membership.objects.get(pk=on_top.pk).delete()
    removed.set()
    worker.join(20)
    assert not failed
    assert Membership.objects.get(user=person, account=below).below_own is False
    assert [e.account.pk for e in entry_points(person)] == [below.pk]


def test_a_removal_and_a_move_refresh_the_flags_again_after_their_commit(make_member,
                                                                         django_capture_on_commit_callbacks):
    """The mirror of the race above (the adding transaction commits first: only the removal's refresh after its
    commit sees both), and an account move's refresh of the people below it."""
    top = AccountFactory(name="Top")
    below = AccountFactory(parent=top, name="Below")
    person = make_member(top, RoleId.MEMBER)
    on_below = MembershipFactory(user=person, account=below)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        Membership.objects.filter(user=person, account=top).delete()
        Membership.objects.filter(pk=on_below.pk).update(below_own=True)  # as the concurrent refresh left it
    assert callbacks and Membership.objects.get(pk=on_below.pk).below_own is False
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        kept.refresh_subtree(top.path)
        Membership.objects.filter(pk=on_below.pk).update(below_own=True)
    assert callbacks and Membership.objects.get(pk=on_below.pk).below_own is False
