"""Data (R6: nothing upward): blocked reasons and audit summaries stored before the rule named accounts
above the one they are shown in. Rewrite them in the form the services now write."""

import re

from django.db import migrations

MINUTES = re.compile(r"^Minutes limit reached for (?P<name>.+): (?P<used>\d+) of (?P<limit>\d+) minutes used this "
                     r"period\.$")
CONCURRENT = re.compile(r"^Concurrent call limit reached for (?P<name>.+): (?P<rest>.+)$")


def forwards(apps, schema_editor):
    Conversation = apps.get_model("workspace", "Conversation")
    AuditEvent = apps.get_model("accounts", "AuditEvent")
    for c in Conversation.objects.filter(status="blocked").exclude(blocked_reason="").select_related("account"):
        reason = c.blocked_reason
        if m := MINUTES.match(reason):
            if m["name"] == c.account.name and str(c.account.limit_minutes) == m["limit"]:
                reason = f"Minutes limit of this account reached: {m['used']} of {m['limit']} minutes used this period."
            else:
                reason = "A minutes pool above this account is used up."
        elif m := CONCURRENT.match(reason):
            reason = f"Concurrent call limit of this account reached: {m['rest']}"
        if reason != c.blocked_reason:
            Conversation.objects.filter(pk=c.pk).update(blocked_reason=reason[:200])
    # A subaccount's own "created" row named its parent ("… created under <parent>").
    for e in AuditEvent.objects.filter(action="subaccount.created", account__depth__gt=1).select_related("account"):
        if "subaccount" in (e.data or {}):
            continue  # the parent's row: it names its own child
        fixed = re.sub(r" under .+$", "", e.summary)
        if fixed != e.summary:
            AuditEvent.objects.filter(pk=e.pk).update(summary=fixed)


class Migration(migrations.Migration):
    dependencies = [
        ("workspace", "0002_contact_phone_message"),
        ("accounts", "0004_audit_permission"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
