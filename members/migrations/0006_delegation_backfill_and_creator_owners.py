"""Data: record delegation on existing rows, and remove the direct Owner memberships that subaccount
creation used to add where inheritance already gives Owner (R4).

- Agency memberships point at the grant they use (``via_grant``).
- Memberships and pending invitations created by an agency user of that account are marked
  ``via_agency`` with that grant: they never govern agency access and revoking offers to remove them.
- A subaccount's creator used to become its direct Owner. Where the same person is Owner of an ancestor
  (so inheritance already gives Owner), that membership is removed with its permission rows and an
  audit row each; nothing else is touched (a creator who is only Admin above keeps it, to be offered
  for removal when they leave the ancestor).
"""

from datetime import timedelta

from django.db import migrations

CREATION_WINDOW = timedelta(minutes=5)


def forwards(apps, schema_editor):
    Membership = apps.get_model("members", "Membership")
    Invitation = apps.get_model("members", "Invitation")
    AgencyGrant = apps.get_model("agency", "AgencyGrant")
    Perm = apps.get_model("accounts", "AccountUserObjectPermission")
    AuditEvent = apps.get_model("accounts", "AuditEvent")

    def grant_of(client_id, agency_id):
        return (AgencyGrant.objects.filter(client_id=client_id, agency_id=agency_id)
                .order_by("-created_at").first())

    agency_users = {}  # (account_id, user_id) -> grant
    for m in Membership.objects.filter(is_agency=True):
        grant = grant_of(m.account_id, m.agency_account_id)
        agency_users[(m.account_id, m.user_id)] = grant
        if grant is not None and m.via_grant_id is None:
            Membership.objects.filter(pk=m.pk).update(via_grant=grant)

    for m in Membership.objects.filter(is_agency=False, created_by__isnull=False):
        key = (m.account_id, m.created_by_id)
        if key in agency_users:
            Membership.objects.filter(pk=m.pk).update(via_agency=True, via_grant=agency_users[key])
    for i in Invitation.objects.filter(status="pending", invited_by__isnull=False):
        key = (i.account_id, i.invited_by_id)
        if key in agency_users:
            Invitation.objects.filter(pk=i.pk).update(via_agency=True, via_grant=agency_users[key])

    steplen = 4
    candidates = Membership.objects.filter(role="owner", is_agency=False, created_by__isnull=True,
                                           account__depth__gt=1).select_related("account", "user")
    for m in candidates:
        account = m.account
        if account.created_by_id != m.user_id or abs(m.created_at - account.created_at) > CREATION_WINDOW:
            continue
        ancestor_paths = [account.path[:i] for i in range(steplen, len(account.path), steplen)]
        owner_above = Membership.objects.filter(user_id=m.user_id, role="owner", is_agency=False,
                                                account__path__in=ancestor_paths).exists()
        if not owner_above:
            continue
        Perm.objects.filter(user_id=m.user_id, content_object_id=account.pk).delete()
        m.delete()
        AuditEvent.objects.create(
            account=account, actor=None, actor_email="", action="member.removed",
            summary=(f"{m.user.email}'s direct Owner membership, added when this subaccount was created, "
                     "removed: they are Owner through a parent account"),
            data={"user": m.user.email, "reason": "creator_inherits_owner"},
        )


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0005_membership_delegation"),
        ("accounts", "0004_audit_permission"),
        ("agency", "0001_initial"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
