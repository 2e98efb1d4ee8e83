"""The pools that this month's billing transfers took minutes from count them again (``departed_minutes``, added
by 0012): before 0012, a transfer freed them for the rest of the month."""

from django.db import migrations


def backfill(apps, schema_editor):
    from billing.models import period_start
    from billing.rollups import departed_from_transfers

    departed_from_transfers(period_start(), apps)


class Migration(migrations.Migration):
    dependencies = [("billing", "0012_usage_rollup_departed_minutes")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
