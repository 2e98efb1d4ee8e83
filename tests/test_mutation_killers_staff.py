"""Mutants of the staff attribution (bebf221, 5f7a687) and the suspended agency (c20a199) that survived the suite:
each test fails on its mutant and passes on the code."""

import pytest

from accounts import services as account_services
from accounts.models import Account, AuditEvent
from accounts.provisioning import provision
from agency import services as agency_services
from members.models import Membership
from members.roles import RoleId
from tests.factories import AccountFactory, MembershipFactory, UserFactory, approved_grant, plan

pytestmark = pytest.mark.django_db

HEADER = "external_id,id,name,parent,owner_email,owner_role,plan\n"


def marked(event, staff):
    return (event.actor, event.actor_email, event.data.get("staff")) == (staff, staff.email, True)


@pytest.fixture
def staff():
    return UserFactory(is_staff=True, email="agent@platform.test")


@pytest.fixture
def granted(db):
    return approved_grant("Agency X", "Client Co")


def test_staff_deleting_a_subaccount_is_marked_on_the_parents_trail(staff):
    """account_delete(by=staff): the parent's subaccount.deleted row carries the staff mark; by=None has none."""
    parent = AccountFactory(name="Parent")
    one, two = AccountFactory(parent=parent, name="One"), AccountFactory(parent=parent, name="Two")
    account_services.account_delete(account=one, by=staff)
    account_services.account_delete(account=Account.objects.get(pk=two.pk), by=None)
    rows = {e.summary: e for e in AuditEvent.objects.filter(account=parent, action="subaccount.deleted")}
    assert marked(rows["Subaccount “One” deleted"], staff)
    assert rows["Subaccount “Two” deleted"].data.get("staff") is None


def test_a_subaccount_created_by_staff_with_an_owner_names_them_on_the_member_added_row(staff):
    parent, person = AccountFactory(name="Parent"), UserFactory(email="boss@example.com")
    child = account_services.subaccount_create(parent=parent, name="Child", by=None, owner=person, staff=staff)
    assert marked(AuditEvent.objects.get(account=child, action="member.added"), staff)


def test_the_platform_granting_agency_access_with_people_names_the_staff_member(staff, make_member):
    """access_grant_by_platform(staff=...) adds ``people`` through agency_member_add: their member.added rows in
    the client and the agency.member_added rows on both sides name and mark the staff member."""
    agency, client_account = AccountFactory(name="Agency Y"), AccountFactory(name="Client Two")
    person = make_member(agency, RoleId.MEMBER)
    agency_services.access_grant_by_platform(client=client_account, agency=agency, people=[person], staff=staff)
    added = AuditEvent.objects.get(account=client_account, action="member.added", data__user=person.email)
    assert marked(added, staff)
    both = AuditEvent.objects.filter(action="agency.member_added")
    assert {e.account_id for e in both} == {agency.pk, client_account.pk}
    assert all(marked(e, staff) for e in both)


def test_staff_revoking_with_removals_names_them_on_the_removed_members_rows(granted, staff):
    """access_revoke(by=None, remove=[...], staff=...): the member the agency added, removed with the access,
    gets a member.removed row naming and marking the staff member."""
    added = MembershipFactory(account=granted["client"], role=RoleId.MEMBER, user=UserFactory(email="x@client.co"))
    Membership.objects.filter(pk=added.pk).update(via_agency=True, via_grant=granted["grant"])
    agency_services.access_revoke(grant=granted["grant"], by=None, remove=[added], staff=staff)
    row = AuditEvent.objects.get(account=granted["client"], action="member.removed", data__user="x@client.co")
    assert marked(row, staff)


def test_provisioning_by_staff_marks_owners_plans_external_ids_and_new_owners(staff):
    """provision(staff=...): an existing user made Owner of a created account (member.added), and on an update a
    plan change, a new external ID and an Owner added all name and mark the staff member."""
    plan("pro")
    parent, root = AccountFactory(name="Northwind"), AccountFactory(name="Walk-in", plan_code="free")
    UserFactory(email="known@example.com")
    UserFactory(email="other@example.com")
    report = provision(HEADER + f"c1,,Acme,{parent.public_id},known@example.com,admin,\n", fmt="csv", staff=staff)
    assert report.counts.get("create") == 1, [p.as_dict() for p in report.problems]
    acme = Account.objects.get(external_id="c1")
    assert marked(AuditEvent.objects.get(account=acme, action="member.added"), staff)
    report = provision(HEADER + f"w1,{root.public_id},Walk-in,,other@example.com,owner,pro\n", fmt="csv",
                       staff=staff)
    assert report.counts.get("update") == 1, report
    for action in ("billing.plan_changed", "account.external_id_changed", "member.added"):
        assert marked(AuditEvent.objects.get(account=root, action=action), staff), action


def test_ended_agency_access_is_none_while_the_grant_is_in_force_and_the_agency_is_not_suspended(granted, staff):
    """ended_agency_access answers None (the refusal is about something else) unless the agency the person's own
    membership comes through is suspended: then that grant, marked paused. (Unreachable through the page today: a
    person with a grant in force, in an agency not suspended, is not refused.)"""
    from accounts.mixins import ended_agency_access

    person, client_id = granted["agency_admin"], granted["client"].public_id
    assert ended_agency_access(person, client_id) is None
    account_services.account_set_status(account=granted["agency"], suspended=True, staff=staff)
    paused = ended_agency_access(person, client_id)
    assert paused == granted["grant"] and paused.agency_suspended is True
