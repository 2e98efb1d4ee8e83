"""An independent review of issue 12 (provisioning, ops commands, admin): each test failed at commit 8832206 and
has held since its fix."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import Account
from accounts.provisioning import export_rows, provision, write_export
from billing.models import Subscription
from members.models import Invitation, Membership
from members.roles import RoleId
from tests.factories import AccountFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_user(db):
    from django.contrib.auth.models import Group

    from members.staff import sync_staff_groups

    def make(group_name):
        sync_staff_groups()
        user = UserFactory(is_staff=True)
        user.groups.add(Group.objects.get(name=group_name))
        return user

    return make


@pytest.fixture
def agency():
    return AccountFactory(name="Northwind", external_id="nw")


# --- F1: a plan change through provisioning ignores the "subaccounts need a plan that allows them" rule ---------

def test_f1_plan_downgrade_of_a_root_that_has_subaccounts_is_refused(agency):
    AccountFactory(parent=agency, name="Acme")
    report = provision("external_id,name,plan\nnw,Northwind,free\n", fmt="csv", dry_run=True)
    # billing.transfers.plan_refusal refuses this elsewhere; provisioning plans an update and applies it.
    assert any(p.column == "plan" for p in report.problems), [o.changes for o in report.outcomes]
    provision("external_id,name,plan\nnw,Northwind,free\n", fmt="csv")
    assert Subscription.objects.get(account=agency).plan.code == "agency"


# --- F2: dry run says "create", apply fails: an external_id reused in the same tree under a NEW parent row --------

def test_f2_external_id_already_used_in_the_tree_under_a_new_parent_row_is_a_check_problem(agency):
    AccountFactory(parent=agency, name="Old Branch", external_id="x1")
    text = "external_id,name,parent\nnew1,New Branch,nw\nx1,Leaf,new1\n"
    report = provision(text, fmt="csv", dry_run=True)
    # HEAD: no problem, {"create": 2}; the real run then hits the (root, external_id) unique constraint and
    # raises ProvisioningConflict "another run or a page created one at the same moment" -- misleading.
    assert any(p.line == 3 and p.column == "external_id" for p in report.problems), report.counts
    provision(text, fmt="csv")  # must not raise: with the problem reported it simply writes nothing


# --- F3: dry run says "update ... invited", apply fails: the member limit is not checked for an added owner -------

def test_f3_owner_added_to_a_full_account_is_a_check_problem(agency):
    full = AccountFactory(parent=agency, name="Full Co", external_id="full", limit_members=1)
    MembershipFactory(account=full, role=RoleId.OWNER)
    text = "external_id,name,parent,owner_email\nfull,Full Co,nw,new@example.com\n"
    report = provision(text, fmt="csv", dry_run=True)
    assert report.problems, f"dry run promised: {report.summary()} {[o.changes for o in report.outcomes]}"


# --- F4: a malformed JSON file crashes instead of being reported ---------------------------------------------------

@pytest.mark.parametrize("text", ['[{"external_id": "c1", "name": "Acme", "limit_minutes": ' + "9" * 5000 + "}]",
                                  "[" * 100_000], ids=["5000-digit number", "deep nesting"])
def test_f4_malformed_json_is_a_problem_not_a_traceback(agency, text):
    report = provision(text, fmt="json", dry_run=True)  # HEAD: ValueError / RecursionError (admin: HTTP 500)
    assert report.problems


# --- F5: CSV export -> provision is not a round trip for a name that starts with an apostrophe ------------------

def test_f5_a_name_starting_with_quote_and_formula_char_round_trips(agency):
    provision("external_id,name,parent\nq1,'=Quoted,nw\n", fmt="csv")
    account = Account.objects.get(external_id="q1")
    # The customer wrote '=Quoted (already neutralised, or a real apostrophe); it is stored as =Quoted ...
    buffer = io.StringIO()
    Account.objects.filter(pk=account.pk).update(name="'+1 Team")  # a name a person typed on the page
    write_export(export_rows(Account.objects.filter(path__startswith=agency.path)), "csv", buffer)
    report = provision(buffer.getvalue(), fmt="csv", dry_run=True)
    # ... and an export of "'+1 Team" reads back as "+1 Team": the round trip renames it.
    assert set(report.counts) == {"unchanged"}, [o.changes for o in report.outcomes if o.changes]


# --- F6: agency_access grant --dry-run promises what the real run refuses --------------------------------------

def test_f6_agency_access_dry_run_refuses_an_expiry_in_the_past(agency):
    AccountFactory(name="Acme", external_id="acme", plan_code="pro")
    with pytest.raises(CommandError):  # HEAD: "Would give Northwind agency access ... until 2000-01-01"
        call_command("agency_access", "grant", "--agency", "nw", "--client", "acme", "--expires", "2000-01-01",
                     "--dry-run", stdout=io.StringIO())


# --- F7 (design risk): a file's root row takes over ANOTHER tenant's root by external_id ------------------------

def test_f7_a_root_row_does_not_silently_add_an_owner_to_another_tenants_root():
    victim = AccountFactory(name="Acme Corp", external_id="acme")  # tenant A, provisioned earlier
    MembershipFactory(account=victim, role=RoleId.OWNER, user=UserFactory(email="owner@acme.example"))
    # Tenant B's file for its own new tree happens to use the same root external_id.
    text = "external_id,name,owner_email,plan\nacme,Acme Ltd,mallory@b.example,pro\n"
    provision(text, fmt="csv")
    victim.refresh_from_db()
    assert victim.name == "Acme Corp"
    assert not Invitation.objects.filter(account=victim, email="mallory@b.example").exists()
    assert Subscription.objects.get(account=victim).plan.code == "agency"


# F7b (a parent named by an external ID that only another customer's tree has) is a known limit: references by
# external ID resolve platform-wide when unambiguous; files that span customers should use account ids.

def test_f8_support_cannot_make_itself_owner_of_a_customer(client, staff_user):
    from django.urls import reverse

    from members.staff import SUPPORT

    customer = AccountFactory(name="Customer")
    MembershipFactory(account=customer, role=RoleId.OWNER)
    support = staff_user(SUPPORT)
    client.force_login(support)
    client.post(reverse("admin:members_membership_add"),
                {"user": support.pk, "account": customer.pk, "role": RoleId.OWNER})
    assert not Membership.objects.filter(account=customer, user=support).exists()


_unused = json


# --- F9: the Subscription admin writes the model directly: no plan_refusal, and a subaccount can get a plan -------

def test_f9_billing_staff_cannot_put_a_tree_with_subaccounts_on_free_nor_bill_a_subaccount(client, staff_user):
    from django.urls import reverse

    from billing.models import Plan
    from members.staff import BILLING

    root = AccountFactory(name="Agency Root")  # on the Agency plan
    child = AccountFactory(parent=root, name="Child Co")
    client.force_login(staff_user(BILLING))
    sub = Subscription.objects.get(account=root)
    free = Plan.objects.get(code="free")
    client.post(reverse("admin:billing_subscription_change", args=[sub.pk]),
                {"account": root.pk, "plan": free.pk, "started_at_0": "2026-01-01", "started_at_1": "00:00:00"})
    assert Subscription.objects.get(account=root).plan.code == "agency"  # plan_refusal: it has subaccounts
    client.post(reverse("admin:billing_subscription_add"),
                {"account": child.pk, "plan": free.pk, "started_at_0": "2026-01-01", "started_at_1": "00:00:00"})
    assert not Subscription.objects.filter(account=child).exists()  # subaccounts are on parent billing


# --- F10: purge_account deletes the billing transfer of the purged account (CASCADE), "transfers are kept" -------

def test_f10_purge_refuses_an_account_that_was_billing_transferred(agency):
    from billing.models import BillingTransfer, Plan

    moved = AccountFactory(name="Went Independent", external_id="went")  # its transfer completed: now a root
    BillingTransfer.objects.create(account=moved, from_root=agency, from_parent=agency, plan=Plan.objects.get(
        code="pro"), billing_owner_email="b@went.example", status="completed", nonce="x" * 32)
    with pytest.raises(CommandError):  # HEAD: purged, and the transfer row goes with it (CASCADE)
        call_command("purge_account", "went", "--yes", stdout=io.StringIO())
    assert BillingTransfer.objects.filter(account=moved).exists()


def test_f6b_agency_access_dry_run_refuses_people_the_real_run_refuses(agency):
    client_account = AccountFactory(name="Acme", external_id="acme", plan_code="pro")
    both = UserFactory(email="ann@nw.example")
    MembershipFactory(account=agency, role=RoleId.ADMIN, user=both)
    MembershipFactory(account=client_account, role=RoleId.MEMBER, user=both)  # already in the client
    with pytest.raises(CommandError):  # the real run: "ann@nw.example is already a member of Acme."
        call_command("agency_access", "grant", "--agency", "nw", "--client", "acme", "--people", "ann@nw.example",
                     stdout=io.StringIO())
    with pytest.raises(CommandError):  # HEAD: "Would give Northwind agency access ..., with ann@nw.example"
        call_command("agency_access", "grant", "--agency", "nw", "--client", "acme", "--people", "ann@nw.example",
                     "--dry-run", stdout=io.StringIO())


# --- F11 (minor): a row's owner_role is silently ignored for someone already in the account ---------------------

def test_f11_owner_role_differing_from_the_existing_membership_is_not_reported_unchanged(agency):
    acme = AccountFactory(parent=agency, name="Acme", external_id="acme")
    MembershipFactory(account=acme, role=RoleId.VIEWER, user=UserFactory(email="v@acme.example"))
    report = provision("external_id,name,parent,owner_email,owner_role\nacme,Acme,nw,v@acme.example,owner\n",
                       fmt="csv", dry_run=True)
    # HEAD: {"unchanged": 1}; the file says Owner, the account has a Viewer, and nothing tells staff.
    assert report.problems or report.counts != {"unchanged": 1}
