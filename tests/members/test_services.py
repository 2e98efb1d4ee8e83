import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from accounts.models import AccountUserObjectPermission
from members.models import Membership
from members.roles import ROLES, RoleId, assignable_roles
from members.services import membership_add, membership_change_role, membership_remove, user_signup
from tests.factories import AccountFactory, UserFactory

pytestmark = pytest.mark.django_db


def rows(user, account):
    return set(
        AccountUserObjectPermission.objects.filter(user=user, content_object=account).values_list(
            "permission__codename", flat=True
        )
    )


@pytest.mark.parametrize("role", list(ROLES))
def test_membership_writes_exactly_the_roles_permission_rows(role):
    account, user = AccountFactory(), UserFactory()
    membership_add(account=account, user=user, role=role, by=None)
    assert rows(user, account) == set(ROLES[role].permissions)


def test_role_matrix_matches_the_product():
    owner, admin, agency, member, viewer = (ROLES[r].permissions for r in
                                            ("owner", "admin", "agency_admin", "member", "viewer"))
    assert "manage_billing" in owner and "manage_billing" in admin and "manage_billing" not in agency
    assert "delete_agents" not in member and "manage_agents" in member
    assert "manage_agents" not in viewer and "view_agents" in viewer
    assert "view_developer_tools" in member and "view_developer_tools" not in viewer
    assert "manage_members" not in member


def test_changing_a_role_resyncs_rows_and_removal_deletes_them():
    account, user = AccountFactory(), UserFactory()
    membership_add(account=account, user=UserFactory(), role=RoleId.OWNER, by=None)
    m = membership_add(account=account, user=user, role=RoleId.ADMIN, by=None)
    membership_change_role(membership=m, role=RoleId.VIEWER, by=None)
    assert rows(user, account) == set(ROLES["viewer"].permissions)
    membership_remove(membership=m, by=None)
    assert rows(user, account) == set()
    assert account.audit_events.filter(action="member.removed").exists()


def test_the_last_owner_cannot_be_removed_or_demoted():
    account, owner = AccountFactory(name="Solo"), UserFactory()
    m = membership_add(account=account, user=owner, role=RoleId.OWNER, by=None)
    with pytest.raises(ValidationError, match="last Owner"):
        membership_change_role(membership=m, role=RoleId.ADMIN, by=None)
    with pytest.raises(ValidationError, match="last Owner"):
        membership_remove(membership=m, by=owner)  # not even by leaving
    m.refresh_from_db()
    assert m.role == RoleId.OWNER


def test_with_two_owners_one_may_step_down():
    account = AccountFactory()
    first = membership_add(account=account, user=UserFactory(), role=RoleId.OWNER, by=None)
    membership_add(account=account, user=UserFactory(), role=RoleId.OWNER, by=None)
    membership_change_role(membership=first, role=RoleId.ADMIN, by=None)
    assert Membership.objects.filter(account=account, role=RoleId.OWNER).count() == 1


def test_an_admin_cannot_grant_owner_or_touch_an_owner():
    account = AccountFactory()
    owner = UserFactory()
    owner_m = membership_add(account=account, user=owner, role=RoleId.OWNER, by=None)
    admin = UserFactory()
    membership_add(account=account, user=admin, role=RoleId.ADMIN, by=None)
    with pytest.raises(PermissionDenied, match="cannot grant the Owner role"):
        membership_add(account=account, user=UserFactory(), role=RoleId.OWNER, by=admin)
    with pytest.raises(PermissionDenied):
        membership_change_role(membership=owner_m, role=RoleId.MEMBER, by=admin)
    with pytest.raises(PermissionDenied):
        membership_remove(membership=owner_m, by=admin)
    # lower or equal roles are fine
    membership_add(account=account, user=UserFactory(), role=RoleId.ADMIN, by=admin)


def test_assignable_roles_are_lower_or_equal():
    assert [r.id for r in assignable_roles("admin")] == ["admin", "agency_admin", "member", "viewer"]
    assert [r.id for r in assignable_roles("viewer")] == ["viewer"]
    assert "owner" in [r.id for r in assignable_roles("owner")]


def test_adding_the_same_person_twice_is_refused():
    account, user = AccountFactory(), UserFactory()
    membership_add(account=account, user=user, role=RoleId.MEMBER, by=None)
    with pytest.raises(ValidationError, match="already a member"):
        membership_add(account=account, user=user, role=RoleId.ADMIN, by=None)


def test_signup_creates_person_account_and_owner_membership():
    user, account = user_signup(email="New@Example.test", name="New", password="a-long-password-1",
                                account_name="New Co")
    assert user.email == "new@example.test"
    assert account.is_root() and account.name == "New Co"
    assert Membership.objects.get(account=account).role == RoleId.OWNER
    assert user.last_account == account
