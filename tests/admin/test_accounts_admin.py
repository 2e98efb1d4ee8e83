import datetime

import pytest
import time_machine
from django.urls import reverse

from accounts.models import Account, AccountUserObjectPermission, AuditEvent
from billing.models import Invoice
from members.roles import RoleId
from tests.admin.helpers import change_form, messages_of
from tests.factories import AccountFactory, MembershipFactory, UserFactory, plan

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:accounts_account_changelist"


def rows(client, **params):
    response = client.get(reverse(CHANGELIST), params)
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


@pytest.fixture
def tree(db):
    """Acme (root, Pro) with an Owner, its subaccount Sales (own Owner) and Sales' EMEA; Globex beside it."""
    acme = AccountFactory(name="Acme", plan_code="pro")
    owner = UserFactory(email="carla@acme.example")
    MembershipFactory(account=acme, user=owner, role=RoleId.OWNER)
    MembershipFactory(account=acme, role=RoleId.MEMBER)
    sales = AccountFactory(parent=acme, name="Sales")
    MembershipFactory(account=sales, user=UserFactory(email="sam@sales.example"), role=RoleId.OWNER)
    emea = AccountFactory(parent=sales, name="EMEA")
    globex = AccountFactory(name="Globex")
    return dict(acme=Account.objects.get(pk=acme.pk), sales=Account.objects.get(pk=sales.pk), emea=emea,
                globex=globex, owner=owner)


class TestChangelist:
    def test_rows_show_path_billing_plan_owner_and_counts(self, tree, staff_client):
        by_name = {a.name: a for a in rows(staff_client)}
        admin_page = staff_client.get(reverse(CHANGELIST)).content.decode()
        assert by_name["EMEA"].ancestor_names == ["Acme", "Sales"]
        assert "Acme › Sales" in admin_page
        assert by_name["Acme"].owner_email == "carla@acme.example" and by_name["Acme"].member_count == 2
        assert by_name["Acme"].plan_name == "Pro" and by_name["EMEA"].plan_name == "Pro"
        assert "Pro (parent billing)" in admin_page
        assert by_name["Sales"].owner_email == "sam@sales.example"
        assert by_name["EMEA"].owner_email is None and by_name["EMEA"].member_count == 0

    @pytest.mark.parametrize("term", ["carla@acme.example", "CARLA@acme.example"])
    def test_search_by_owner_email_finds_the_account(self, tree, staff_client, term):
        assert rows(staff_client, q=term) == [tree["acme"]]

    def test_search_by_a_plain_members_email_finds_nothing(self, tree, staff_client):
        member_email = tree["acme"].memberships.get(role=RoleId.MEMBER).user.email
        assert rows(staff_client, q=member_email) == []

    def test_search_by_name_public_id_and_external_id(self, tree, staff_client):
        Account.objects.filter(pk=tree["sales"].pk).update(external_id="crm-42")
        assert rows(staff_client, q="sales") == [tree["sales"]]
        assert rows(staff_client, q=str(tree["emea"].public_id)) == [tree["emea"]]
        assert rows(staff_client, q="crm-42") == [tree["sales"]]

    def test_filters(self, tree, staff_client):
        AccountFactory(name="Free one", plan_code="free")
        assert {a.name for a in rows(staff_client, depth=3)} == {"EMEA"}
        assert {a.name for a in rows(staff_client, billing="parent")} == {"Sales", "EMEA"}
        assert {a.name for a in rows(staff_client, billing="direct")} == {"Acme", "Globex", "Free one"}
        assert {a.name for a in rows(staff_client, plan="pro")} == {"Acme", "Sales", "EMEA"}
        assert {a.name for a in rows(staff_client, plan="free")} == {"Free one"}
        Account.objects.filter(pk=tree["globex"].pk).update(status="suspended")
        assert {a.name for a in rows(staff_client, status__exact="suspended")} == {"Globex"}

    def test_the_count_stops_at_the_cap(self, tree, staff_client, monkeypatch):
        from accounts.admin import CappedCountPaginator

        monkeypatch.setattr(CappedCountPaginator, "cap", 3)
        page = staff_client.get(reverse(CHANGELIST))
        assert page.context["cl"].result_count == 4 and "More than 3 accounts" in page.content.decode()


