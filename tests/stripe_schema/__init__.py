"""dj-stripe's schema for the test databases as one migration (``migrations/0001_schema.py``), made by
``makemigrations`` from dj-stripe's models: applying dj-stripe's own history takes 85-105 s here (its
0002_2_10 rebuilds its tables field by field) in every test database, this one 10-20 s. ``tests/conftest.py``
points ``MIGRATION_MODULES`` here; ``tests/test_migrations.py`` checks that dj-stripe's models are what both
this migration and dj-stripe's own migrations build. After upgrading dj-stripe, make it again::

    rm tests/stripe_schema/migrations/0001_schema.py
    .venv/bin/python tests/stripe_schema/make.py
"""

MIGRATIONS = f"{__name__}.migrations"  # the MIGRATION_MODULES entry for djstripe
