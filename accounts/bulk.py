"""Writing many rows of one model at once through the database driver (issue 14: closing an invoice of 10,000
lines). Django's ``bulk_create`` builds a model instance and prepares every value of every row in Python: about
30 µs a row, 300 ms for an invoice of 10,000 lines, several times the GROUP BY that computes them. For plain rows
whose values are already in database form, the driver's own bulk path is a fraction of that: PostgreSQL's
``COPY … FROM STDIN``, SQLite's ``INSERT`` of many rows of ``VALUES``. Both go past Django's cursor wrapper: the
statements are not in ``connection.queries`` nor counted by ``assertNumQueries``."""

import contextlib
import gc
import sqlite3
from collections.abc import Iterable, Sequence

from django.db import connection

SQLITE_MAX_PARAMETERS = 32_766  # SQLite's default cap since 3.32 (some builds allow more: statements stay this size)


def insert_rows(model, fields: Sequence[str], rows: Iterable[tuple]) -> None:
    """Insert ``rows`` into ``model``'s table: tuples of the values of ``fields`` (field names; foreign keys as ids),
    in the current transaction. No model instances, signals or Python-side defaults: every column that has no
    database default and is not nullable must be among ``fields``, and values must be what the column stores
    (ints and strings here). Primary keys come from the database."""
    opts = model._meta
    quote = connection.ops.quote_name
    table = quote(opts.db_table)
    columns = ", ".join(quote(opts.get_field(name).column) for name in fields)
    # COPY and SQLite's driver cursor go past Django's cursor wrapper: its check of an atomic block already broken
    # by an error is made here, and their errors are translated here (IntegrityError, DataError, …)
    connection.validate_no_broken_transaction()
    with connection.cursor() as cursor, connection.wrap_database_errors:
        if connection.vendor == "postgresql":
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        elif connection.vendor != "sqlite":
            row_marks = "(" + ", ".join(["%s"] * len(fields)) + ")"
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES {row_marks}", list(rows))
        else:  # SQLite: as many rows of VALUES a statement as SQLite's own cap on parameters allows (32,766 by
            # default since 3.32, higher in some builds: at most 32,766 here, 4,095 invoice lines), through the
            # driver's cursor with its own "?" marks (Django's wrapper rewrites "%s" in every statement by a regular
            # expression: 14 ms of an invoice's 10,000 lines in 81 statements of Django's cap of 999; executemany
            # steps one row at a time: 32 ms for those lines).
            driver = connection.connection
            cap = min(driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER), SQLITE_MAX_PARAMETERS)
            size = max(1, cap // len(fields))
            marks = "(" + ", ".join(["?"] * len(fields)) + ")"
            rows = list(rows)
            plain = driver.cursor()
            try:
                for start in range(0, len(rows), size):
                    chunk = rows[start:start + size]
                    plain.execute(f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([marks] * len(chunk)),
                                  [value for row in chunk for value in row])
            finally:
                plain.close()


@contextlib.contextmanager
def collector_paused():
    """No cyclic garbage collection inside: for work that makes many short-lived objects without cycles (an
    invoice's 10,000 lines, their labels and rows), which are freed by their reference counts anyway. Their
    allocations set off full collections of the whole process's objects, nothing to collect: 20-100 ms of an
    invoice close on a 2-core machine, the median moving by a third between runs. Usable as a decorator; nested
    or in another thread, the outermost turns collection back on (a collection is only delayed, never lost)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