class TestSuspendInTwoClicks:
    def test_find_by_owner_email_then_suspend_with_a_reason(self, tree, support_client):
        listing = support_client.get(reverse(CHANGELIST), {"q": "carla@acme.example"}).content.decode()
        status_url = reverse("admin:accounts_account_status", args=[tree["acme"].pk])
        assert f'href="{status_url}"' in listing  # the row's "Suspend…" link
        confirmation = support_client.get(status_url)  # click 1
        assert confirmation.status_code == 200 and "Yes, suspend" in confirmation.content.decode()
        assert Account.objects.get(pk=tree["acme"].pk).status == "active"  # a GET changes nothing
        response = support_client.post(status_url, {"apply": "yes", "reason": "Chargeback"})  # click 2
        assert response.status_code == 302
        assert Account.objects.get(pk=tree["acme"].pk).is_suspended
        event = AuditEvent.objects.get(account=tree["acme"], action="account.suspended")
        assert event.actor == response.wsgi_request.user and event.data["reason"] == "Chargeback"
        assert any("Acme suspended" in m for m in messages_of(response))

    def test_the_change_page_has_the_button_and_reactivates(self, tree, staff_client):
        Account.objects.filter(pk=tree["sales"].pk).update(status="suspended")
        status_url = reverse("admin:accounts_account_status", args=[tree["sales"].pk])
        page = staff_client.get(reverse("admin:accounts_account_change", args=[tree["sales"].pk])).content.decode()
        assert status_url in page and "Reactivate…" in page
        staff_client.post(status_url, {"apply": "yes"})
        assert Account.objects.get(pk=tree["sales"].pk).status == "active"
        assert AuditEvent.objects.filter(account=tree["sales"], action="subaccount.reactivated").exists()

    def test_view_only_staff_cannot_suspend(self, tree, client):
        from django.contrib.auth.models import Permission

        viewer = UserFactory(is_staff=True)
        viewer.user_permissions.add(Permission.objects.get(codename="view_account", content_type__app_label="accounts"))
        client.force_login(viewer)
        status_url = reverse("admin:accounts_account_status", args=[tree["acme"].pk])
        assert client.post(status_url, {"apply": "yes"}).status_code == 403
        assert Account.objects.get(pk=tree["acme"].pk).status == "active"


class TestStatusActions:
    def test_suspend_selected_asks_for_a_reason_then_suspends(self, tree, staff_client):
        data = {"action": "suspend_selected", "_selected_action": [tree["acme"].pk, tree["globex"].pk]}
        page = staff_client.post(reverse(CHANGELIST), data)
        assert page.status_code == 200 and "Suspend 2 accounts" in page.content.decode()
        assert not Account.objects.filter(status="suspended").exists()
        done = staff_client.post(reverse(CHANGELIST), {**data, "apply": "yes", "reason": "Fraud"})
        assert done.status_code == 302
        assert set(Account.objects.filter(status="suspended").values_list("name", flat=True)) == {"Acme", "Globex"}
        assert AuditEvent.objects.filter(action="account.suspended", data__reason="Fraud").count() == 2

    def test_reactivate_selected(self, tree, staff_client):
        Account.objects.filter(pk=tree["emea"].pk).update(status="suspended")
        staff_client.post(reverse(CHANGELIST), {"action": "reactivate_selected", "apply": "yes",
                                                "_selected_action": [tree["emea"].pk]})
        assert Account.objects.get(pk=tree["emea"].pk).status == "active"


