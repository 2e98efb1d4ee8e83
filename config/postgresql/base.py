"""Django's PostgreSQL backend, with ``timestamptz`` values read by psycopg's own loader when both zones are UTC
(issue 14).

Django registers its own loader for ``timestamptz`` (``psycopg_any.BaseTzLoader``): a Python subclass of
psycopg's, which parses each value and then sets Django's time zone on it. psycopg's loader is compiled
(``psycopg[binary]``), about three times faster: 3.3 µs a value saved, 150 values on the audit trail's page. When
Django's time zone for the database is UTC (``USE_TZ`` without a ``TIME_ZONE`` of the database, as here) and the
connection's is too (Django sets it at connect), psycopg's loader gives the same datetimes, aware in
``datetime.timezone.utc``: this backend puts it on the connection, and its cursors do not put Django's back (Django
would, as it only trusts its own class). Any other zone keeps Django's loader.
``tests/test_postgresql_backend.py`` reads timestamps through every kind of cursor both ways."""

import datetime

from django.db.backends.postgresql import base
from django.db.backends.postgresql.psycopg_any import is_psycopg3
from django.utils.asyncio import async_unsafe

if is_psycopg3:
    import psycopg
    from psycopg.pq import Format


class DatabaseWrapper(base.DatabaseWrapper):
    # True while the connection reads timestamps with psycopg's loader (``accounts.baked`` asks too)
    utc_timestamps_by_psycopg = False

    def init_connection_state(self):
        self.utc_timestamps_by_psycopg = False  # a new connection starts with Django's loader
        super().init_connection_state()  # (the connection's time zone is set here)
        self._choose_timestamp_loader()

    def ensure_timezone(self):
        # Django's setting_changed, when USE_TZ or TIME_ZONE change: the loader follows the zones
        changed = super().ensure_timezone()
        self._choose_timestamp_loader()
        return changed

    def _choose_timestamp_loader(self):
        """psycopg's loader while both zones are UTC, Django's (with its zone) otherwise."""
        if self.connection is None:
            return
        utc = bool(is_psycopg3 and self.timezone is datetime.UTC
                   and self.connection.info.parameter_status("TimeZone") == "UTC")
        if utc and not self.utc_timestamps_by_psycopg:
            self.connection.adapters.register_loader(
                "timestamptz", psycopg.adapters.get_loader(base.TIMESTAMPTZ_OID, Format.TEXT))
        elif self.utc_timestamps_by_psycopg and not utc:
            base.register_tzloader(self.timezone, self.connection)
        self.utc_timestamps_by_psycopg = utc

    @async_unsafe
    def create_cursor(self, name=None):
        if not self.utc_timestamps_by_psycopg:
            return super().create_cursor(name)
        if not name:
            return self.connection.cursor()
        # Django's server-side cursors (``QuerySet.iterator()``), without its loader
        if self.settings_dict["OPTIONS"].get("server_side_binding") is not True:
            return base.ServerSideCursor(self.connection, name=name, scrollable=False,
                                         withhold=self.connection.autocommit)
        return self.connection.cursor(name, scrollable=False, withhold=self.connection.autocommit)
