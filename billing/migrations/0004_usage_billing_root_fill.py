from django.db import migrations, models
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Substr


def fill(apps, schema_editor):
    """Usage recorded before billing roots were stored was paid by the account's tree root."""
    Account = apps.get_model("accounts", "Account")
    UsageRecord = apps.get_model("billing", "UsageRecord")
    root_of = Account.objects.filter(path=Substr(OuterRef("account__path"), 1, 4)).values("pk")[:1]
    for record in UsageRecord.objects.filter(billing_root__isnull=True).annotate(root=Subquery(root_of)):
        UsageRecord.objects.filter(pk=record.pk).update(billing_root_id=record.root)


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_invoices"), ("accounts", "0004_audit_permission")]
    operations = [
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="usagerecord", name="billing_root",
            field=models.ForeignKey(on_delete=models.deletion.PROTECT, related_name="+", to="accounts.account"),
        ),
    ]
