"""PostgreSQL: reads are prepared statements of each connection, everything else binds client-side (issue 14).

Django's psycopg cursors bind parameters client-side: PostgreSQL parses and plans every query it is sent, and
on the console's pages planning costs more than running (0.1-1 ms a query against 0.02-0.6 ms, about a millisecond
a page in all). ``ReadPreparingCursor`` (the connection's ``cursor_factory``, set in ``config.settings`` when
``PREPARED_STATEMENTS`` is on) sends a ``SELECT`` with at most ``MAX_PARAMS`` parameters with server-side binding,
so that psycopg prepares it once the connection has run it ``prepare_threshold`` times and PostgreSQL plans it
again only when its values call for it (``plan_cache_mode`` auto). Every other statement (writes, DDL, a
``SELECT`` with a long ``IN`` list) is sent exactly as Django's own cursor sends it: literal values, one simple
query. So the 65,535-parameter cap of server-side binding, which Django's delete collector and ``bulk_create`` do
not respect, never applies, and a write is never prepared.

``unprepared()`` runs a block without preparing (a query whose best plan depends on its values). A statement
prepared before a migration changed the type of a column it reads ("cached plan must not change result type",
SQLSTATE 0A000) is prepared again and the read run once more outside a transaction; inside one the error stands,
and the rollback makes psycopg forget the connection's statements.
"""

import contextvars
import re
from contextlib import contextmanager

import psycopg
from django.conf import settings
from django.db.backends.postgresql.base import ServerBindingCursor
from psycopg._preparing import Prepare
from psycopg._queries import PostgresClientQuery, PostgresQuery
from psycopg.client_cursor import ClientCursorMixin
from psycopg.pq import TransactionStatus

# A baked list has at most 100 elements (accounts/baked.py): its queries stay prepared.
MAX_PARAMS = 128
_READ = re.compile(r"\s*SELECT\b", re.IGNORECASE)
_STALE_PLAN_SQLSTATE = "0A000"
_preparing = contextvars.ContextVar("preparing", default=True)


@contextmanager
def unprepared():
    """Reads in this block are not prepared: PostgreSQL plans each for its values."""
    token = _preparing.set(False)
    try:
        yield
    finally:
        _preparing.reset(token)


def prepares(query, params) -> bool:
    """Whether this statement is a read sent for preparing: a ``SELECT`` with at most ``MAX_PARAMS`` parameters,
    outside ``unprepared()``, with ``BAKED_PREPARED_STATEMENTS`` on (a test may turn it off)."""
    return (isinstance(query, str) and (params is None or len(params) <= MAX_PARAMS) and _preparing.get()
            and _READ.match(query) is not None and settings.BAKED_PREPARED_STATEMENTS)


class ReadPreparingCursor(ServerBindingCursor):
    """Django's server-binding cursor for a read with few parameters; Django's client-binding cursor otherwise
    (the three methods psycopg's ``ClientCursor`` changes, chosen per statement)."""

    _query_cls = PostgresClientQuery
    _on_server = False

    def execute(self, query, params=None, *, prepare=None, binary=None):
        self._on_server = prepares(query, params)
        self._query_cls = PostgresQuery if self._on_server else PostgresClientQuery
        if not self._on_server:
            return super().execute(query, params, prepare=prepare, binary=binary)
        idle = self._conn.info.transaction_status == TransactionStatus.IDLE
        try:
            return super().execute(query, params, prepare=prepare, binary=binary)
        except psycopg.errors.FeatureNotSupported as exc:
            if exc.sqlstate != _STALE_PLAN_SQLSTATE or not idle or not self._conn.autocommit:
                raise
            self._on_server, self._query_cls = False, PostgresClientQuery
            super().execute("DEALLOCATE ALL")  # psycopg sees it and forgets its names too
            self._on_server, self._query_cls = True, PostgresQuery
            return super().execute(query, params, prepare=prepare, binary=binary)

    def executemany(self, query, params_seq, *, returning=False):
        self._on_server, self._query_cls = False, PostgresClientQuery
        return super().executemany(query, params_seq, returning=returning)

    def stream(self, query, params=None, *, binary=None, size=1):
        self._on_server, self._query_cls = False, PostgresClientQuery
        return super().stream(query, params, binary=binary, size=size)

    def _execute_send(self, query, *, force_extended=False, binary=None):
        if self._on_server:
            return super()._execute_send(query, force_extended=force_extended, binary=binary)
        return ClientCursorMixin._execute_send(self, query, force_extended=force_extended, binary=binary)

    def _get_prepared(self, pgq, prepare=None):
        if self._on_server:
            return super()._get_prepared(pgq, prepare)
        return Prepare.NO, b""

    def _send_query_prepared(self, name, pgq, *, binary=None):
        # psycopg keeps the query it sent only when it was not prepared; Django's query log reads it there
        # (``last_executed_query``): the SQL sent, parameters as $1, $2…
        self._query = pgq
        return super()._send_query_prepared(name, pgq, binary=binary)
