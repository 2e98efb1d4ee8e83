"""Every use of a key that changes something is in the audit trail with the key's label: each write operation
of the schema (found from the schema, so a new one fails here until it is exercised) is called once and must
leave audit rows naming the key, and only such rows."""

import datetime

import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from members.models import Invitation, Membership
from members.roles import RoleId
from tests.factories import AccountFactory, sent_earlier
from workspace.models import Agent, Contact

pytestmark = pytest.mark.django_db

WRITES = ("post", "put", "patch", "delete")


def test_every_write_operation_is_audited_with_the_keys_label(client, make_member, api_for, settings):
    settings.API_RATE_LIMIT = "100000/min"
    root = AccountFactory(name="Audited")
    owner = make_member(root, RoleId.OWNER)
    api = api_for(root, owner, label="Audit walker")
    schema = client.get("/api/v1/schema/?format=json").json()
    operations = {(method, path.removeprefix("/api/v1/accounts/{account_id}"))
                  for path, item in schema["paths"].items() for method in item if method in WRITES}
    child = AccountFactory(parent=root, name="Child")
    leaving = AccountFactory(parent=root, name="Leaving")
    agent = Agent.objects.create(account=root, name="Agent")
    spare_agent = Agent.objects.create(account=root, name="Spare")
    contact = Contact.objects.create(account=root, name="Contact", phone="+14155550123")
    spare_contact = Contact.objects.create(account=root, name="Spare", phone="+14155550124")
    member = Membership.objects.get(user=make_member(root, RoleId.MEMBER), account=root)
    gone = Membership.objects.get(user=make_member(root, RoleId.MEMBER), account=root)
    invitation = Invitation.objects.create(account=root, email="one@example.test", invited_by=owner)
    to_revoke = Invitation.objects.create(account=root, email="two@example.test", invited_by=owner)
    sent_earlier(invitation)
    transfer = {}

    def w(method: str, rest: str, data=None):
        """A write under the root account's URL."""
        return api(method, f"/api/v1/accounts/{root.public_id}{rest}",
                   data if data is not None or method == "DELETE" else {})

    def start_transfer():
        response = w("POST", f"/subaccounts/{leaving.public_id}/billing-transfers",
                     {"billing_owner_email": "payer@example.test", "plan": "agency"})
        transfer["id"] = response.json().get("id")
        return response

    sub = "/subaccounts/{subaccount_id}"
    calls = {
        ("patch", ""): lambda: w("PATCH", "", {"name": "Audited Inc"}),
        ("post", "/subaccounts"): lambda: w("POST", "/subaccounts", {"name": "New child"}),
        ("patch", sub): lambda: w("PATCH", f"/subaccounts/{child.public_id}", {"name": "Child Inc"}),
        ("post", f"{sub}/suspend"): lambda: w("POST", f"/subaccounts/{child.public_id}/suspend"),
        ("post", f"{sub}/reactivate"): lambda: w("POST", f"/subaccounts/{child.public_id}/reactivate"),
        ("post", f"{sub}/billing-transfers"): start_transfer,
        ("post", f"{sub}/billing-transfers/{{transfer_id}}/cancel"): lambda: w(
            "POST", f"/subaccounts/{leaving.public_id}/billing-transfers/{transfer['id']}/cancel"),
        ("post", "/invitations"): lambda: w("POST", "/invitations", {"email": "new@example.test", "role": "viewer"}),
        ("post", "/invitations/{invitation_id}/resend"): lambda: w(
            "POST", f"/invitations/{invitation.public_id}/resend"),
        ("post", "/invitations/{invitation_id}/revoke"): lambda: w(
            "POST", f"/invitations/{to_revoke.public_id}/revoke"),
        ("patch", "/members/{membership_id}"): lambda: w("PATCH", f"/members/{member.public_id}",
                                                         {"role": "viewer"}),
        ("delete", "/members/{membership_id}"): lambda: w("DELETE", f"/members/{gone.public_id}"),
        ("post", "/agents"): lambda: w("POST", "/agents", {"name": "Another"}),
        ("patch", "/agents/{object_id}"): lambda: w("PATCH", f"/agents/{agent.public_id}", {"name": "Renamed"}),
        ("delete", "/agents/{object_id}"): lambda: w("DELETE", f"/agents/{spare_agent.public_id}"),
        ("post", "/contacts"): lambda: w("POST", "/contacts", {"name": "Ada", "email": "ada@example.test"}),
        ("patch", "/contacts/{object_id}"): lambda: w("PATCH", f"/contacts/{contact.public_id}", {"name": "Bo"}),
        ("delete", "/contacts/{object_id}"): lambda: w("DELETE", f"/contacts/{spare_contact.public_id}"),
        ("post", "/conversations"): lambda: w("POST", "/conversations", {
            "agent_id": str(agent.public_id), "contact_id": str(contact.public_id), "duration_seconds": 30,
            "started_at": (timezone.now() - datetime.timedelta(minutes=5)).isoformat()}),
    }
    assert operations == set(calls), f"teach this test the new write operations: {operations ^ set(calls)}"

    failures = []
    for operation, call in calls.items():
        before = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        response = call()
        rows = list(AuditEvent.objects.filter(pk__gt=before))
        if response.status_code >= 300:
            failures.append(f"{operation}: {response.status_code} {response.content[:200]!r}")
        elif not rows or not all("Audit walker" in r.data.get("via", "") for r in rows):
            failures.append(f"{operation}: audit rows {[(r.action, r.data.get('via')) for r in rows]}")
    assert not failures, "\n".join(failures)
