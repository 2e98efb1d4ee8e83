import django.db.models.functions
from django.db import migrations, models


def fill(apps, schema_editor):
    UsageRecord = apps.get_model("billing", "UsageRecord")
    UsageRecord.objects.filter(occurred_on__isnull=True).update(
        occurred_on=django.db.models.functions.TruncDate("recorded_at"))


class Migration(migrations.Migration):
    dependencies = [("billing", "0004_usage_billing_root_fill")]
    operations = [
        migrations.AddField(model_name="usagerecord", name="occurred_on", field=models.DateField(null=True)),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="usagerecord", name="occurred_on",
            field=models.DateField(help_text="The day the conversation started (UTC), for daily charts."),
        ),
        migrations.AddIndex(
            model_name="usagerecord",
            index=models.Index(fields=["period", "billing_root", "occurred_on", "minutes"],
                               name="usage_daily_covering"),
        ),
    ]
