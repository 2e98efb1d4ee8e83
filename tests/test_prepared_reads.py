"""``config.postgres``: on PostgreSQL a connection's reads are prepared statements from their second run; writes,
reads with more than ``MAX_PARAMS`` parameters and reads in ``unprepared()`` bind client-side as Django's own cursor
does; a plan a migration made stale is prepared again outside a transaction."""

import pytest
from django.db import NotSupportedError, connection, transaction
from django.db.models.expressions import RawSQL
from django.test.utils import CaptureQueriesContext

from accounts.models import Account
from config.postgres import MAX_PARAMS, unprepared
from tests.factories import AccountFactory

pytestmark = [pytest.mark.django_db,
              pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")]


def prepared_statements() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return {row[0] for row in cursor.fetchall() if "pg_prepared_statements" not in row[0]}


def test_a_read_is_prepared_on_its_second_run_and_serves_other_values():
    mine, other = AccountFactory(name="Prepared one"), AccountFactory(name="Prepared two")
    before = prepared_statements()
    assert list(Account.objects.filter(name="Prepared one")) == [mine]
    assert prepared_statements() == before  # run once: not prepared (a far page, a search)
    assert list(Account.objects.filter(name="Prepared one")) == [mine]
    added = prepared_statements() - before
    assert len(added) == 1 and '"accounts_account"."name" = $1' in next(iter(added))
    with CaptureQueriesContext(connection) as queries:
        assert list(Account.objects.filter(name="Prepared two")) == [other]
        assert list(Account.objects.filter(name="nobody")) == []
    assert len(queries.captured_queries) == 2  # in the query log like any other, parameters as $1
    assert '"accounts_account"."name" = $1' in queries.captured_queries[0]["sql"]
    assert prepared_statements() - before == added  # the same statement for every value


def test_writes_are_never_prepared():
    account = AccountFactory(name="Written")
    before = prepared_statements()
    for n in range(4):
        Account.objects.filter(pk=account.pk).update(name=f"Written {n}")
    account.refresh_from_db()
    assert account.name == "Written 3"
    added = prepared_statements() - before
    assert not [s for s in added if not s.lstrip().upper().startswith("SELECT")]


def test_a_read_with_more_parameters_than_the_protocol_allows_binds_client_side():
    """Server-side binding caps a statement at 65,535 parameters; Django does not split an IN list (nor its delete
    collector's) on PostgreSQL, so a long read is sent with its values written in."""
    account = AccountFactory(name="Long list")
    ids = [*range(10**9, 10**9 + 70_000), account.pk]
    before = prepared_statements()
    for _ in range(3):
        assert list(Account.objects.filter(pk__in=ids)) == [account]
    assert Account.objects.filter(pk__in=ids).count() == 1
    assert prepared_statements() == before


def test_a_read_of_at_most_max_params_is_prepared_and_one_more_is_not():
    account = AccountFactory(name="Edge")
    at_most = [*range(10**9, 10**9 + MAX_PARAMS - 1), account.pk]
    one_more = [10**9 - 1, *at_most]
    before = prepared_statements()
    for _ in range(3):
        assert list(Account.objects.filter(pk__in=one_more)) == [account]
    assert prepared_statements() == before
    for _ in range(2):
        assert list(Account.objects.filter(pk__in=at_most)) == [account]
    assert len(prepared_statements() - before) == 1


def test_reads_in_unprepared_and_with_the_setting_off_are_not_prepared(settings):
    account = AccountFactory(name="Planned each time")
    before = prepared_statements()
    with unprepared():
        for _ in range(3):
            assert list(Account.objects.filter(name="Planned each time")) == [account]
    settings.BAKED_PREPARED_STATEMENTS = False
    for _ in range(3):
        assert list(Account.objects.filter(name="Planned each time")) == [account]
    assert prepared_statements() == before


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_plan_a_migration_made_stale_is_prepared_again_outside_a_transaction():
    """Another connection changes the type of a column the statement returns (a migration while the app runs):
    PostgreSQL refuses the prepared plan. Outside a transaction the read is prepared again and answers; inside one
    the error stands, and once that transaction has rolled back the read answers again."""
    import psycopg

    account = AccountFactory(name="Stale plan")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE prepared_probe (v integer); INSERT INTO prepared_probe VALUES (7)")

    def probe():
        return list(Account.objects.filter(pk=account.pk).values_list(
            RawSQL("SELECT v FROM prepared_probe", ()), flat=True))

    other = psycopg.connect(**connection.get_connection_params(), autocommit=True)
    try:
        assert probe() == [7] and probe() == [7]  # prepared on the second run
        assert any("prepared_probe" in statement for statement in prepared_statements())

        other.execute("ALTER TABLE prepared_probe ALTER COLUMN v TYPE bigint")
        assert probe() == [7]
        assert probe() == [7]

        other.execute("ALTER TABLE prepared_probe ALTER COLUMN v TYPE integer")
        with pytest.raises(NotSupportedError, match="cached plan must not change result type"):  # noqa: SIM117
            with transaction.atomic():
                probe()
        assert probe() == [7] and probe() == [7]
    finally:
        other.close()
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE prepared_probe")
