"""The small tenant does not pay for the big one (issue 14, item 6, second target).

Each page of the small agency's Owner (``bench/pages.py``'s ``tenant_pages``) on two platforms: one with
the big agency (``build_scale_data``) and one without it (``build_scale_data --without-big``: the small
agency alone, with exactly the rows it has beside the big one). One worker process per database (this
script with ``--worker``, ``DATABASE_URL`` set), driven in turn from here, so both see the same moment of
the machine: each round asks each database for the bare page then the page (bare, page, bare, page…; which
database goes first alternates by round). Printed for each page: its medians with and without the big
tenant and the quotient with / without (the median of each round's quotient, the two requests being
seconds apart; target: at most 1.5x), the same for the bare page (near 1x: the floor reads no tenant's
rows), and each database's ratio page / bare with the quotient of the ratios (median over the rounds), the
page's quotient freed of any difference in the floor. Both databases get ``VACUUM ANALYZE`` (SQLite
``ANALYZE``) first.

    createdb -h 127.0.0.1 -U postgres smallwith; createdb -h 127.0.0.1 -U postgres smallwithout
    W=postgres://postgres@127.0.0.1:5432/smallwith; WO=postgres://postgres@127.0.0.1:5432/smallwithout
    DATABASE_URL=$W .venv/bin/python manage.py migrate
    DATABASE_URL=$W .venv/bin/python manage.py build_scale_data --many           # a few minutes
    DATABASE_URL=$WO .venv/bin/python manage.py migrate
    DATABASE_URL=$WO .venv/bin/python manage.py build_scale_data --without-big   # seconds
    .venv/bin/python bench/small_tenant.py --with $W --without $WO [--repeat 7] [--only billing] [--check]

The last line says PASS or MISS (a page that one database does not answer with a 200 is a miss); ``--check``
exits 1 on a miss. The small tenant's pages are those of ``bench/pages.py``'s list it has (no page 40).

Build both the same day (usage records fall in this month and the last) with the same ``--subaccounts``,
``--small``, ``--usage-*`` and ``--seed``. SQLite works the same way (``sqlite:////tmp/smallwith.sqlite3``).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

BARE = "/bench/bare/"
TARGET = 1.5  # each page with the big tenant beside at most this many times the same page without it


def worker():
    """One database (``DATABASE_URL``): says its vendor and page labels, then times what it is asked for, one
    JSON line in and out at a time (``{"page": index}`` or ``{"page": null}`` for the bare page)."""
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything else the project prints goes to stderr, not into the answers
    import logging

    import pages  # (sets Django up with this process's DATABASE_URL)
    logging.getLogger("django.request").setLevel(logging.ERROR)  # no "Not Found" lines
    from django.db import connection
    from django.test import Client

    pages.prepare()
    user, items = pages.small_tenant()
    client = Client()
    client.force_login(user)
    answers.write(json.dumps({"vendor": connection.vendor, "labels": [label for label, _ in items]}) + "\n")
    for line in sys.stdin:
        ask = json.loads(line)
        if "work" in ask:
            answers.write(json.dumps({"work": page_work(client, items[ask["work"]][1])}) + "\n")
            continue
        index = ask["page"]
        elapsed, status = pages.timed(client, BARE if index is None else items[index][1])
        answers.write(json.dumps({"elapsed": elapsed, "status": status}) + "\n")


def page_work(client, url) -> list[tuple[str, int]]:
    """(sql, work) of each SELECT the page runs, run again on its own: work is the rows its scans read
    (PostgreSQL, ``EXPLAIN ANALYZE``: rows each scan returned or removed by a filter, times its loops) or
    hundreds of virtual machine instructions (SQLite, counted by a progress handler while the rows are
    fetched). Unlike times, these do not depend on the machine's load: a query that reads the big tenant's
    rows shows it here."""
    from django.db import connection

    captured = []

    def capture(execute, sql, params, many, context):
        captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        client.get(url)
    out, steps = [], [0]

    def count():
        steps[0] += 1
        return 0

    with connection.cursor() as cursor:
        for sql, params in captured:
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            if connection.vendor == "postgresql":
                cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
                plan = cursor.fetchone()[0]
                work = rows_read((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"])
            else:
                steps[0] = 0
                connection.connection.set_progress_handler(count, 100)
                try:
                    cursor.execute(sql, params)
                    cursor.fetchall()
                finally:
                    connection.connection.set_progress_handler(None, 100)
                work = steps[0]
            out.append((sql, work))
    return out


def rows_read(node: dict) -> int:
    """Rows the scans of a PostgreSQL plan read: returned or removed by a filter or recheck, times loops."""
    own = 0
    if "Scan" in node["Node Type"]:
        own = round((node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
                     + node.get("Rows Removed by Index Recheck", 0)) * node.get("Actual Loops", 1))
    return own + sum(rows_read(child) for child in node.get("Plans", ()))


class Database:
    def __init__(self, name: str, url: str):
        self.name = name
        self.process = subprocess.Popen([sys.executable, __file__, "--worker"], env={**os.environ, "DATABASE_URL": url},
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.hello = self.read()

    def read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            sys.exit(f"the worker for --{self.name} stopped (its error is above)")
        return json.loads(line)

    def work(self, index: int) -> list[tuple[str, int]]:
        self.process.stdin.write(json.dumps({"work": index}) + "\n")
        self.process.stdin.flush()
        return self.read()["work"]

    def get(self, index: int | None) -> tuple[float, int]:
        self.process.stdin.write(json.dumps({"page": index}) + "\n")
        self.process.stdin.flush()
        answer = self.read()
        return answer["elapsed"], answer["status"]

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def measure(databases: list[Database], index: int, repeat: int) -> dict[str, tuple[list, list]] | str:
    """Per database: (the page's times, the bare page's times) by round, in seconds; a string if not measured."""
    for db in databases:  # warm up
        db.get(None)
        status = db.get(index)[1]
        if status != 200:
            return f"HTTP {status} on --{db.name}"
    times = {db.name: ([], []) for db in databases}
    for round_ in range(repeat):
        for db in databases if round_ % 2 == 0 else databases[::-1]:
            times[db.name][1].append(db.get(None)[0])
            elapsed, status = db.get(index)
            if status != 200:
                return f"HTTP {status} on --{db.name}"
            times[db.name][0].append(elapsed)
    return times


def quotients(a: list[float], b: list[float]) -> list[float]:
    """Each round's a / b."""
    return [x / y for x, y in zip(a, b, strict=True)]


