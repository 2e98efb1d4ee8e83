"""Querysets compiled once per process, then run with new parameters: for the queries every page makes.

Django builds and compiles a queryset on every call: for the short indexed queries of the hot path (the URL's
account, the person's memberships and permission rows, the switcher's page) that costs two to three times the
query itself. ``Baked(build)`` calls ``build`` with stand-in values (twice, with two different sets), keeps the
SQL the ORM wrote and where each argument went in its parameters, and from then on runs that SQL with the
caller's values through Django's own result machinery (model instances, ``select_related``, values, converters),
so the rows are exactly those of ``list(build(*args))``.

Rules for ``build``: positional arguments are the query's values (int, str, UUID, datetime, date, or a list or
tuple of one of them: its length becomes part of the shape); keyword arguments are the shape (slices, flags,
anything that changes the SQL) and are passed as they are. ``build`` must not read anything else that varies
(``timezone.now()``, settings): a value that differs between the two compilations and is not an argument is
refused (``ImproperlyConfigured``), so a frozen clock can never be baked in. A value that only derives from an
argument (an upper bound computed from a path) must be an argument of its own. ``None`` or ``bool`` arguments,
and shapes the ORM compiles to nothing (an empty ``IN``), run the plain queryset.

On PostgreSQL (psycopg 3) the SQL is also a prepared statement of each connection (``BAKED_PREPARED_STATEMENTS``,
on by default): sent with its parameters bound on the server, parsed and planned once per connection instead of on
every request. Only these queries, with their short parameter lists (at most ``MAX_LIST`` per list), are prepared:
everything else keeps Django's client-side binding (no 65,535-parameter cap on a large delete, say). psycopg keeps
at most ``prepared_max`` statements per connection and forgets them all on a rollback or DDL on that connection. A
migration run from elsewhere that changes a selected column's type makes PostgreSQL refuse the old plan ("cached plan
must not change result type"): outside a transaction the query is prepared again and run once more; inside one the
error stands and the transaction's rollback clears the connection's statements. Behind a pooler in transaction mode
it needs one that keeps prepared statements per server connection (PgBouncer 1.22 or later with
``max_prepared_statements`` set: psycopg sends ``DEALLOCATE ALL`` after a rollback); otherwise turn it off.
"""

import copy
import datetime
import threading
import uuid
import weakref

from django.conf import settings
from django.core.exceptions import EmptyResultSet, FullResultSet, ImproperlyConfigured, ValidationError
from django.db import NotSupportedError, connections
from django.db.models import F, Func, IntegerField
from django.db.models.query import QuerySet

# Off: every call runs the plain queryset (tests/conftest.py turns it off under TEST_FAKE_NOW, whose ``Now()`` is
# a parameter read from the Python clock).
ENABLED = True
# Shapes kept per query, oldest dropped first: a shape includes a page's offset, and pages are the visitor's choice.
MAX_SHAPES = 128
# Lists longer than this run unbaked (each element needs a stand-in of its own).
MAX_LIST = 100
# Stand-ins: each argument (each element of a list argument) gets a number ``k`` of its own, and the two sets
# differ in every part a derived value could keep (year, month, day, time; magnitude and parity; case and
# surrounding blanks), so a parameter computed from an argument (a date's month start, ``n // 10``, a lowercased
# name) differs between the two compilations and is refused instead of being frozen. Integers stay within a
# small integer column's range (the ORM drops a condition whose value cannot fit the column).
_INT_BASES = (17_000, 26_001)
# % and _ show whether the ORM escaped it for LIKE; the two differ in length too, so that a parameter padded to
# the argument's width is refused rather than replayed wrongly.
_STR_MARKS = (" \x1fBk:{k}%_\\\x1f ", "\tbAKED-stand-IN:{k}%_\\ ")


def row_count() -> Func:
    """``COUNT(id)`` as a column the ORM does not group by: selected alone, one row whatever matches."""
    return Func(F("pk"), function="COUNT", output_field=IntegerField())


