"""Reads of the agency's side (issue 14): the Clients page's client-owned accounts, compiled once."""

from collections import defaultdict

from accounts.baked import Baked, Pages
from members.models import Membership

from .models import AgencyGrant

# Ended grants stay in the client's history, not on the agency's list.
_LISTED_OUT = [AgencyGrant.Status.DECLINED, AgencyGrant.Status.REVOKED]


def _client_grants_query(agency_id, text, *, search):
    grants = (AgencyGrant.objects.filter(agency_id=agency_id).exclude(status__in=_LISTED_OUT)
              .select_related("client").order_by("client__name", "pk"))
    return grants.filter(client__name__icontains=text) if search else grants


_client_grants = Baked(_client_grants_query)


def client_grants(agency, text: str = "") -> Pages:
    """The agency's grants to list on its Clients page (requested, active, expired), by client name; those whose
    client's name contains ``text`` when given. For a ``Paginator``: its count and each slice one baked query."""
    return _client_grants.pages(agency.pk, text or "", search=bool(text))


def attach_agency_people(grants, agency) -> None:
    """Set ``grant.client.agency_people`` on each of ``grants``: the agency's people in that client (their agency
    memberships there, with the user), by email. One query, none for no grant."""
    client_ids = {g.client_id for g in grants}
    people = defaultdict(list)
    if client_ids:
        for m in (Membership.objects.filter(is_agency=True, agency_account=agency, account_id__in=client_ids)
                  .select_related("user").order_by("user__email", "pk")):
            people[m.account_id].append(m)
    for g in grants:
        g.client.agency_people = people[g.client_id]
