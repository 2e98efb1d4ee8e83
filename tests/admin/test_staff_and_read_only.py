"""Staff roles (Support, Billing), models that nobody changes in the admin, and Stripe's models out of the way."""

import pytest
from django.contrib import admin
from django.contrib.admin.sites import AdminSite
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.models import AuditEvent
from billing.admin import hide_stripe_models_unless_configured
from members.staff import BILLING, SUPPORT, sync_staff_groups
from tests.factories import AccountFactory, MembershipFactory, plan

pytestmark = pytest.mark.django_db

MODELS = {f"{m._meta.app_label}_{m._meta.model_name}": m for m in admin.site._registry}
CHANGELISTS = sorted(MODELS)
BILLING_MODELS = ["billing_plan", "billing_subscription", "billing_invoice", "billing_usagerecord",
                  "billing_billingtransfer"]
# Money and history: nobody adds, changes or deletes them in the admin, superusers included.
READ_ONLY = ["billing_invoice", "billing_usagerecord", "billing_billingtransfer", "workspace_conversation",
             "workspace_agent", "workspace_contact", "accounts_auditevent", "agency_agencysettings",
             "agency_agencybaseline", "agency_agencygrant", "members_invitation"]


@pytest.fixture
def one_of_each(platform):
    platform.add(10)
    return {name: MODELS[name].objects.order_by("pk").first() for name in CHANGELISTS}


def perms(group_name):
    return {f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(name=group_name).permissions.all()}


class TestGroups:
    def test_sync_is_idempotent_and_exact(self):
        sync_staff_groups()
        first = (perms(SUPPORT), perms(BILLING))
        Group.objects.get(name=SUPPORT).permissions.add(
            *Group.objects.get(name=BILLING).permissions.filter(codename="change_plan"))  # by hand: undone
        sync_staff_groups()
        assert (perms(SUPPORT), perms(BILLING)) == first
        assert Group.objects.filter(name__in=[SUPPORT, BILLING]).count() == 2

    def test_what_each_group_holds(self):
        sync_staff_groups()
        support, billing = perms(SUPPORT), perms(BILLING)
        assert {"accounts.change_account", "members.change_membership", "members.change_invitation",
                "agency.change_agencygrant", "billing.view_invoice", "djstripe.view_customer"} <= support
        assert not {p for p in support if p.split(".")[0] in ("billing", "djstripe") and ".view_" not in p}
        assert {"members.change_user", "auth.change_group", "accounts.delete_account"}.isdisjoint(support)
        assert support < billing
        assert {"billing.change_plan", "billing.add_invoice", "billing.add_billingtransfer",
                "billing.change_subscription", "djstripe.change_customer"} <= billing
        assert {"members.change_user", "auth.change_group"}.isdisjoint(billing)
        # The tenant permissions of Account.Meta are object permissions, never held model-wide.
        assert not {p for p in billing if p.split(".")[1] in ("manage_billing", "view_agents", "manage_members")}

    def test_migrate_keeps_them(self):
        """The groups exist after migrating (the receiver runs on post_migrate)."""
        from django.core.management import call_command

        Group.objects.filter(name__in=[SUPPORT, BILLING]).delete()
        call_command("migrate", "members", verbosity=0)
        assert perms(SUPPORT) and perms(BILLING)


@pytest.mark.parametrize("name", CHANGELISTS)
def test_support_opens_every_changelist_and_change_page(name, one_of_each, support_client):
    assert support_client.get(reverse(f"admin:{name}_changelist")).status_code == 200
    if one_of_each[name] is None:  # sign-in records that the bulk platform does not make
        assert MODELS[name]._meta.app_label in ("account", "mfa", "usersessions", "security"), name
        return
    assert support_client.get(reverse(f"admin:{name}_change", args=[one_of_each[name].pk])).status_code == 200


@pytest.mark.parametrize("name", BILLING_MODELS)
def test_support_changes_nothing_about_billing(name, one_of_each, support_client):
    obj = one_of_each[name]
    assert support_client.get(reverse(f"admin:{name}_add")).status_code == 403
    assert support_client.post(reverse(f"admin:{name}_change", args=[obj.pk]), {}).status_code == 403
    assert support_client.get(reverse(f"admin:{name}_delete", args=[obj.pk])).status_code == 403