def _stand_in(value, k: int, stand_set: int):
    if isinstance(value, bool):
        raise TypeError("bool")
    if isinstance(value, int):
        return _INT_BASES[stand_set] + (2 + stand_set) * k
    if isinstance(value, str):
        return _STR_MARKS[stand_set].format(k=k)
    if isinstance(value, uuid.UUID):
        return uuid.UUID(int=((0xBA4ED, 0x5EED1)[stand_set] << 96) + k)
    if isinstance(value, datetime.datetime):
        first = (datetime.datetime(2001, 2, 3, 4, 5, 6, 7, tzinfo=datetime.UTC),
                 datetime.datetime(2013, 11, 27, 17, 48, 59, 912_345, tzinfo=datetime.UTC))[stand_set]
        return first + datetime.timedelta(days=(1 + stand_set) * k, seconds=k, microseconds=k)
    if isinstance(value, datetime.date):
        return (datetime.date(1901, 1, 1), datetime.date(1987, 9, 17))[stand_set] + datetime.timedelta(
            days=(40 + stand_set) * k)
    raise TypeError(type(value).__name__)


class _Param:
    """How one parameter of the SQL is made from the arguments: a constant, or a function of one argument."""

    __slots__ = ("arg", "index", "make", "value")

    def __init__(self, value=None, arg=None, index=None, make=None):
        self.value, self.arg, self.index, self.make = value, arg, index, make

    def __call__(self, args):
        if self.arg is None:
            return self.value
        value = args[self.arg]
        if self.index is not None:
            value = value[self.index]
        return self.make(value)


def _candidates(connection, stand):
    """(function, the parameter it makes of ``stand``) for each way the ORM may pass an argument to the database."""
    ops = connection.ops
    yield (lambda v: v), stand
    if isinstance(stand, uuid.UUID):
        yield (lambda v: v.hex), stand.hex
    elif isinstance(stand, datetime.datetime):
        yield ops.adapt_datetimefield_value, ops.adapt_datetimefield_value(stand)
    elif isinstance(stand, datetime.date):
        yield ops.adapt_datefield_value, ops.adapt_datefield_value(stand)


def _match(connection, param, stand):
    """A function of the argument that gives ``param`` when given ``stand``, or None."""
    if isinstance(stand, str) and isinstance(param, str):
        escaped = connection.ops.prep_for_like_query(stand)
        for found, prep in ((escaped, connection.ops.prep_for_like_query), (stand, lambda v: v)):
            at = param.find(found)
            if at >= 0:
                before, after = param[:at], param[at + len(found):]
                return lambda v, prep=prep, before=before, after=after: f"{before}{prep(v)}{after}"
        return None
    for make, made in _candidates(connection, stand):
        if type(made) is type(param) and made == param:
            return make
    if type(stand) is int and isinstance(param, int) and not isinstance(param, bool) and int(param) == stand:
        kind = type(param)  # an int the driver's adapter wraps (psycopg's Int4 for an IntegerField's lookups)
        return lambda v, kind=kind: kind(v)
    return None


class _Entry:
    __slots__ = ("compiler", "converters", "params", "queryset", "sql")

    def __init__(self, queryset, compiler, sql, params):
        self.queryset, self.compiler, self.sql, self.params = queryset, compiler, sql, params
        self.converters = None  # (weak reference to a connection, the columns' converters on that connection)


class _Query:
    """The baked queryset's query, answering ``get_compiler`` with the compiled one (everything else: the query)."""

    __slots__ = ("_compiler", "_query")

    def __init__(self, query, compiler):
        self._query, self._compiler = query, compiler

    def get_compiler(self, using=None, connection=None, elide_empty=True):
        return self._compiler

    def __getattr__(self, name):
        return getattr(self._query, name)


class _QuerySet:
    """What Django's iterables read of a queryset, with the baked query."""

    __slots__ = ("_queryset", "query")

    def __init__(self, queryset, query):
        self._queryset, self.query = queryset, query

    def __getattr__(self, name):
        return getattr(self._queryset, name)


try:  # psycopg 3: the driver whose cursors can prepare
    import psycopg
    from django.db.backends.postgresql.base import TIMESTAMPTZ_OID
    from django.db.backends.postgresql.psycopg_any import register_tzloader
    from psycopg.pq import Format
