"""A trigram index for searching account names (the switcher, the subaccounts and clients pages: ``icontains``,
which PostgreSQL writes as ``UPPER(name::text) LIKE UPPER(%s)``). Without it every search scans every account
of the platform, so a small tenant's search pays for the largest tenant's accounts (issue 14, bench/small_tenant.py).

PostgreSQL only (SQLite has no such index; its scan stays). ``pg_trgm`` is a trusted extension since PostgreSQL 13,
so the database's owner may create it; where the role may not, the migration says so and goes on: search works the
same, only slower."""

import sys

from django.db import DatabaseError, migrations, transaction

INDEX = "accounts_account_name_trgm"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON accounts_account "
                                  "USING gin ((UPPER(name::text)) gin_trgm_ops)")
    except DatabaseError as exc:
        print(f"\n  accounts: no trigram index for account name search ({exc}); searches scan instead.",
              file=sys.stderr)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0007_account_onboarding_dismissed_at")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