def test_billing_staff_change_plans_and_subscriptions(one_of_each, billing_client):
    assert billing_client.get(reverse("admin:billing_plan_add")).status_code == 200
    subscription = one_of_each["billing_subscription"]
    url = reverse("admin:billing_subscription_change", args=[subscription.pk])
    response = billing_client.post(url, {"plan": plan("pro").pk})
    assert response.status_code == 302
    subscription.refresh_from_db()
    # Through billing.plans: a downgrade (Agency → Pro) waits for the next period, unless the tree has
    # subaccounts the plan lacks (then it is refused); an upgrade applies at once.
    from billing.models import PlanChange

    assert subscription.plan.code == "agency"
    assert PlanChange.objects.get(account=subscription.account).status == "scheduled"
    # the customer's trail names the staff member, not "system"
    event = AuditEvent.objects.get(account=subscription.account, action="billing.plan_change_scheduled")
    assert (event.actor, event.data.get("staff")) == (response.wsgi_request.user, True)


def test_support_changes_account_status_and_memberships(one_of_each, support_client):
    account = AccountFactory(name="Helped")
    member = MembershipFactory(account=account)
    assert support_client.get(reverse("admin:accounts_account_change", args=[account.pk])).context[
        "has_change_permission"]
    assert support_client.get(reverse("admin:members_membership_change", args=[member.pk])).context[
        "has_change_permission"]
    assert support_client.get(reverse("admin:accounts_account_add")).status_code == 403
    assert support_client.get(reverse("admin:accounts_account_delete", args=[account.pk])).status_code == 403
    assert support_client.get(reverse("admin:members_user_add")).status_code == 403


@pytest.mark.parametrize("name", READ_ONLY)
def test_read_only_models_refuse_add_change_and_delete(name, one_of_each, staff_client):
    obj = one_of_each[name]
    change = reverse(f"admin:{name}_change", args=[obj.pk])
    assert staff_client.get(change).status_code == 200  # viewable
    assert staff_client.post(change, {}).status_code == 403
    assert staff_client.get(reverse(f"admin:{name}_add")).status_code == 403
    assert staff_client.get(reverse(f"admin:{name}_delete", args=[obj.pk])).status_code == 403
    action_form = staff_client.get(reverse(f"admin:{name}_changelist")).context["action_form"]
    assert action_form is None or "delete_selected" not in dict(action_form.fields["action"].choices)


class TestStripeModels:
    def test_hidden_from_the_admin_without_keys(self, staff_client, settings):
        assert not settings.STRIPE_SECRET_KEY
        assert not [m for m in admin.site._registry if m._meta.app_label == "djstripe"]
        assert "djstripe" not in staff_client.get(reverse("admin:index")).content.decode()

    def test_kept_in_their_own_section_with_keys(self, settings):
        from djstripe.models import Customer

        site = AdminSite(name="probe")
        site.register(Customer)
        settings.STRIPE_SECRET_KEY = "sk_test_configured"
        assert hide_stripe_models_unless_configured(site) == []
        assert site.is_registered(Customer)
        settings.STRIPE_SECRET_KEY = ""
        assert hide_stripe_models_unless_configured(site) == [Customer]
        assert not site.is_registered(Customer)


def test_security_policies_and_support_access_are_read_only_in_the_admin(staff_client):
    """Policies are set by an account's Owners and Admins, support access decided by its Owner: the admin
    shows them and changes nothing."""
    from security.models import SecurityPolicy, SupportAccess
    from tests.factories import AccountFactory, UserFactory

    account = AccountFactory(name="Policy Co")
    policy = SecurityPolicy.objects.create(account=account, require_mfa="admins", allowed_email_domains=["policy.test"])
    support = SupportAccess.objects.create(account=account, requested_by=UserFactory(is_staff=True), level="read",
                                           reason="Calls drop after the greeting", hours=24)
    listing = staff_client.get(reverse("admin:security_securitypolicy_changelist")).content.decode()
    assert "Policy Co" in listing and "policy.test" in listing
    assert "Policy Co" in staff_client.get(reverse("admin:security_supportaccess_changelist")).content.decode()
    for name, obj in (("securitypolicy", policy), ("supportaccess", support)):
        assert staff_client.get(reverse(f"admin:security_{name}_add")).status_code == 403
        response = staff_client.post(reverse(f"admin:security_{name}_change", args=[obj.pk]), {"status": "active"})
        assert response.status_code in (200, 403)
        deleting = staff_client.post(reverse(f"admin:security_{name}_delete", args=[obj.pk]), {"post": "yes"})
        assert deleting.status_code == 403
    support.refresh_from_db()
    assert support.status == SupportAccess.Status.REQUESTED and SecurityPolicy.objects.filter(pk=policy.pk).exists()
