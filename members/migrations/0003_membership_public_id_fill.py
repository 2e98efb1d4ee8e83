import uuid

from django.db import migrations, models


def fill(apps, schema_editor):
    Membership = apps.get_model("members", "Membership")
    for membership in Membership.objects.only("pk"):  # AddField gave every existing row the same value
        Membership.objects.filter(pk=membership.pk).update(public_id=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [("members", "0002_team_management")]
    operations = [
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="membership", name="public_id",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
    ]
