"""Writing many rows of one model at once through the database driver (issue 14: closing an invoice of 10,000
lines). Django's ``bulk_create`` builds a model instance and prepares every value of every row in Python: about
30 µs a row, 300 ms for an invoice of 10,000 lines, several times the GROUP BY that computes them. For plain rows
whose values are already in database form, the driver's own bulk path is a fraction of that: PostgreSQL's
``COPY … FROM STDIN``, SQLite's ``INSERT`` of many rows of ``VALUES``."""

from collections.abc import Iterable, Sequence

from django.db import connection


def insert_rows(model, fields: Sequence[str], rows: Iterable[tuple]) -> None:
    """Insert ``rows`` into ``model``'s table: tuples of the values of ``fields`` (field names; foreign keys as ids),
    in the current transaction. No model instances, signals or Python-side defaults: every column that has no
    database default and is not nullable must be among ``fields``, and values must be what the column stores
    (ints and strings here). Primary keys come from the database."""
    opts = model._meta
    quote = connection.ops.quote_name
    table = quote(opts.db_table)
    columns = ", ".join(quote(opts.get_field(name).column) for name in fields)
    # COPY goes past Django's cursor wrapper: its errors are translated here (IntegrityError, DataError, …)
    row_marks = "(" + ", ".join(["%s"] * len(fields)) + ")"
    with connection.cursor() as cursor, connection.wrap_database_errors:
        if connection.vendor == "postgresql":
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        elif connection.vendor != "sqlite":
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES {row_marks}", list(rows))
        else:  # SQLite: as many rows of VALUES a statement as Django's parameter cap allows (999: 124 invoice lines);
            # executemany steps one row at a time: 32 ms for an invoice's 10,000 lines, against 24 ms this way
            size = max(1, connection.features.max_query_params // len(fields))
            rows = list(rows)
            for start in range(0, len(rows), size):
                chunk = rows[start:start + size]
                cursor.execute(f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([row_marks] * len(chunk)),
                               [value for row in chunk for value in row])
