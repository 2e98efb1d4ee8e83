"""Consolidated invoice at scale: a root with 10,000 subaccounts and 1,000,000 usage records.

Prints the time to compute the statement (billing.statements.compute_statement: the invoice's
GROUP BY, the tree's names, the per-line pricing) against the fastest equivalent raw SQL GROUP BY
on the same data and indexes, measured in the same run, and their ratio (target: at most 2).

Run: .venv/bin/python bench/invoice.py [--subaccounts 10000] [--records 1000000] [--repeat 7]
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
    children = [
        Account(name=f"Customer {i:05d}", parent=root, path=root.path + conv(i + 1).rjust(4, "0"), depth=2,
                numchild=0, public_id=uuid.uuid4(), created_at=now)
        for i in range(subaccounts)
    ]
    Account.objects.bulk_create(children, batch_size=5000)
    Account.objects.filter(pk=root.pk).update(numchild=subaccounts)
    ids = list(Account.objects.filter(parent=root).values_list("pk", flat=True))
    period = period_start()
    other = period_start(period - datetime.timedelta(days=1))
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
        cursor.execute("ANALYZE")
    print(f"loaded {records:,} usage records for {subaccounts:,} subaccounts in {time.perf_counter() - started:.1f} s")
    return Account.objects.get(pk=root.pk), period, Plan.objects.get(code="agency")


def timed(fn, repeat):
    fn()  # warm-up
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), min(samples)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--subaccounts", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from billing.statements import compute_statement

        root, period, agency_plan = build(args.subaccounts, args.records)
        placeholder = "%s"
        raw_sql = ("SELECT account_id, SUM(minutes) FROM billing_usagerecord "
                   f"WHERE period = {placeholder} AND billing_root_id = {placeholder} GROUP BY account_id")

        def raw():
            with connection.cursor() as cursor:
                cursor.execute(raw_sql, [period, root.pk])
                return cursor.fetchall()

        def ours():
            return compute_statement(root, period, plan=agency_plan)

        statement = ours()
        assert statement.total_minutes == sum(m for _, m in raw()), "statement and raw SQL disagree"
        raw_median, raw_min = timed(raw, args.repeat)
        ours_median, ours_min = timed(ours, args.repeat)
        with connection.cursor() as cursor:
            plan_sql = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
            cursor.execute(plan_sql + raw_sql, [period, root.pk])
            query_plan = " | ".join(str(row[-1]) for row in cursor.fetchall())
        print(f"database: {connection.vendor}; lines: {len(statement.lines):,}; minutes: {statement.total_minutes:,}")
        print(f"raw SQL GROUP BY:   median {raw_median * 1000:8.1f} ms   (min {raw_min * 1000:.1f})")
        print(f"compute_statement:  median {ours_median * 1000:8.1f} ms   (min {ours_min * 1000:.1f})")
        print(f"ratio (median):     {ours_median / raw_median:.2f}   target <= 2")
        print(f"raw query plan: {query_plan}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