except ImportError:  # nothing is prepared
    psycopg = None

# PostgreSQL's refusal of a prepared statement whose columns changed type since it was prepared (a migration):
# "cached plan must not change result type", SQLSTATE 0A000 (feature_not_supported), raised before the statement
# runs. On any error of that class outside a transaction the connection's statements are deallocated
# (``forget_prepared``); the query runs again only when the message says the plan was stale (another refusal of
# that class, a function's own, is not run twice).
_STALE_PLAN_SQLSTATE = "0A000"
_STALE_PLAN_MESSAGE = "cached plan must not change result type"


def forget_prepared(pg_connection) -> None:
    """Deallocate every prepared statement of the psycopg connection and make psycopg forget their names, whatever
    it believes it has prepared: it notices a ``DEALLOCATE ALL`` sent as a query only the first time it sees one, so
    a second stale plan on a connection would leave the server without the statements psycopg still runs."""
    manager = pg_connection._prepared
    if not manager.clear():  # clear() queues DEALLOCATE ALL only when it knows of a statement
        manager._to_flush.append(None)
    pg_connection.wait(manager.maintain_gen(pg_connection))


if psycopg is not None:
    class _PreparedCursor(psycopg.Cursor):
        """A psycopg cursor that binds on the server; psycopg prepares a statement the second time a connection
        runs it (``prepare_threshold`` 1) and keeps the name, so a shape run once (a far page, a search) costs no
        extra round trip and takes no room among the connection's ``prepared_max`` statements."""

        def _send_query_prepared(self, name, pgq, *, binary=None):
            # psycopg keeps the query it sent only when it was not prepared; Django's query log reads it there
            # (``last_executed_query``): the SQL sent, parameters as $1, $2…
            self._query = pgq
            return super()._send_query_prepared(name, pgq, binary=binary)


class _Preparing:
    """The database connection as a baked query's compiler sees it: its cursors prepare their statement
    (``_PreparedCursor``), made the way Django makes its own (health check, time zone, query log and execute
    wrappers); everything else is the connection's."""

    __slots__ = ("_db",)

    def __init__(self, db):
        self._db = db

    def cursor(self):
        db = self._db
        db.close_if_health_check_failed()
        db.ensure_connection()
        with db.wrap_database_errors:
            if db.connection.prepare_threshold is None:  # Django's default: psycopg prepares nothing
                # only these cursors prepare: Django's own (client-side binding) never do, whatever the threshold
                db.connection.prepare_threshold = 1
            cursor = _PreparedCursor(db.connection)
            if not getattr(db, "utc_timestamps_by_psycopg", False) and (  # (config/postgresql: psycopg's loader)
                    db.timezone != db.connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT).timezone):
                register_tzloader(db.timezone, cursor)
            return db._prepare_cursor(cursor)

    def __getattr__(self, name):
        return getattr(self._db, name)


def _prepares(connection) -> bool:
    return (psycopg is not None and connection.vendor == "postgresql"
            and getattr(settings, "BAKED_PREPARED_STATEMENTS", True))


