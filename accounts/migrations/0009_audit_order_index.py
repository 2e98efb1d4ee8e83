"""The audit log's index in the log's own order, ties on the time included (rows written in one transaction share
it), so the newest rows are read straight from the index instead of sorting every row of a busy second (issue 14).
The new index is built before the old one goes."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0008_account_name_trigram_index'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['account', '-created_at', '-id'], name='accounts_au_account_41536c_idx'),
        ),
        migrations.RemoveIndex(
            model_name='auditevent',
            name='accounts_au_account_c17179_idx',
        ),
    ]
