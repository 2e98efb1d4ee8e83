"""Bulk provisioning at scale: one file of 10,000 accounts (nested up to 5 levels, one owner invitation per 100 rows).

Prints rows per second of ``accounts.provisioning.provision`` (reading, checking and writing the whole file, the
invitation emails included) against raw ``bulk_create`` of the same account rows (paths computed beforehand,
nothing checked), measured alternately in the same run, and the ratio of the medians (target: at least 0.25,
and under 60 s for the file).

Each run happens in a transaction that is rolled back, so every run starts from the same database.

Run: .venv/bin/python bench/provision.py [--rows 10000] [--repeat 5]
     (prefix DATABASE_URL=postgres://… for PostgreSQL; it uses a throw-away test database)
"""

import argparse
import csv
import io
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

from django.db import connection, transaction  # noqa: E402
from django.test import TestCase  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

MAX_DEPTH = 5


def make_file(rows: int, roots: int, seed: int = 7) -> tuple[str, list[tuple[str, str, int, int]]]:
    """The CSV text (rows shuffled) and (external_id, name, depth, parent index) of each account, parents first."""
    rng = random.Random(seed)
    nodes: list[tuple[str, str, int, int]] = []  # external_id, name, depth, parent index (-1: top)
    open_parents: list[int] = []
    children: dict[int, int] = {}
    for i in range(rows):
        if i < roots:
            nodes.append((f"ext-{i:05d}", f"Agency {i:03d}", 1, -1))
        else:
            parent = rng.choice(open_parents)
            children[parent] = children.get(parent, 0) + 1
            nodes.append((f"ext-{i:05d}", f"Customer {i:05d}", nodes[parent][2] + 1, parent))
        if nodes[-1][2] < MAX_DEPTH:
            open_parents.append(i)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["external_id", "name", "parent", "owner_email", "plan", "limit_minutes", "access.agents"])
    order = list(range(rows))
    rng.shuffle(order)
    for i in order:
        ext, name, depth, parent = nodes[i]
        writer.writerow([ext, name, nodes[parent][0] if parent >= 0 else "",
                         f"owner{i:05d}@bench.example" if i % 100 == 0 else "",
                         "agency" if depth == 1 else "", "1000" if depth == 2 else "",
                         "read" if depth == 2 and i % 3 == 0 else ""])
    return out.getvalue(), nodes


def raw_objects(nodes):
    """The same accounts as model instances with their paths and parents, as a hand-written loader would have them."""
    from accounts.models import Account

    conv = Account._int2str
    base = (Account.objects.filter(depth=1).order_by("-path").values_list("path", flat=True).first())
    next_root = (Account._str2int(base) if base else 0) + 1
    paths: list[str] = []
    counters: dict[int, int] = {}
    objects = []
    for ext, name, depth, parent in nodes:
        if parent < 0:
            path = conv(next_root).rjust(4, "0")
            next_root += 1
        else:
            counters[parent] = counters.get(parent, 0) + 1
            path = paths[parent] + conv(counters[parent]).rjust(4, "0")
        paths.append(path)
        objects.append((path, depth, name, ext))
    instances = [Account(path=p, depth=d, numchild=0, name=n, name_key=n.casefold(), external_id=e,
                         public_id=uuid.uuid4()) for p, d, n, e in objects]
    for instance, (_, _, _, parent) in zip(instances, nodes, strict=True):
        instance.parent = instances[parent] if parent >= 0 else None
    return instances


def raw_insert(instances) -> None:
    """Level by level (a child's row needs its parent's id), nothing else: no checks, no audit, no emails."""
    from accounts.models import Account

    for depth in range(1, MAX_DEPTH + 1):
        level = [a for a in instances if a.depth == depth]
        for a in level:
            a.parent_id = a.parent.pk if a.parent is not None else None
        Account.objects.bulk_create(level)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--roots", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from accounts.models import Account
        from accounts.provisioning import provision
        from tests.factories import plan

        for code in ("free", "pro", "agency"):
            plan(code)
        text, nodes = make_file(args.rows, args.roots)
        invitations = sum(1 for i in range(args.rows) if i % 100 == 0)

        def ours():
            with transaction.atomic():
                started = time.perf_counter()
                with TestCase.captureOnCommitCallbacks(execute=True) as callbacks:
                    report = provision(text, fmt="csv")
                elapsed = time.perf_counter() - started
                assert not report.problems, report.problems[:3]
                assert report.counts["create"] == args.rows and report.invitations == invitations
                assert len(callbacks) == invitations
                assert Account.objects.filter(external_id__startswith="ext-").count() == args.rows
                transaction.set_rollback(True)
            return elapsed

        def raw():
            with transaction.atomic():
                objects = raw_objects(nodes)
                started = time.perf_counter()
                raw_insert(objects)
                elapsed = time.perf_counter() - started
                transaction.set_rollback(True)
            return elapsed

        ours(), raw()  # warm-up
        ours_times, raw_times = [], []
        for _ in range(args.repeat):
            ours_times.append(ours())
            raw_times.append(raw())
        ours_median, raw_median = statistics.median(ours_times), statistics.median(raw_times)
        ours_rate, raw_rate = args.rows / ours_median, args.rows / raw_median
        print(f"database: {connection.vendor}; rows: {args.rows:,} in {args.roots} trees, depth up to {MAX_DEPTH}; "
              f"{invitations} owner invitations; runs: {args.repeat} alternating")
        for label, median, rate, times in (("raw bulk_create:", raw_median, raw_rate, raw_times),
                                           ("provision_accounts:", ours_median, ours_rate, ours_times)):
            print(f"{label:<20} median {median:7.3f} s  {rate:10,.0f} rows/s  (min {min(times):.3f})")
        print(f"ratio (rows/s):      {ours_rate / raw_rate:.2f}   target >= 0.25; file under 60 s: "
              f"{'yes' if ours_median < 60 else 'NO'}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
