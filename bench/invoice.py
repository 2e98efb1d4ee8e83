"""Consolidated invoice at scale: a root with 10,000 subaccounts and 1,000,000 usage records.

Prints the time to compute the statement (billing.statements.compute_statement: the invoice's
GROUP BY, the tree's names, the per-line pricing) and to close the invoice (billing.services.invoice_close:
the statement plus its 10,000 lines written with bulk_create, rolled back after each run) against the fastest
of two equivalent raw SQL GROUP BYs on the same data and indexes, measured in the same run after VACUUM
ANALYZE (SQLite: ANALYZE), the timings alternating (raw, statement, close, raw, …), and the ratios (target:
at most 2). Most records fall in the last, ended period (the one an invoice closes), the rest in this one.

The last line says PASS or MISS for the close (``--check``: exit 1 on a miss).

Run: .venv/bin/python bench/invoice.py [--subaccounts 10000] [--records 1000000] [--repeat 7] [--check]
     (prefix DATABASE_URL=postgres://… for PostgreSQL; it uses a throw-away test database)
"""

import argparse
import datetime
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402


def build(subaccounts: int, records: int):
    from accounts.models import Account
    from billing.models import Plan, Subscription, period_start
    from tests.factories import plan

    root = Account.objects.add_root(instance=Account(name="Bench Agency"))
    Subscription.objects.create(account=root, plan=plan("agency"))
    conv = Account._int2str
    now = datetime.datetime.now(datetime.UTC)
    from accounts.names import name_key

    children = [
        Account(name=f"Customer {i:05d}", name_key=name_key(f"Customer {i:05d}"),
                parent=root, path=root.path + conv(i + 1).rjust(4, "0"), depth=2,
                numchild=0, public_id=uuid.uuid4(), created_at=now)
        for i in range(subaccounts)
    ]
    Account.objects.bulk_create(children, batch_size=5000)
    Account.objects.filter(pk=root.pk).update(numchild=subaccounts)
    ids = list(Account.objects.filter(parent=root).values_list("pk", flat=True))
    other = period_start()
    period = period_start(other - datetime.timedelta(days=1))  # ended: an invoice can close it
    rng = random.Random(7)
    rows = ((rng.choice(ids), root.pk, period if n % 5 else other, period + datetime.timedelta(days=n % 25),
             rng.randrange(1, 30), 60) for n in range(records))
    table = "billing_usagerecord"
    cols = "account_id, billing_root_id, period, occurred_on, minutes, seconds, recorded_at"
    started = time.perf_counter()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for a, r, p, d, m, s in rows:
                    copy.write_row((a, r, p, d, m, s, now))
        else:
            batch = []
            for a, r, p, d, m, s in rows:
                batch.append((a, r, p.isoformat(), d.isoformat(), m, s, now.isoformat()))
                if len(batch) == 50000:
                    cursor.executemany(f"INSERT INTO {table} ({cols}) VALUES (?,?,?,?,?,?,?)", batch)
                    batch = []
            if batch:
                cursor.executemany(f"INSERT INTO {table} ({cols}) VALUES (?,?,?,?,?,?,?)", batch)
    with connection.cursor() as cursor:  # outside any transaction (VACUUM refuses one)
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    print(f"loaded {records:,} usage records for {subaccounts:,} subaccounts in {time.perf_counter() - started:.1f} s")
    return Account.objects.get(pk=root.pk), period, Plan.objects.get(code="agency")


def alternating(fns: dict, repeat: int) -> dict:
    """Each function's (median, min) over ``repeat`` rounds, one call of each per round, in turn, so a change
    in the machine's load touches every figure alike."""
    for fn in fns.values():
        fn()  # warm-up
    samples = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            started = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - started)
    return {name: (statistics.median(s), min(s)) for name, s in samples.items()}


TARGET = 2.0  # invoice close at most this many times the fastest raw GROUP BY


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--subaccounts", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--check", action="store_true", help="exit 1 when the close is over the target")
    args = parser.parse_args()

    setup_test_environment(debug=False)  # as production runs: no query log (with DEBUG on, Django logs every statement
    # and quotes each of its parameters through SQLite)
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from django.db import transaction

        from billing.services import invoice_close
        from billing.statements import compute_statement

        root, period, agency_plan = build(args.subaccounts, args.records)
        where = "WHERE period = %s AND billing_root_id = %s"
        raw_sqls = {  # two ways of asking the database for the same sums; the faster one is the baseline
            "raw GROUP BY": f"SELECT account_id, SUM(minutes) FROM billing_usagerecord {where} GROUP BY account_id",
            "raw GROUP BY, names": ("SELECT a.id, a.path, a.name, u.m FROM (SELECT account_id, SUM(minutes) AS m "
                                    f"FROM billing_usagerecord {where} GROUP BY account_id) u "
                                    "JOIN accounts_account a ON a.id = u.account_id"),
        }

        def raw(sql):
            def run():
                with connection.cursor() as cursor:
                    cursor.execute(sql, [period, root.pk])
                    return cursor.fetchall()
            return run

        def statement():
            return compute_statement(root, period, plan=agency_plan)

        def close():
            with transaction.atomic():
                invoice, created = invoice_close(root=root, period=period)
                assert created and invoice.lines.count() == len(first.lines) + 1
                transaction.set_rollback(True)  # the same invoice is closed again next round

        first = statement()
        assert first.total_minutes == sum(m for _, m in raw(raw_sqls["raw GROUP BY"])()), "statement and raw disagree"
        figures = alternating({**{name: raw(sql) for name, sql in raw_sqls.items()},
                               "compute_statement": statement, "invoice_close": close}, args.repeat)
        baseline_name = min(raw_sqls, key=lambda name: figures[name][0])
        baseline = figures[baseline_name][0]
        with connection.cursor() as cursor:
            plan_sql = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
            cursor.execute(plan_sql + raw_sqls[baseline_name], [period, root.pk])
            query_plan = " | ".join(str(row[-1]) for row in cursor.fetchall())
        print(f"database: {connection.vendor}; lines: {len(first.lines):,}; minutes: {first.total_minutes:,}; "
              f"{args.repeat} alternating rounds")
        for name, (median, minimum) in figures.items():
            ratio = "" if name in raw_sqls else f"   {median / baseline:5.2f}x the fastest raw query"
            print(f"{name:22} median {median * 1000:8.1f} ms   (min {minimum * 1000:.1f}){ratio}")
        print(f"fastest raw query: {baseline_name}; its plan: {query_plan}")
        close_ratio = figures["invoice_close"][0] / baseline
        missed = close_ratio > TARGET
        print(f"{'MISS' if missed else 'PASS'}  invoice close {close_ratio:.2f}x the fastest raw query "
              f"(target <= {TARGET:g}x)")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    if args.check and missed:
        sys.exit(1)


if __name__ == "__main__":
    main()