class Baked:
    """``Baked(build)(*values, **shape)`` is ``list(build(*values, **shape))``, compiled once per shape.

    ``prepare=False``: never a prepared statement, so PostgreSQL plans each run for its values. For a query whose
    best plan depends on them (a subtree of 50 accounts or of 10,000): a prepared statement may settle on one
    generic plan for both."""

    def __init__(self, build, *, prepare: bool = True, count_rows: bool = False):
        # count_rows: the SQL is wrapped as ``SELECT COUNT(*) FROM (…)``, one row of one column, read back under
        # the name of the query's one selected column (``capped_count``)
        self.build, self.prepare, self.count_rows = build, prepare, count_rows
        self._entries: dict = {}
        self._lock = threading.Lock()
        self._sliced = self._counted = self._capped = None

    def pages(self, *args, **shape) -> "Pages":
        """The rows for a ``Paginator``: its ``count()`` and each slice one baked query."""
        return Pages(self, args, shape)

    def sliced(self) -> "Baked":
        if self._sliced is None:
            self._sliced = Baked(lambda *args, _start, _stop, **shape: self.build(*args, **shape)[_start:_stop],
                                 prepare=self.prepare)
        return self._sliced

    def capped_count(self) -> "Baked":
        """The rows counted no further than ``_cap + 1`` (``accounts.paging.count_at_most``): ``SELECT COUNT(*)
        FROM (SELECT id … LIMIT cap + 1)``, called with the cap as ``_cap``; answers ``[{"pk": n}]``."""
        if self._capped is None:
            self._capped = Baked(lambda *args, _cap, **shape: self.build(*args, **shape).order_by().values("pk")[
                : _cap + 1], prepare=self.prepare, count_rows=True)
        return self._capped

    def counted(self) -> "Baked":
        """``SELECT COUNT(*)`` of the rows (one row, one column)."""
        if self._counted is None:
            def count(*args, **shape):
                qs = self.build(*args, **shape)
                if qs.query.distinct or qs.query.combinator or qs.query.group_by is not None or any(
                        getattr(a, "contains_aggregate", False) for a in qs.query.annotations.values()):
                    raise ImproperlyConfigured("Baked.pages: count a plain filtered queryset only.")
                return qs.order_by().values_list(row_count())
            self._counted = Baked(count, prepare=self.prepare)
        return self._counted

    def __call__(self, *args, **shape):
        if not ENABLED or any(a is None or isinstance(a, bool) or (isinstance(a, (list, tuple)) and (
                len(a) > MAX_LIST or any(v is None or isinstance(v, bool) for v in a))) for a in args):
            return self._plain(args, shape)
        connection = connections["default"]
        key = (connection.alias, connection.vendor, tuple(sorted(shape.items())),
               tuple((type(a), tuple(map(type, a))) if isinstance(a, (list, tuple)) else type(a) for a in args))
        entry = self._entries.get(key)
        if entry is None:
            with self._lock:
                entry = self._entries.get(key)
                if entry is None:
                    entry = self._bake(connection, args, shape)
                    while len(self._entries) >= MAX_SHAPES:
                        self._entries.pop(next(iter(self._entries)))
                    self._entries[key] = entry
        if entry is False:  # the ORM writes no SQL for this shape (an empty IN): let it answer
            return self._plain(args, shape)
        compiler = copy.copy(entry.compiler)
        compiler.connection = connection  # connections are per thread
        sql, params = entry.sql, tuple(p(args) for p in entry.params)
        compiler.as_sql = lambda *a, **k: (sql, params)
        # The columns' converters depend on the columns and the connection only: worked out once (Django looks them
        # up for every query).
        converters = entry.converters
        if converters is None or converters[0]() is not connection:
            fields = [column[0] for column in compiler.select[0:compiler.col_count]]
            # a weak reference: an entry does not keep a finished thread's connection alive
            converters = entry.converters = (weakref.ref(connection), compiler.get_converters(fields))
        compiler.get_converters = lambda expressions, converters=converters[1]: converters
        queryset = entry.queryset
        baked = _QuerySet(queryset, _Query(queryset.query, compiler))
        if not self.prepare or not _prepares(connection):
            return list(queryset._iterable_class(baked))
        compiler.connection = _Preparing(connection)
        try:
            return list(queryset._iterable_class(baked))
        except NotSupportedError as exc:
            if (getattr(exc.__cause__, "sqlstate", None) != _STALE_PLAN_SQLSTATE or connection.in_atomic_block
                    or not connection.get_autocommit()):
                raise  # in a transaction: its rollback makes psycopg forget the connection's statements
            with connection.wrap_database_errors:  # a connection that breaks here is marked unusable
                forget_prepared(connection.connection)
            if exc.__cause__.diag.message_primary != _STALE_PLAN_MESSAGE:
                raise  # (a server answering in another language: deallocated, the next run prepares again)
            return list(queryset._iterable_class(baked))

    def _plain(self, args, shape) -> list:
        """What the plain queryset answers (Django compiles it on this call)."""
        queryset = self.build(*args, **shape)
        return [{"pk": queryset.count()}] if self.count_rows else list(queryset)

    def _compile(self, connection, args, shape, stand_set):
        numbers = iter(range(10**6))  # one stand-in number per argument and per list element, none shared
        stands = tuple([_stand_in(v, next(numbers), stand_set) for v in a]
                       if isinstance(a, (list, tuple)) else _stand_in(a, next(numbers), stand_set)
                       for a in args)
        queryset = self.build(*stands, **shape)
        if not isinstance(queryset, QuerySet) or queryset._prefetch_related_lookups:
            raise ImproperlyConfigured("Baked: build must return a QuerySet without prefetch_related.")
        compiler = queryset.query.get_compiler(connection=connection)
        try:
            sql, params = compiler.as_sql()
        except (EmptyResultSet, FullResultSet):
            return None
        return queryset, compiler, sql, params, stands

    def _bake(self, connection, args, shape):
        try:
            first = self._compile(connection, args, shape, 0)
            second = self._compile(connection, args, shape, 1)
        except (TypeError, ValueError, ValidationError):  # no stand-in for an argument (or the field refuses it)
            return False
        if first is None or second is None:
            return False
        queryset, compiler, sql, params, stands = first
        _, _, sql2, params2, stands2 = second
        if sql != sql2 or len(params) != len(params2):
            raise ImproperlyConfigured(f"Baked: {self.build.__qualname__} writes different SQL for different values; "
                                       "pass what changes the SQL as a keyword argument.")
        made = []
        for param, param2 in zip(params, params2, strict=True):
            made.append(self._place(connection, param, param2, stands, stands2))
        if self.count_rows:
            sql = f"SELECT COUNT(*) FROM ({sql}) counted"
        return _Entry(queryset, compiler, sql, made)

    def _place(self, connection, param, param2, stands, stands2) -> _Param:
        for i, (stand, stand2) in enumerate(zip(stands, stands2, strict=True)):
            pairs = (list(enumerate(zip(stand, stand2, strict=True))) if isinstance(stand, list)
                     else [(None, (stand, stand2))])
            for index, (one, two) in pairs:
                make = _match(connection, param, one)
                if make is not None:
                    if make(two) != param2:
                        break
                    return _Param(arg=i, index=index, make=make)
        if param != param2:
            raise ImproperlyConfigured(
                f"Baked: {self.build.__qualname__} reads a value that is not one of its arguments ({param!r} then "
                f"{param2!r}): pass it as an argument.")
        return _Param(value=param)


