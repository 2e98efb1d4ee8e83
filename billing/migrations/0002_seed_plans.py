from django.db import migrations

PLANS = [
    # code, name, monthly price (cents), included minutes, overage (cents/min), subaccounts, default, order
    ("free", "Free", 0, 60, 20, False, True, 1),
    ("pro", "Pro", 9900, 1000, 12, False, False, 2),
    ("agency", "Agency", 29900, 5000, 9, True, False, 3),
]


def seed(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for code, name, price, minutes, overage, subaccounts, default, order in PLANS:
        Plan.objects.update_or_create(code=code, defaults={
            "name": name, "monthly_price_cents": price, "included_minutes": minutes,
            "overage_cents_per_minute": overage, "allows_subaccounts": subaccounts,
            "is_default": default, "sort_order": order,
        })


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
