from django.db import migrations


def backfill(apps, schema_editor):
    """Everyone who signed in before allauth gets their address as a verified primary EmailAddress: they
    joined through invitation links or have used it to sign in and reset passwords. Email changes and
    verification work on these rows."""
    User = apps.get_model("members", "User")
    EmailAddress = apps.get_model("account", "EmailAddress")
    have = set(EmailAddress.objects.values_list("user_id", flat=True))
    EmailAddress.objects.bulk_create(
        [EmailAddress(user_id=pk, email=email, primary=True, verified=True)
         for pk, email in User.objects.values_list("pk", "email").iterator() if pk not in have],
        batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("security", "0001_initial"),
        ("account", "0009_emailaddress_unique_primary_email"),
        ("members", "0007_invitation_sent_by_platform"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