def empty_slice(key: slice) -> bool:
    """Whether the slice a ``Paginator`` asks for holds no row (``[0:0]``: its first page when nothing matched)."""
    return key.stop is not None and key.stop <= (key.start or 0)


class Pages:
    """What a ``Paginator`` needs of a queryset (``count()`` and slices), each a baked query; iterating reads every
    row."""

    def __init__(self, baked: Baked, args: tuple, shape: dict):
        self.baked, self.args, self.shape = baked, args, shape
        self.cap, self.more, self.total = None, False, None

    def at_most(self, cap: int) -> "Pages":
        """Count at most ``cap`` rows, so that a count never reads a whole large table: the paginator offers the
        first ``cap`` rows, and ``more`` says (once counted) whether more match."""
        self.cap = cap
        return self

    def counted_as(self, total: int) -> "Pages":
        """The number of rows is known (a stored count, such as an account's ``numchild``): no COUNT query."""
        self.total = total
        return self

    def count(self) -> int:
        if self.total is not None:
            return self.total
        if self.cap is None:
            return self.baked.counted()(*self.args, **self.shape)[0][0]
        found = self.baked.capped_count()(*self.args, _cap=self.cap, **self.shape)[0]["pk"]
        self.more = found > self.cap
        return min(found, self.cap)

    def __getitem__(self, key: slice) -> list:
        if not isinstance(key, slice) or key.step is not None:
            raise TypeError("Pages take a slice.")
        if empty_slice(key):
            return []  # (the ORM would compile the whole query to find nothing)
        return self.baked.sliced()(*self.args, **self.shape, _start=key.start or 0, _stop=key.stop)

    def __iter__(self):
        return iter(self[0:None])