def paired(a: list[float], b: list[float]) -> float:
    """The median of the rounds' quotients a / b."""
    return statistics.median(quotients(a, b))


def compare_work(databases: list[Database], labels: list[str], only: str):
    unit = "rows read" if databases[0].hello["vendor"] == "postgresql" else "hundreds of VM steps"
    print(f"{databases[0].hello['vendor']}: work of each page's SELECTs ({unit}), with the big tenant / without it")
    worst = (0.0, "")
    for index, label in enumerate(labels):
        if only and only not in label:
            continue
        with_, without = (db.work(index) for db in databases)
        total_w, total_wo = sum(w for _, w in with_), sum(w for _, w in without)
        quotient = total_w / max(total_wo, 1)
        worst = max(worst, (quotient, label))
        print(f"  {label:32} {total_w:9} {total_wo:9} {quotient:8.2f}x  ({len(with_)} / {len(without)} queries)")
        if len(with_) == len(without):  # the same queries in the same order: name the one that grows most
            grown = max(range(len(with_)), key=lambda i: with_[i][1] - without[i][1], default=None)
            if grown is not None and with_[grown][1] - without[grown][1] > max(total_wo, 10):
                print(f"      grows most: {with_[grown][1]} / {without[grown][1]}: {with_[grown][0][:300]}")
    for db in databases:
        db.close()
    print(f"worst: {worst[0]:.2f}x ({worst[1]})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--with", dest="with_", metavar="URL", help="database with the big tenant")
    parser.add_argument("--without", metavar="URL", help="database without it (build_scale_data --without-big)")
    parser.add_argument("--repeat", type=int, default=7, help="rounds of each (at least 5)")
    parser.add_argument("--only", default="", help="only pages whose label contains this")
    parser.add_argument("--work", action="store_true",
                        help="instead of times, the work of each page's queries (rows read or VM steps), with and "
                             "without, and the query that grows most")
    parser.add_argument("--check", action="store_true", help="exit 1 when a page is over the target or not measured")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker()
    if not (args.with_ and args.without):
        parser.error("--with and --without are required")
    if args.work and args.check:
        parser.error("--work measures work, not the target: --check goes with a timed run")
    databases = [Database("with", args.with_), Database("without", args.without)]
    labels = databases[0].hello["labels"]
    if databases[1].hello["labels"] != labels:
        sys.exit("the two databases list different pages")
    if args.work:
        return compare_work(databases, labels, args.only)
    print(f"{databases[0].hello['vendor']} / {databases[1].hello['vendor']}, {max(args.repeat, 5)} rounds, medians "
          "in ms; quotient = with the big tenant / without it; ratio = page / bare page on one database")
    print(f"  {'page':32} {'with':>7} {'without':>7} {'quotient':>8} {'bare':>13} {'bare q.':>7}"
          f" {'ratio w':>7} {'ratio wo':>8} {'ratio q.':>8}")
    worst, failed, measured = {"page": (0.0, ""), "ratio": (0.0, "")}, [], 0
    for index, label in enumerate(labels):
        if args.only and args.only not in label:
            continue
        result = measure(databases, index, max(args.repeat, 5))
        if isinstance(result, str):
            print(f"  {label:32} {result} (not measured)")
            failed.append(f"{label} ({result})")
            continue
        (page_w, bare_w), (page_wo, bare_wo) = result["with"], result["without"]
        ratio_w, ratio_wo = quotients(page_w, bare_w), quotients(page_wo, bare_wo)
        quotient, ratio_quotient = paired(page_w, page_wo), paired(ratio_w, ratio_wo)
        worst["page"], measured = max(worst["page"], (quotient, label)), measured + 1
        worst["ratio"] = max(worst["ratio"], (ratio_quotient, label))
        ms = {name: statistics.median(values) * 1000 for name, values in
              (("page_w", page_w), ("page_wo", page_wo), ("bare_w", bare_w), ("bare_wo", bare_wo))}
        print(f"  {label:32} {ms['page_w']:7.1f} {ms['page_wo']:7.1f} {quotient:7.2f}x"
              f" {ms['bare_w']:6.1f} {ms['bare_wo']:6.1f} {paired(bare_w, bare_wo):6.2f}x"
              f" {statistics.median(ratio_w):6.1f}x {statistics.median(ratio_wo):7.1f}x {ratio_quotient:7.2f}x")
    for db in databases:
        db.close()
    print(f"worst quotient: {worst['page'][0]:.2f}x ({worst['page'][1]}); of the ratios: {worst['ratio'][0]:.2f}x "
          f"({worst['ratio'][1]}); target: at most {TARGET}x")
    missed = not measured or worst["page"][0] > TARGET or failed
    print(f"{'MISS' if missed else 'PASS'}  {measured} pages, the worst {worst['page'][0]:.2f}x with the big tenant "
          f"beside (target <= {TARGET}x)" + "".join(f"; {each}" for each in failed))
    if args.check and missed:
        sys.exit(1)


if __name__ == "__main__":
    main()
