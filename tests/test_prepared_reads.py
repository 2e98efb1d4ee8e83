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

# Transactional tests: a read inside a transaction (a plain test's) is never prepared.
pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True),  # keeps the seeded rows
              pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")]


def prepared_statements() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return {row[0] for row in cursor.fetchall() if "pg_prepared_statements" not in row[0]}


def a_read_is_prepared_on_its_second_run_and_serves_other_values():
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


def writes_are_never_prepared():
    account = AccountFactory(name="Written")
    before = prepared_statements()
    for n in range(4):
        Account.objects.filter(pk=account.pk).update(name=f"Written {n}")
    account.refresh_from_db()
    assert account.name == "Written 3"
    added = prepared_statements() - before
    assert not [s for s in added if not s.lstrip().upper().startswith("SELECT")]


def a_read_with_more_parameters_than_the_protocol_allows_binds_client_side():
    """Server-side binding caps a statement at 65,535 parameters; Django does not split an IN list (nor its delete
    collector's) on PostgreSQL, so a long read is sent with its values written in."""
    account = AccountFactory(name="Long list")
    ids = [*range(10**9, 10**9 + 70_000), account.pk]
    before = prepared_statements()
    for _ in range(3):
        assert list(Account.objects.filter(pk__in=ids)) == [account]
    assert Account.objects.filter(pk__in=ids).count() == 1
    assert prepared_statements() == before


def a_read_of_at_most_max_params_is_prepared_and_one_more_is_not():
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


def reads_in_unprepared_and_with_the_setting_off_are_not_prepared(settings):
    account = AccountFactory(name="Planned each time")
    before = prepared_statements()
    with unprepared():
        for _ in range(3):
            assert list(Account.objects.filter(name="Planned each time")) == [account]
    settings.BAKED_PREPARED_STATEMENTS = False
    for _ in range(3):
        assert list(Account.objects.filter(name="Planned each time")) == [account]
    assert prepared_statements() == before


def a_plan_a_migration_made_stale_is_prepared_again_outside_a_transaction():
    """Another connection changes the type of a column the statement returns (a migration while the app runs):
    PostgreSQL refuses the prepared plan. Outside a transaction the read is prepared again and answers; inside one
    it is never prepared."""
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
        with transaction.atomic():
            assert probe() == [7]  # a transaction reads client-side: no prepared plan to go stale
        assert probe() == [7] and probe() == [7]
    finally:
        other.close()
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE prepared_probe")


def reads_in_a_transaction_and_far_pages_are_not_prepared():
    """A plan made stale by a migration could not be retried inside a transaction: a transaction reads client-side.
    A page past the first is a statement per page number (OFFSET): not prepared either."""
    account = AccountFactory(name="In a transaction")
    before = prepared_statements()
    with transaction.atomic():
        for _ in range(3):
            assert list(Account.objects.filter(name="In a transaction")) == [account]
    for _ in range(3):
        assert list(Account.objects.filter(name__startswith="In a").order_by("pk")[1:2]) == []
    assert prepared_statements() == before


def test_a_read_postgresql_cannot_plan_with_bound_parameters_runs_client_side():
    """Outside a transaction a read refused for its bound parameters (Django #34255: a parameter in SELECT and GROUP
    BY; ``%s IS NULL`` with None; two statements) runs again with its values written in, and so do its later runs;
    in a transaction it is sent client-side from the start."""
    from django.db.models import Min, Value
    from django.db.models.functions import Greatest, Least

    from config import postgres

    AccountFactory(name="Grouped")
    def grouped():
        return list(Account.objects.annotate(g=Greatest("depth", Value(3))).values("g")
                    .annotate(m=Min("numchild"), least=Least("m", "g")).order_by("g"))

    expected = [{"g": 3, "m": 0, "least": 0}]
    postgres._client_bound.clear()
    assert grouped() == expected
    assert len(postgres._client_bound) == 1
    with CaptureQueriesContext(connection) as queries:
        assert grouped() == expected
    assert len(queries.captured_queries) == 1 and "$1" not in queries.captured_queries[0]["sql"]
    with transaction.atomic():
        assert grouped() == expected
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 WHERE %s IS NULL", [None])
        assert cursor.fetchall() == [(1,)]
        cursor.execute("SELECT %s; SELECT 2", [1])
        assert cursor.fetchall() == [(1,)]  # the first result, as Django's own cursor gives


