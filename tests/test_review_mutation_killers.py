"""Proposed tests for the mutants the issue-12 suite let survive. All pass on HEAD 8832206."""

import io

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import QuerySet

from accounts.models import Account
from accounts.provisioning import export_rows, provision
from accounts.services import account_set_status
from members.roles import RoleId
from tests.factories import AccountFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
HEADER = "external_id,name,parent,owner_email,owner_role,plan,limit_minutes,limit_agents,access.agents,agency\n"


@pytest.fixture
def agency():
    return AccountFactory(name="Northwind", external_id="nw")


def problems(text):
    return {(p.line, p.column): p.message for p in provision(text, fmt="csv", dry_run=True).problems}


def test_a_limit_equal_to_the_parents_lineage_is_allowed(agency):  # M2
    middle = AccountFactory(parent=agency, name="Middle", limit_minutes=100)
    Account.objects.filter(pk=middle.pk).update(external_id="mid")
    assert not problems(HEADER + "c1,Leaf,mid,,,,100,,,\n")
    assert "above the 100" in problems(HEADER + "c1,Leaf,mid,,,,101,,,\n")[(2, "limit_minutes")]


def test_creating_under_an_existing_parent_locks_it(agency, monkeypatch):  # M8
    locked = []
    real = QuerySet.select_for_update

    def spy(self, *args, **kwargs):
        locked.append(self.model)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(QuerySet, "select_for_update", spy)
    provision(HEADER + "c1,Acme,nw,,,,,,,\n", fmt="csv", dry_run=True)
    assert locked == []  # a dry run locks nothing
    provision(HEADER + "c1,Acme,nw,,,,,,,\n", fmt="csv")
    assert Account in locked


def test_export_writes_the_accounts_own_limits_not_its_defaults(agency):  # M9
    acme = AccountFactory(parent=agency, name="Acme", limit_minutes=90, default_limit_minutes=15)
    row = next(r for r in export_rows(Account.objects.all()) if r["name"] == "Acme")
    assert row["limit_minutes"] == "90"
    assert acme  # noqa


def test_export_names_the_owner_not_the_first_member(agency):  # M10
    MembershipFactory(account=agency, role=RoleId.VIEWER, user=UserFactory(email="viewer@nw.example"))
    MembershipFactory(account=agency, role=RoleId.OWNER, user=UserFactory(email="boss@nw.example"))
    row = export_rows(Account.objects.filter(pk=agency.pk))[0]
    assert (row["owner_email"], row["owner_role"]) == ("boss@nw.example", "owner")


def test_purge_refuses_an_account_with_invoices(agency):  # M14
    import datetime

    from billing.models import Invoice

    Invoice.objects.create(account=agency, period=datetime.date(2020, 1, 1), plan_name="Agency", plan_price_cents=0,
                           included_minutes=0, overage_cents_per_minute=0, total_minutes=0, overage_minutes=0,
                           total_cents=0)
    with pytest.raises(CommandError, match="billing history"):
        call_command("purge_account", "nw", "--yes", stdout=io.StringIO())
    assert Account.objects.filter(pk=agency.pk).exists()


def test_only_staff_suspend_for_the_platform(agency):  # M15
    with pytest.raises(PermissionDenied):
        account_set_status(account=agency, suspended=True, staff=UserFactory(is_staff=False))
    agency.refresh_from_db()
    assert not agency.is_suspended


def test_agency_access_dry_run_refuses_an_account_as_its_own_agency(agency):  # M16
    with pytest.raises(CommandError, match="itself"):
        call_command("agency_access", "grant", "--agency", "nw", "--client", "nw", "--dry-run", stdout=io.StringIO())


def test_an_id_row_cannot_take_an_external_id_used_elsewhere_in_its_tree(agency):  # M17
    AccountFactory(parent=agency, name="Has It", external_id="taken")
    other = AccountFactory(parent=agency, name="Wants It")
    found = problems(f"id,external_id,name,parent\n{other.public_id},taken,Wants It,nw\n")
    assert "already has this external ID" in found[(2, "external_id")]


def test_zero_members_and_an_owner_is_refused(agency):  # M18
    found = problems("external_id,name,parent,owner_email,limit_members\nc1,Acme,nw,o@acme.example,0\n")
    assert "no room for the owner" in found[(2, "limit_members")]
