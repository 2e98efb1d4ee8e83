"""The models and the migrations agree: the project's apps, and dj-stripe's models against both its own migrations
(production's) and the one migration the test databases apply instead (tests/stripe_schema)."""

import io

import pytest
from django.core.management import call_command

from .stripe_schema import MIGRATIONS as STRIPE_SCHEMA


def makemigrations_check(*apps) -> str:
    out = io.StringIO()
    # raises SystemExit(1) when a model differs from what its app's migrations build
    call_command("makemigrations", *apps, "--check", "--dry-run", stdout=out, stderr=out)
    return out.getvalue()


@pytest.fixture
def production_migrations(settings, db):
    settings.MIGRATION_MODULES = {}


def test_every_model_change_has_its_migration(production_migrations):
    assert "No changes detected" in makemigrations_check()


def test_dj_stripe_s_own_migrations_build_its_models(production_migrations):
    assert "No changes detected in app 'djstripe'" in makemigrations_check("djstripe")


def test_the_test_databases_stripe_schema_is_dj_stripe_s_models(settings, db):
    assert settings.MIGRATION_MODULES["djstripe"] == STRIPE_SCHEMA
    assert "No changes detected in app 'djstripe'" in makemigrations_check("djstripe")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_flush_after_a_serialized_rollback_test_leaves_the_migrated_rows_for_the_next_test():
    """Whatever test comes next (pytest-xdist changes the order from run to run) finds the rows the migrations
    made: the content types, the permissions the membership rows point to, the seeded plans."""
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType
    from django.test import TransactionTestCase

    from billing.models import Plan

    class EndOfASerializedRollbackTest(TransactionTestCase):
        serialized_rollback = True
        databases = {"default"}

        def runTest(self):
            pass

    before = (ContentType.objects.count(), Permission.objects.count(), Plan.objects.count())
    assert before[0] and before[1]
    EndOfASerializedRollbackTest()._fixture_teardown()
    after = (ContentType.objects.count(), Permission.objects.count(), Plan.objects.count())
    assert all(a >= b for a, b in zip(after, before, strict=True)) and after[0] and after[1], (before, after)
    assert Permission.objects.filter(codename="view_usage", content_type__app_label="accounts").exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_flush_after_any_transactional_test_keeps_the_migrated_rows_primary_keys():
    """A plain transactional test's flush (a browser test's, say) puts back the very rows the migrations made, not
    new ones from ``post_migrate``: on PostgreSQL those came under new keys, and the next ``serialized_rollback``
    test failed putting the staff groups back beside them (every such test of a worker, in one CI run)."""
    from django.contrib.auth.models import Group, Permission
    from django.contrib.contenttypes.models import ContentType
    from django.test import TransactionTestCase

    class EndOfAPlainTransactionalTest(TransactionTestCase):
        databases = {"default"}

        def runTest(self):
            pass

    def rows():
        return (sorted(Group.objects.values_list("pk", "name")),
                sorted(ContentType.objects.values_list("pk", flat=True)), Permission.objects.count())

    before = rows()
    assert before[0]
    EndOfAPlainTransactionalTest()._fixture_teardown()
    assert rows() == before