def another_refusal_of_a_prepared_read_is_not_run_twice_and_stale_plans_recover_every_time():
    """Only a stale plan (refused before anything ran) is retried: another error of its class (0A000) from a
    prepared read with a side effect stands, the side effect once. And however often plans go stale, the
    connection's other prepared reads keep working (psycopg forgets the names the server dropped)."""
    import psycopg

    account = AccountFactory(name="Probe")
    with connection.cursor() as cursor:
        cursor.execute("""
            CREATE TABLE prepared_flag (fail boolean); INSERT INTO prepared_flag VALUES (false);
            CREATE SEQUENCE prepared_calls;
            CREATE TABLE prepared_probe (v integer); INSERT INTO prepared_probe VALUES (7);
            CREATE FUNCTION prepared_call(n integer) RETURNS integer LANGUAGE plpgsql AS $$
            BEGIN
              PERFORM nextval('prepared_calls');
              IF (SELECT fail FROM prepared_flag) THEN
                RAISE EXCEPTION 'not today' USING ERRCODE = 'feature_not_supported';
              END IF;
              RETURN n;
            END $$;""")
    def calls():
        return list(Account.objects.filter(pk=account.pk).values_list(RawSQL("SELECT prepared_call(%s)", (5,)),
                                                                      flat=True))

    def names():
        return list(Account.objects.filter(name="Probe").values_list("name", flat=True))

    def probe():
        return list(Account.objects.filter(pk=account.pk).values_list(
            RawSQL("SELECT v FROM prepared_probe", ()), flat=True))

    def calls_made():
        with connection.cursor() as cursor:
            cursor.execute("SELECT last_value FROM prepared_calls")
            return cursor.fetchone()[0]

    other = psycopg.connect(**connection.get_connection_params(), autocommit=True)
    try:
        assert calls() == [5] and calls() == [5]  # prepared
        other.execute("UPDATE prepared_flag SET fail = true")
        with pytest.raises(NotSupportedError, match="not today"):
            calls()
        assert calls_made() == 3  # run once, not retried
        other.execute("UPDATE prepared_flag SET fail = false")

        for kind in ("bigint", "integer", "bigint"):
            for _ in range(2):
                assert probe() == [7] and names() == ["Probe"]  # both prepared
            other.execute(f"ALTER TABLE prepared_probe ALTER COLUMN v TYPE {kind}")
            assert probe() == [7]  # stale: deallocated and run again
            assert names() == ["Probe"] and calls() == [5]  # the others prepared again, not lost
    finally:
        other.close()
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE prepared_probe; DROP TABLE prepared_flag; DROP SEQUENCE prepared_calls; "
                           "DROP FUNCTION prepared_call(integer)")


# Each transactional test restores the seeded rows afterwards (seconds): the checks above run in two tests.


def test_what_is_prepared_and_what_is_not(settings):
    a_read_is_prepared_on_its_second_run_and_serves_other_values()
    writes_are_never_prepared()
    a_read_with_more_parameters_than_the_protocol_allows_binds_client_side()
    a_read_of_at_most_max_params_is_prepared_and_one_more_is_not()
    reads_in_a_transaction_and_far_pages_are_not_prepared()
    reads_in_unprepared_and_with_the_setting_off_are_not_prepared(settings)


def test_a_stale_plan_is_run_again_and_no_other_refusal_is():
    a_plan_a_migration_made_stale_is_prepared_again_outside_a_transaction()
    another_refusal_of_a_prepared_read_is_not_run_twice_and_stale_plans_recover_every_time()
