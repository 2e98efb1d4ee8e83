import pytest
from django.urls import reverse

from accounts.models import Account
from members.models import Membership
from members.roles import RoleId
from tests.factories import AccountFactory, UserFactory, account_tree

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_account_changelist_query_count_is_constant(staff_client, count_queries):
    counts = []
    for n in (5, 50):
        account_tree(breadth=n)
        counts.append(count_queries(lambda: staff_client.get(reverse("admin:accounts_account_changelist"))))
        assert count_queries.last_result.status_code == 200
    assert counts[0] == counts[1]


def test_account_search_by_name_and_id_and_filter_by_depth(staff_client):
    root = AccountFactory(name="Findable Root")
    child = AccountFactory(parent=root, name="Findable Child")
    url = reverse("admin:accounts_account_changelist")
    by_name = staff_client.get(url, {"q": "findable"}).context["cl"].result_list
    assert set(by_name) == {root, child}
    by_id = staff_client.get(url, {"q": str(child.public_id)}).context["cl"].result_list
    assert list(by_id) == [child]
    assert list(staff_client.get(url, {"depth": 2}).context["cl"].result_list) == [child]


def test_admin_refuses_to_delete_an_account_with_subaccounts(staff_client):
    parent = AccountFactory(name="Parent")
    AccountFactory(parent=parent)
    url = reverse("admin:accounts_account_delete", args=[parent.pk])
    page = staff_client.get(url)
    assert "still has 1 subaccount" in page.content.decode()
    staff_client.post(url, {"post": "yes"})
    assert Account.objects.filter(pk=parent.pk).exists()


def test_admin_bulk_delete_keeps_parents(staff_client):
    parent = AccountFactory(name="Parent")
    leaf = AccountFactory(parent=parent)
    lonely = AccountFactory(name="Lonely")
    staff_client.post(reverse("admin:accounts_account_changelist"), {
        "action": "delete_selected", "_selected_action": [parent.pk, lonely.pk], "post": "yes",
    })
    assert Account.objects.filter(pk__in=[parent.pk, leaf.pk]).count() == 2


def test_admin_creates_subaccounts_through_the_service(staff_client):
    parent = AccountFactory(name="Parent")
    response = staff_client.post(reverse("admin:accounts_account_add"), {
        "name": "Via admin", "parent": parent.pk, "status": "active",
    })
    assert response.status_code == 302
    child = Account.objects.get(name="Via admin")
    assert child.parent == parent and child.depth == 2 and child.path.startswith(parent.path)


def test_membership_admin_protects_the_last_owner(staff_client):
    account = AccountFactory()
    owner = Membership.objects.create(account=account, user=UserFactory(), role=RoleId.OWNER)
    staff_client.post(reverse("admin:members_membership_delete", args=[owner.pk]), {"post": "yes"}, follow=True)
    assert Membership.objects.filter(pk=owner.pk).exists()


@pytest.mark.parametrize("name", ["admin:accounts_account_changelist", "admin:members_membership_changelist",
                                  "admin:members_user_changelist", "admin:accounts_auditevent_changelist"])
def test_admin_pages_load(staff_client, name):
    AccountFactory()
    assert staff_client.get(reverse(name)).status_code == 200


def test_guardian_object_permissions_page_on_account(staff_client):
    account = AccountFactory()
    assert staff_client.get(reverse("admin:accounts_account_permissions", args=[account.pk])).status_code == 200


def test_tenant_users_cannot_open_the_admin(client):
    client.force_login(UserFactory())
    assert client.get(reverse("admin:index")).status_code == 302
