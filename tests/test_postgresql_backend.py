"""``config/postgresql``: timestamps read by psycopg's own loader when Django's zone and the connection's are UTC,
the same datetimes Django's loader gives, through every kind of cursor; any other zone keeps Django's loader."""

import datetime

import pytest
from django.db import connection

from accounts.baked import Baked
from accounts.models import Account, AuditEvent
from tests.factories import AccountFactory

pytestmark = [pytest.mark.django_db,
              pytest.mark.skipif(connection.vendor != "postgresql", reason="the PostgreSQL backend")]

MOMENTS = [datetime.datetime(2026, 11, 28, 23, 59, 59, 999999, tzinfo=datetime.UTC),
           datetime.datetime(2027, 1, 1, 0, 0, 0, 1, tzinfo=datetime.UTC),
           datetime.datetime(1999, 12, 31, 12, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=-5)))]


def loader_class():
    """The class that reads ``timestamptz`` (OID 1184) as text on the connection."""
    import psycopg

    return connection.connection.adapters.get_loader(1184, psycopg.pq.Format.TEXT)


def test_the_backend_reads_timestamps_with_psycopgs_loader():
    import psycopg

    connection.ensure_connection()
    assert connection.utc_timestamps_by_psycopg
    assert loader_class() is psycopg.adapters.get_loader(1184, psycopg.pq.Format.TEXT)


_by_pk = Baked(lambda pk: AuditEvent.objects.filter(pk=pk))


@pytest.mark.parametrize("when", MOMENTS, ids=str)
def test_every_cursor_reads_the_same_aware_utc_datetimes(when):
    account = AccountFactory()
    event = AuditEvent.objects.create(account=account, action="test.moment", summary="s", created_at=when)
    reads = {
        "queryset": AuditEvent.objects.get(pk=event.pk).created_at,
        "values": AuditEvent.objects.filter(pk=event.pk).values_list("created_at", flat=True)[0],
        "server-side cursor": next(AuditEvent.objects.filter(pk=event.pk).iterator(chunk_size=10)).created_at,
        "baked": _by_pk(event.pk)[0].created_at,
        "baked again (prepared)": _by_pk(event.pk)[0].created_at,
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT created_at FROM accounts_auditevent WHERE id = %s", [event.pk])
        reads["raw cursor"] = cursor.fetchone()[0]
    for kind, value in reads.items():
        assert value == when, kind
        assert value.tzinfo is datetime.UTC, kind  # what Django's loader sets, not the offset sent


def test_another_zone_keeps_djangos_loader(settings):
    """A database ``TIME_ZONE`` other than UTC: Django's loader, with its zone, as Django alone would read it."""
    from django.db.backends.postgresql.psycopg_any import BaseTzLoader

    from config.postgresql.base import DatabaseWrapper

    paris = DatabaseWrapper({**connection.settings_dict, "TIME_ZONE": "Europe/Paris"}, alias="paris")
    try:
        paris.ensure_connection()
        assert not paris.utc_timestamps_by_psycopg
        with paris.cursor() as cursor:
            assert issubclass(cursor.cursor.adapters.get_loader(1184, 0), BaseTzLoader)
            cursor.execute("SELECT %s::timestamptz", [MOMENTS[0]])
            value = cursor.fetchone()[0]
        assert value == MOMENTS[0] and str(value.tzinfo) == "Europe/Paris"
    finally:
        paris.close()


def test_accounts_read_back_as_written():
    made = AccountFactory()
    assert Account.objects.get(pk=made.pk).created_at == made.created_at


def test_the_loader_follows_a_change_of_use_tz_and_back(settings):
    """Django's ``setting_changed`` re-runs ``ensure_timezone``: naive datetimes under ``USE_TZ = False`` (Django's
    loader again), psycopg's loader and aware UTC ones once it is back on."""
    connection.ensure_connection()
    settings.USE_TZ = False
    assert not connection.utc_timestamps_by_psycopg
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::timestamptz", ["2026-11-28 12:00:00+00"])
        assert cursor.fetchone()[0].tzinfo is None
    settings.USE_TZ = True
    assert connection.utc_timestamps_by_psycopg
    assert AuditEvent.objects.create(account=AccountFactory(), action="t", summary="s").created_at.tzinfo
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::timestamptz", [MOMENTS[0]])
        assert cursor.fetchone()[0].tzinfo is datetime.UTC