class TestBillingActions:
    @time_machine.travel(datetime.datetime(2026, 3, 10, 12, tzinfo=datetime.UTC), tick=False)
    def test_billing_staff_close_last_period(self, tree, billing_client):
        response = billing_client.post(reverse(CHANGELIST), {"action": "close_last_period",
                                                             "_selected_action": [tree["acme"].pk]})
        assert response.status_code == 302
        assert Invoice.objects.get(account=tree["acme"]).period == datetime.date(2026, 2, 1)
        assert "February 2026: 1 invoice(s) closed, 0 already closed." in messages_of(response)

    def test_support_staff_cannot_close_a_period_or_start_a_transfer(self, tree, support_client):
        page = support_client.get(reverse(CHANGELIST))
        offered = [name for name, _ in page.context["action_form"].fields["action"].choices]
        assert "suspend_selected" in offered
        assert "close_last_period" not in offered and "start_billing_transfer" not in offered
        for action in ("close_last_period", "start_billing_transfer"):
            support_client.post(reverse(CHANGELIST), {"action": action, "apply": "yes",
                                                      "_selected_action": [tree["sales"].pk]})
        assert not Invoice.objects.exists()
        from billing.models import BillingTransfer

        assert not BillingTransfer.objects.exists()

    def test_billing_staff_are_offered_the_billing_actions(self, tree, billing_client):
        offered = [name for name, _ in
                   billing_client.get(reverse(CHANGELIST)).context["action_form"].fields["action"].choices]
        assert {"close_last_period", "start_billing_transfer"} <= set(offered)


class TestChangesGoThroughServices:
    def test_a_rename_is_audited(self, tree, staff_client):
        url = reverse("admin:accounts_account_change", args=[tree["sales"].pk])
        response = staff_client.post(url, change_form(staff_client, tree["sales"], name="Sales team"))
        assert response.status_code == 302, response.context["adminform"].form.errors
        assert Account.objects.get(pk=tree["sales"].pk).name == "Sales team"
        event = AuditEvent.objects.get(account=tree["sales"], action="account.renamed")
        assert (event.actor, event.data.get("staff")) == (response.wsgi_request.user, True)  # not "system"

    def test_a_limit_above_the_parents_saves_nothing(self, tree, staff_client):
        Account.objects.filter(pk=tree["acme"].pk).update(limit_agents=5)
        url = reverse("admin:accounts_account_change", args=[tree["sales"].pk])
        response = staff_client.post(url, change_form(staff_client, tree["sales"], name="Renamed",
                                                     limit_agents=10), follow=True)
        sales = Account.objects.get(pk=tree["sales"].pk)
        assert sales.name == "Sales" and sales.limit_agents is None  # all or nothing
        assert any(m.startswith("Nothing was saved:") and "5" in m for m in messages_of(response))

    def test_a_bad_category_level_is_a_field_error(self, tree, staff_client):
        url = reverse("admin:accounts_account_change", args=[tree["sales"].pk])
        response = staff_client.post(url, change_form(staff_client, tree["sales"],
                                                     access_categories='{"usage": "full"}'))
        assert response.status_code == 200
        assert "Usage cannot be set to Full" in str(response.context["adminform"].form.errors)

    def test_a_root_added_in_the_admin_gets_the_default_plan(self, staff_client):
        plan("free")
        staff_client.post(reverse("admin:accounts_account_add"), {"name": "Walk-in"})
        account = Account.objects.get(name="Walk-in")
        assert account.subscription.plan.code == "free"


def test_permission_rows_cannot_be_written_by_hand(tree, staff_client):
    """Rows follow memberships (members.rows): guardian's pages stay readable, never writable."""
    stranger = UserFactory()
    url = reverse("admin:accounts_account_permissions_manage_user", args=[tree["acme"].pk, stranger.pk])
    response = staff_client.post(url, {"permissions": ["manage_billing"]})
    assert response.status_code == 403
    assert not AccountUserObjectPermission.objects.filter(user=stranger).exists()
    assert staff_client.get(reverse("admin:accounts_account_permissions", args=[tree["acme"].pk])).status_code == 200


def test_an_account_with_history_can_still_be_deleted_by_staff(staff_client):
    lonely = AccountFactory(name="Lonely")
    MembershipFactory(account=lonely, role=RoleId.OWNER)
    AuditEvent.objects.create(account=lonely, action="x", summary="x")
    staff_client.post(reverse("admin:accounts_account_delete", args=[lonely.pk]), {"post": "yes"})
    assert not Account.objects.filter(pk=lonely.pk).exists()
