"""The platform's other commands: suspend_account, purge_account, agency_access (each with --dry-run)."""

import io
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.access import resolve_access
from accounts.models import Account, AuditEvent
from agency.models import AgencyGrant
from members.models import Membership
from members.roles import RoleId
from tests.factories import AccountFactory, MembershipFactory, UserFactory, usage
from workspace.models import Agent

pytestmark = pytest.mark.django_db


def fresh(user):
    """The person as a new request sees them (access is cached on the user object for one request)."""
    return type(user).objects.get(pk=user.pk)


def call(*args):
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def acme():
    account = AccountFactory(name="Acme", external_id="acme")
    owner = MembershipFactory(account=account, role=RoleId.OWNER, user=UserFactory(email="o@acme.example")).user
    account.owner = owner
    return account


class TestSuspend:
    def test_suspends_a_root_and_its_people_are_locked_out(self, acme):
        assert "Would suspend Acme" in call("suspend_account", "acme", "--dry-run")
        assert Account.objects.get(pk=acme.pk).status == "active"
        out = call("suspend_account", str(acme.public_id), "--reason", "unpaid invoices")
        assert "suspended" in out
        acme.refresh_from_db()
        assert acme.is_suspended and resolve_access(fresh(acme.owner), acme).is_locked_out
        row = AuditEvent.objects.get(account=acme, action="account.suspended")
        assert row.data["reason"] == "unpaid invoices" and "by the platform" in row.summary
        assert "already suspended" in call("suspend_account", "acme")
        call("suspend_account", "acme", "--reactivate")
        acme.refresh_from_db()
        assert not acme.is_suspended and not resolve_access(fresh(acme.owner), acme).is_locked_out

    def test_unknown_and_ambiguous_accounts(self, acme):
        with pytest.raises(CommandError, match="no account"):
            call("suspend_account", "nope")
        other = AccountFactory(name="Other")
        Account.objects.filter(pk=other.pk).update(external_id="acme")
        with pytest.raises(CommandError, match="several accounts"):
            call("suspend_account", "acme")


class TestPurge:
    def test_dry_run_lists_and_yes_deletes(self, acme):
        Agent.objects.create(account=acme, name="Front desk")
        out = call("purge_account", "acme", "--dry-run")
        assert "1 membership(s)" in out and "1 agent(s)" in out and "nothing was deleted" in out
        assert Account.objects.filter(pk=acme.pk).exists()
        call("purge_account", "acme", "--yes")
        assert not Account.objects.filter(pk=acme.pk).exists()
        assert not Membership.objects.filter(account_id=acme.pk).exists()

    def test_confirmation_by_typing_the_name(self, acme):
        with mock.patch("sys.stdin.isatty", return_value=False), pytest.raises(CommandError, match="--yes"):
            call("purge_account", "acme")
        with mock.patch("sys.stdin.isatty", return_value=True), mock.patch("builtins.input", return_value="acme"), \
                pytest.raises(CommandError, match="did not match"):
            call("purge_account", "acme")
        assert Account.objects.filter(pk=acme.pk).exists()
        with mock.patch("sys.stdin.isatty", return_value=True), mock.patch("builtins.input", return_value="Acme"):
            call("purge_account", "acme")
        assert not Account.objects.filter(pk=acme.pk).exists()

    def test_refused_with_subaccounts_or_billing_history(self, acme):
        child = AccountFactory(parent=acme, name="Child")
        with pytest.raises(CommandError, match="subaccount"):
            call("purge_account", "acme", "--yes")
        usage(child, 5)
        with pytest.raises(CommandError, match="billing history"):
            call("purge_account", str(child.public_id), "--yes")
        assert Account.objects.filter(pk__in=[acme.pk, child.pk]).count() == 2


class TestAgencyAccess:
    @pytest.fixture
    def agency(self):
        account = AccountFactory(name="Northwind", external_id="nw")
        account.person = MembershipFactory(account=account, role=RoleId.ADMIN,
                                           user=UserFactory(email="ann@nw.example")).user
        return account

    def test_grant_with_people_then_revoke_removing_what_they_added(self, acme, agency):
        assert "Would give Northwind" in call("agency_access", "grant", "--agency", "nw", "--client", "acme",
                                              "--people", "ann@nw.example", "--dry-run")
        assert not AgencyGrant.objects.exists()
        call("agency_access", "grant", "--agency", "nw", "--client", "acme", "--people", "ann@nw.example",
             "--expires", "2099-01-01", "--reason", "ticket 42")
        grant = AgencyGrant.objects.get()
        assert grant.status == "active" and grant.expires_at.year == 2099
        membership = Membership.objects.get(account=acme, user=agency.person)
        assert membership.is_agency and membership.role == RoleId.AGENCY_ADMIN
        assert resolve_access(agency.person, acme) is not None
        assert AuditEvent.objects.filter(account=acme, action="agency.access_approved",
                                         data__reason="ticket 42").exists()
        added = MembershipFactory(account=acme, role=RoleId.MEMBER)
        Membership.objects.filter(pk=added.pk).update(via_agency=True, via_grant=grant)
        out = call("agency_access", "revoke", "--agency", "nw", "--client", "acme", "--remove-added", "--dry-run")
        assert "remove 1 member(s)" in out and AgencyGrant.objects.get().status == "active"
        call("agency_access", "revoke", "--agency", "nw", "--client", "acme", "--remove-added")
        assert AgencyGrant.objects.get().status == "revoked"
        assert resolve_access(fresh(agency.person), acme) is None
        assert not Membership.objects.filter(pk=added.pk).exists()

    def test_refusals(self, acme, agency):
        sub = AccountFactory(parent=acme, name="Sub", external_id="sub")
        with pytest.raises(CommandError, match="two independent accounts"):
            call("agency_access", "grant", "--agency", "nw", "--client", "sub")
        with pytest.raises(CommandError, match="two independent accounts"):
            call("agency_access", "grant", "--agency", "nw", "--client", str(sub.public_id), "--dry-run")
        with pytest.raises(CommandError, match="not a member of Northwind"):
            call("agency_access", "grant", "--agency", "nw", "--client", "acme", "--people", "o@acme.example")
        with pytest.raises(CommandError, match="YYYY-MM-DD"):
            call("agency_access", "grant", "--agency", "nw", "--client", "acme", "--expires", "soon")
        with pytest.raises(CommandError, match="no agency access"):
            call("agency_access", "revoke", "--agency", "nw", "--client", "acme")
        call("agency_access", "grant", "--agency", "nw", "--client", "acme")
        with pytest.raises(CommandError, match="already has agency access"):
            call("agency_access", "grant", "--agency", "nw", "--client", "acme")
        assert AgencyGrant.objects.count() == 1

    def test_only_staff_grant_for_the_platform(self, acme, agency):
        from django.core.exceptions import PermissionDenied

        from agency.services import access_grant_by_platform

        with pytest.raises(PermissionDenied):
            access_grant_by_platform(client=acme, agency=agency, staff=UserFactory())
        assert not AgencyGrant.objects.exists()
