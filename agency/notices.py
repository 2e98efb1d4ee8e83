"""Who hears about agency access changing: emails sent after the change commits (nothing for a rollback).

- A request: the client's governors (its Owners, and Admins who govern agency access), who decide on it.
- A decision or the end of access: the person who asked, and the agency's own Owners and Admins.
"""

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse

from accounts.links import link_url
from members.models import Membership
from members.roles import RoleId


def _send(subject: str, body: str, recipients) -> None:
    recipients = sorted({r for r in recipients if r})
    if not recipients:
        return
    transaction.on_commit(lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients))


def _governors(client) -> list[str]:
    """The client's direct Owners and its own (not agency-added) Admins: who may decide (R2)."""
    return list(Membership.objects.filter(account=client, is_agency=False, via_agency=False,
                                          role__in=[RoleId.OWNER, RoleId.ADMIN])
                .values_list("user__email", flat=True))


def _agency_admins(agency) -> list[str]:
    return list(Membership.objects.filter(account=agency, is_agency=False, role__in=[RoleId.OWNER, RoleId.ADMIN])
                .values_list("user__email", flat=True))


def access_requested(grant) -> None:
    link = link_url(reverse("agency:client-access", kwargs={"account_id": grant.client.public_id}))
    note = f"\nTheir note: “{grant.note}”\n" if grant.note else ""
    _send(f"{grant.agency.name} asks for agency access to {grant.client.name}",
          f"{grant.agency.name} asked for agency access to {grant.client.name}: its people would work in your "
          f"account as Agency Admins (everything but billing). You stay the owner and are billed directly; you can "
          f"narrow, limit in time or end their access at any time.\n{note}\nApprove or decline: {link}\n",
          _governors(grant.client))


def access_decided(grant, approved: bool) -> None:
    verb = "approved" if approved else "declined"
    until = f" until {grant.expires_at:%Y-%m-%d}" if approved and grant.expires_at else ""
    link = link_url(reverse("agency:clients", kwargs={"account_id": grant.agency.public_id}))
    _send(f"{grant.client.name} {verb} agency access for {grant.agency.name}",
          f"{grant.client.name} {verb} {grant.agency.name}'s request for agency access{until}.\n\nClients: {link}\n",
          [getattr(grant.requested_by, "email", ""), *_agency_admins(grant.agency)])


def access_ended(grant, by_side: str) -> None:
    _send(f"Agency access to {grant.client.name} ended",
          f"{grant.agency.name}'s agency access to {grant.client.name} was ended by the {by_side}. Its people no "
          "longer reach the account.\n",
          [getattr(grant.requested_by, "email", ""), *_agency_admins(grant.agency), *_governors(grant.client)])
