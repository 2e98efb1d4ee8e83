"""``accounts.bulk.insert_rows`` writes what ``bulk_create`` would (issue 14: invoice lines through COPY on
PostgreSQL, rows of VALUES on SQLite)."""

import datetime
import sqlite3

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.bulk import SQLITE_MAX_PARAMETERS, insert_rows
from billing.models import Invoice, InvoiceLine
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db
FIELDS = ("invoice", "kind", "account", "description", "minutes", "amount_cents", "position", "stripe_invoice_item_id")


def rows_of(invoice):
    return list(invoice.lines.order_by("position").values_list(*[f if f not in ("invoice", "account") else f + "_id"
                                                                for f in FIELDS]))


def test_insert_rows_writes_what_bulk_create_writes():
    root = AccountFactory(name="Root")
    subs = [AccountFactory(parent=root, name=f"Ünïcode “quoted” \\ tab\there {i}") for i in range(3)]
    first, second = (Invoice.objects.create(account=root, period=f"2026-0{m}-01", plan_name="Pro", plan_price_cents=1,
                                            included_minutes=0, overage_cents_per_minute=0, total_minutes=0,
                                            overage_minutes=0, total_cents=0) for m in (5, 6))
    values = [("usage", sub.pk, sub.name + "\nnext line", 10 * i, 7 * i, i, "") for i, sub in enumerate(subs)]
    values.append(("plan", None, "No account (a null)", 0, 0, 3, ""))
    InvoiceLine.objects.bulk_create([InvoiceLine(invoice=first, kind=k, account_id=a, description=d, minutes=m,
                                                 amount_cents=c, position=p, stripe_invoice_item_id=s)
                                     for k, a, d, m, c, p, s in values])
    with CaptureQueriesContext(connection) as queries:
        insert_rows(InvoiceLine, FIELDS, ((second.pk, *v) for v in values))
    assert len(queries) <= 1  # one statement (COPY is not logged by Django's cursor wrapper)
    assert [r[1:] for r in rows_of(second)] == [r[1:] for r in rows_of(first)]
    assert len({line.pk for line in InvoiceLine.objects.all()}) == 8  # primary keys from the database


def test_more_rows_than_one_statement_takes_are_all_written_in_order():
    """SQLite's own parameter cap splits the rows over several statements (PostgreSQL copies them in one)."""
    root = AccountFactory(name="Root")
    invoice = Invoice.objects.create(account=root, period="2026-05-01", plan_name="Pro", plan_price_cents=1,
                                     included_minutes=0, overage_cents_per_minute=0, total_minutes=0,
                                     overage_minutes=0, total_cents=0)
    sqlite = connection.vendor == "sqlite"
    connection.ensure_connection()
    cap = (min(connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER), SQLITE_MAX_PARAMETERS)
           if sqlite else 999)
    size = cap // len(FIELDS)  # (PostgreSQL has no cap: 124 rows)
    count = 2 * size + 3  # two full statements and a short one
    values = [(invoice.pk, "usage", root.pk, f"line {i}", i, 2 * i, i, "") for i in range(count)]
    statements = []
    if sqlite:  # (the driver's own cursor: not in Django's query log)
        connection.connection.set_trace_callback(statements.append)
    try:
        with CaptureQueriesContext(connection) as queries:
            insert_rows(InvoiceLine, FIELDS, iter(values))
    finally:
        if sqlite:
            connection.connection.set_trace_callback(None)
    if sqlite:
        assert len([sql for sql in statements if sql.startswith("INSERT")]) == 3
    else:
        assert len(queries) == 1  # one COPY
    assert rows_of(invoice) == values


def test_insert_rows_of_nothing_writes_nothing():
    insert_rows(InvoiceLine, FIELDS, iter(()))
    assert not InvoiceLine.objects.exists()


def test_a_refused_row_raises_djangos_error_and_writes_nothing():
    from django.db import IntegrityError, transaction

    root = AccountFactory(name="Root")
    invoice = Invoice.objects.create(account=root, period="2026-05-01", plan_name="Pro", plan_price_cents=1,
                                     included_minutes=0, overage_cents_per_minute=0, total_minutes=0,
                                     overage_minutes=0, total_cents=0)
    with pytest.raises(IntegrityError), transaction.atomic():  # minutes is a positive integer column
        insert_rows(InvoiceLine, FIELDS, [(invoice.pk, "usage", root.pk, "ok", 1, 0, 1, ""),
                                          (invoice.pk, "usage", root.pk, "negative", -1, 0, 2, "")])
    assert not InvoiceLine.objects.exists()


def test_rows_are_refused_in_an_atomic_block_already_broken():
    """As Django's cursor refuses a query after an error inside ``atomic``, so does the driver's path."""
    from django.db import IntegrityError, transaction
    from django.db.transaction import TransactionManagementError

    root = AccountFactory(name="Root")
    invoice = Invoice.objects.create(account=root, period="2026-05-01", plan_name="Pro", plan_price_cents=1,
                                     included_minutes=0, overage_cents_per_minute=0, total_minutes=0,
                                     overage_minutes=0, total_cents=0)
    with pytest.raises(TransactionManagementError), transaction.atomic():
        try:
            Invoice.objects.create(account=root, period="2026-05-01", plan_name="Again", plan_price_cents=1,
                                   included_minutes=0, overage_cents_per_minute=0, total_minutes=0,
                                   overage_minutes=0, total_cents=0)  # the same (account, period): refused
        except IntegrityError:
            pass
        insert_rows(InvoiceLine, FIELDS, iter([(invoice.pk, "usage", root.pk, "line", 1, 1, 1, "")]))
    assert not InvoiceLine.objects.exists()


def test_collection_is_paused_inside_and_back_on_after_even_on_an_error():
    import gc

    from accounts.bulk import collector_paused

    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():  # nested: the outer one turns it back on
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ValueError), collector_paused():
        raise ValueError
    assert gc.isenabled()


def test_an_invoice_close_leaves_collection_on():
    """``invoice_close`` and ``compute_statement`` pause collection while they build lines (also when refused)."""
    import gc

    from billing.services import invoice_close
    from billing.statements import compute_statement

    root = AccountFactory(name="Root")
    compute_statement(root, datetime.date(2026, 5, 1))
    assert gc.isenabled()
    with pytest.raises(Exception):  # noqa: B017 (this period has not ended: refused)
        invoice_close(root=root, period=datetime.date(2099, 1, 1))
    assert gc.isenabled()
