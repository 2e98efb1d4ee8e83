"""Whether an agency membership counts now is decided per membership on an index, not by hashing every
membership of the platform (issue 14: PostgreSQL ran the "still in the agency" EXISTS as a hash of every person's
memberships, a sequential scan on each request of an agency user that grew with the platform)."""

import pytest
from django.db import connection

from agency.models import AgencyGrant
from members.models import Membership
from members.roles import RoleId
from tests.factories import AccountFactory, UserFactory

pytestmark = [pytest.mark.django_db,
              pytest.mark.skipif("connection.vendor != 'postgresql'", reason="a PostgreSQL plan")]


def test_an_agency_users_memberships_in_force_are_checked_without_hashing_the_platforms(make_member):
    agency = AccountFactory(name="Agency")
    person = make_member(agency, RoleId.ADMIN)
    for i in range(30):
        client = AccountFactory(name=f"Client {i}")
        AgencyGrant.objects.create(client=client, agency=agency, status=AgencyGrant.Status.ACTIVE)
        Membership.objects.create(user=person, account=client, role=RoleId.AGENCY_ADMIN, is_agency=True,
                                  agency_account=agency)
    others = [AccountFactory(name=f"Tenant {i}") for i in range(20)]
    Membership.objects.bulk_create(Membership(user=UserFactory(), account=others[i % 20], role=RoleId.MEMBER)
                                   for i in range(400))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE members_membership; ANALYZE agency_agencygrant")
    in_force = Membership.objects.effective().filter(user=person)
    plan = in_force.explain()
    assert "hashed SubPlan" not in plan, plan
    assert in_force.count() == 31
