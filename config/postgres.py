"""PostgreSQL: reads are prepared statements of each connection, everything else binds client-side (issue 14).

Django's psycopg cursors bind parameters client-side: PostgreSQL parses and plans every query it is sent, and
on the console's pages planning costs more than running (0.1-1 ms a query against 0.02-0.6 ms, about a millisecond
a page in all). ``ReadPreparingCursor`` (the connection's ``cursor_factory``, set in ``config.settings`` when
``BAKED_PREPARED_STATEMENTS`` is on) sends a read outside a transaction with server-side binding, so that psycopg
prepares it the second time the connection runs it and PostgreSQL plans it again only when its values call for it
(``plan_cache_mode`` auto). A read here is a ``SELECT`` with at most ``MAX_PARAMS`` parameters and no ``OFFSET``
(each page number would be a statement of its own). Everything else is sent exactly as Django's own cursor sends
it (values written in, one simple query):

- writes and DDL: never prepared, and the 65,535-parameter cap of server-side binding, which Django's delete
  collector and ``bulk_create`` do not respect, never applies;
- anything inside a transaction (``atomic``, autocommit off): a plan made stale by a migration elsewhere could
  not be retried there, so a transaction reads as before;
- reads in ``unprepared()`` (a query whose best plan depends on its values).

Two refusals are handled outside a transaction, where a read that failed has done nothing:

- **a plan made stale** by another connection's migration (a column it returns changed type: "cached plan must
  not change result type", SQLSTATE 0A000, raised before the statement runs): the connection's statements are
  deallocated (psycopg's names forgotten with them) and the read runs again, prepared anew later;
- **a read PostgreSQL cannot plan with bound parameters** although it runs with its values written in (a
  parameter in both SELECT and GROUP BY, Django #34255; ``%s IS NULL`` with None; two statements in one): it runs
  again client-side, and so does every later run of the same SQL in this process.
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
STALE_PLAN_SQLSTATE = "0A000"
STALE_PLAN_MESSAGE = "cached plan must not change result type"
# Refusals of a statement bound on the server that its client-side twin does not meet: grouping_error (a parameter
# in SELECT and GROUP BY), indeterminate_datatype (``$1 IS NULL``), syntax_error (several statements),
# undefined_function and ambiguous_function (an operator on an untyped parameter), datatype_mismatch.
_BINDING_REFUSALS = frozenset({"42803", "42P18", "42601", "42883", "42725", "42804"})
_MAX_CLIENT_BOUND = 1024
_client_bound: set[str] = set()  # SQL PostgreSQL refused with bound parameters: always sent client-side
_preparing = contextvars.ContextVar("preparing", default=True)


@contextmanager
def unprepared():
    """Reads in this block are not prepared: PostgreSQL plans each for its values."""
    token = _preparing.set(False)
    try:
        yield
    finally:
        _preparing.reset(token)


def prepares(query, params, pg_connection) -> bool:
    """Whether this statement is a read sent for preparing (see the module's docstring); ``BAKED_PREPARED_STATEMENTS``
    is read on every statement, so that a test can turn it off."""
    return (isinstance(query, str) and (params is None or len(params) <= MAX_PARAMS) and _preparing.get()
            and _READ.match(query) is not None and " OFFSET " not in query and query not in _client_bound
            and pg_connection.autocommit and pg_connection.info.transaction_status == TransactionStatus.IDLE
            and settings.BAKED_PREPARED_STATEMENTS)


def forget_prepared(pg_connection) -> None:
    """Deallocate every prepared statement of the connection and make psycopg forget their names, whatever it
    believes it has prepared (it notices a ``DEALLOCATE ALL`` sent as a query only the first time it sees one)."""
    manager = pg_connection._prepared
    if not manager.clear():  # clear() queues DEALLOCATE ALL only when it knows of a statement
        manager._to_flush.append(None)
    pg_connection.wait(manager.maintain_gen(pg_connection))


def is_stale_plan(exc) -> bool:
    diag = getattr(exc, "diag", None)
    return getattr(exc, "sqlstate", None) == STALE_PLAN_SQLSTATE and diag is not None and (
        diag.message_primary == STALE_PLAN_MESSAGE)


class ReadPreparingCursor(ServerBindingCursor):
    """Django's server-binding cursor for a read (``prepares``); Django's client-binding cursor otherwise (the three
    methods psycopg's ``ClientCursor`` changes, chosen per statement)."""

    _query_cls = PostgresClientQuery
    _on_server = False
    _prepared_state = Prepare.NO

    def _bind(self, on_server: bool) -> None:
        self._on_server = on_server
        self._query_cls = PostgresQuery if on_server else PostgresClientQuery
        self._prepared_state = Prepare.NO

    def execute(self, query, params=None, *, prepare=None, binary=None):
        self._bind(prepares(query, params, self._conn))
        if not self._on_server:
            return super().execute(query, params, prepare=prepare, binary=binary)
        try:
            return super().execute(query, params, prepare=prepare, binary=binary)
        except psycopg.errors.FeatureNotSupported as exc:
            # only a statement prepared before this run can have a stale plan; nothing ran (the plan is checked
            # first), so running it again is safe
            if exc.sqlstate != STALE_PLAN_SQLSTATE or self._prepared_state is not Prepare.YES:
                raise
            forget_prepared(self._conn)
            if not is_stale_plan(exc):
                raise
            self._bind(True)
            return super().execute(query, params, prepare=prepare, binary=binary)
        except psycopg.errors.ProgrammingError as exc:
            if exc.sqlstate not in _BINDING_REFUSALS or self._prepared_state is not Prepare.NO:
                raise
            if len(_client_bound) >= _MAX_CLIENT_BOUND:
                _client_bound.clear()
            _client_bound.add(query)
            self._bind(False)
            return super().execute(query, params, prepare=prepare, binary=binary)

    def executemany(self, query, params_seq, *, returning=False):
        self._bind(False)
        return super().executemany(query, params_seq, returning=returning)

    def stream(self, query, params=None, *, binary=None, size=1):
        self._bind(False)
        return super().stream(query, params, binary=binary, size=size)

    def _execute_send(self, query, *, force_extended=False, binary=None):
        if self._on_server:
            return super()._execute_send(query, force_extended=force_extended, binary=binary)
        return ClientCursorMixin._execute_send(self, query, force_extended=force_extended, binary=binary)

    def _get_prepared(self, pgq, prepare=None):
        if not self._on_server:
            return Prepare.NO, b""
        prepared = super()._get_prepared(pgq, prepare)
        self._prepared_state = prepared[0]
        return prepared

    def _send_query_prepared(self, name, pgq, *, binary=None):
        # psycopg keeps the query it sent only when it was not prepared; Django's query log reads it there
        # (``last_executed_query``): the SQL sent, parameters as $1, $2…
        self._query = pgq
        return super()._send_query_prepared(name, pgq, binary=binary)
