"""Load test (issue 14, item 7): gunicorn, logged-in clients of several tenants, a mix of pages, next to the bare page.

Starts gunicorn (``--workers`` sync workers, DEBUG off, ``bench.settings``: the project plus the bare page of
``bench/floor_urls.py``) on the database of ``DATABASE_URL``, logs ``--clients`` people in (sessions made here,
no sign-in form, so allauth's per-IP throttle is not in the way), then measures two kinds of phase with the
same clients and the same gunicorn, ``--duration`` seconds of each in all: every client requesting the bare page,
and every client requesting its own person's pages of ``bench/pages.py`` at random. The kinds take turns in
``--rounds`` rounds (bare mix, mix bare, bare mix…), so that the machine's own drift during the run (another
tenant of the host, its clock) weighs on both alike rather than on whichever ran second. Each client is a
thread with one ``http.client`` connection per request (sync workers close them anyway), a new request as soon as
the last one answered. Client, gunicorn and PostgreSQL share this machine's cores: the figures are for all
three together.

Every response must be a 200 (a redirect to the sign-in page is an error) and may name only accounts and
people of its person's tenant: the scale data's account names (``Scale …``, ``Small …``) and logins
(``…@scale.example``) outside the lineage of the person's memberships are counted as cross-tenant.

Targets: the mix at least 0.5x the bare page's requests per second, the mix's p99 at most 3x its p50, no
error, no cross-tenant response. ``--check`` exits 1 when one is missed.

    createdb -h 127.0.0.1 -U postgres loadbench
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/loadbench
    .venv/bin/python manage.py migrate && .venv/bin/python manage.py build_scale_data --many   # once
    .venv/bin/python bench/load.py [--clients 20] [--duration 60] [--rounds 4] [--check]
"""

import argparse
import http.client
import itertools
import os
import random
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
BARE = "/bench/bare/"
# Who each client is, in turn: of 20, 8 own the big root, 6 the small tenant, 4 are the level-5 account's member
# and 2 the person in its 10,001 accounts.
ROTATION = ("owner of the big root", "owner of the small tenant", "member of a level-5 account",
            "owner of the big root", "owner of the small tenant", "person with a membership in every account",
            "owner of the big root", "owner of the small tenant", "member of a level-5 account",
            "owner of the big root")
# What build_scale_data names: accounts "Scale Agency", "Scale L3 00042", "Small L2 00007"; logins "…@scale.example".
# The definition; ``scale_names`` finds exactly what ``findall`` of it finds, six times faster (the client shares the
# machine's cores with the server: its checks must cost little next to a page).
SCALE_NAMES = re.compile(rb"\b(?:Scale|Small) (?:Agency|L[2-5] \d{5})\b|\b[a-z]+@scale\.example\b")
_ACCOUNT_NAME = re.compile(rb"S(?:cale|mall) (?:Agency|L[2-5] \d{5})\b")  # starts with a letter re scans for
_AT_DOMAIN = b"@scale.example"
_WORD = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_LOWER = frozenset(b"abcdefghijklmnopqrstuvwxyz")
TARGET_RATIO, TARGET_TAIL = 0.5, 3.0
LOG_SETTLE = 0.3  # seconds between a phase's end and reading gunicorn's access log


def scale_names(body: bytes) -> set[bytes]:
    """``set(SCALE_NAMES.findall(body))``: account names by a scan for their first letter, logins by a ``find``
    of the domain and a walk back over the local part (non-overlapping, as ``findall``: a login's local part
    never reaches into the previous one)."""
    found = {m.group() for m in _ACCOUNT_NAME.finditer(body) if not m.start() or body[m.start() - 1] not in _WORD}
    at, floor = body.find(_AT_DOMAIN), 0
    while at >= 0:
        start, end = at, at + len(_AT_DOMAIN)
        while start > floor and body[start - 1] in _LOWER:
            start -= 1
        if start < at and (not start or body[start - 1] not in _WORD) and (end == len(body) or body[end] not in _WORD):
            found.add(body[start:end])
            floor = end
        at = body.find(_AT_DOMAIN, end)
    return found


def names_in(body: bytes, allowed: frozenset[bytes]) -> tuple[set[bytes], bool]:
    """The scale data's names in ``body`` that are not ``allowed``, and whether it showed any allowed one (a
    page naming nobody checks nothing: the run counts those)."""
    found = scale_names(body)
    return found - allowed, bool(found & allowed)


def allowed_names(user) -> frozenset[bytes]:
    """The names ``user`` may see: every account in the lineage (ancestors, self, descendants) of an account
    they are a member of, and the logins of those accounts' members."""
    from accounts.models import Account
    from members.models import Membership

    tops: list[Account] = []  # the member's accounts that are not below another of theirs
    for account in Account.objects.filter(memberships__user=user).order_by("path"):
        if not tops or not account.path.startswith(tops[-1].path):
            tops.append(account)
    ids: set[int] = set()
    for top in tops:
        ids.update(Account.objects.filter(path__in=top.ancestor_paths).values_list("pk", flat=True))
        ids.update(Account.objects.filter(path__startswith=top.path).values_list("pk", flat=True))
    names = Account.objects.filter(pk__in=ids).values_list("name", flat=True)
    emails = Membership.objects.filter(account__in=ids).values_list("user__email", flat=True).distinct()
    return frozenset(n.encode() for n in itertools.chain(names, emails, [user.email]))


@dataclass
class Person:
    who: str
    allowed: frozenset[bytes]
    pages: list[tuple[str, str]]  # (label, url)


@dataclass
class Outcome:
    who: str
    label: str
    seconds: float
    finished: float  # time.monotonic() when the answer was read
    error: str = ""  # "HTTP 302", "timeout", …; empty: a 200
    foreign: set[bytes] = field(default_factory=set)
    named: bool = False


def get(port: int, url: str, cookie: str, label: str, timeout: float) -> tuple[int, bytes]:
    """One GET on a new connection; the page's label goes to gunicorn's access log (``X-Bench-Page``)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", url, headers={"Cookie": cookie, "X-Bench-Page": label.replace(" ", "_")})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def client_loop(port, person: Person, cookie, pages, deadline, rng, timeout, out: list[Outcome]) -> None:
    """Requests ``pages`` at random, one after the other, until ``deadline``."""
    while (started := time.monotonic()) < deadline:
        label, url = rng.choice(pages)
        outcome = Outcome(person.who, label, 0.0, 0.0)
        try:
            status, body = get(port, url, cookie, label, timeout)
        except TimeoutError:
            outcome.error = "timeout"
        except (OSError, http.client.HTTPException) as exc:
            outcome.error = type(exc).__name__
        else:
            if status != 200:
                outcome.error = f"HTTP {status}"
            outcome.foreign, outcome.named = names_in(body, person.allowed)
        outcome.finished = time.monotonic()
        outcome.seconds = outcome.finished - started
        out.append(outcome)


def run_phase(port, clients, duration, timeout, seed, bare=False) -> tuple[list[Outcome], float, float]:
    """Every client at once for ``duration`` seconds: the outcomes, the phase's start and its deadline."""
    outcomes: list[Outcome] = []
    start = time.monotonic()
    deadline = start + duration
    threads = [threading.Thread(target=client_loop, args=(
        port, person, cookie, [("bare page", BARE)] if bare else person.pages, deadline,
        random.Random(seed + i), timeout, outcomes)) for i, (person, cookie) in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes, start, deadline


def percentiles(seconds: list[float]) -> tuple[float, float, float]:
    """p50, p95, p99 (all 0 when nothing was measured)."""
    if len(seconds) < 2:
        only = seconds[0] if seconds else 0.0
        return only, only, only
    cuts = statistics.quantiles(seconds, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def cpu_ticks(pid: int) -> int:
    """User + system CPU of a process so far, in clock ticks (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, name) of every process visible here."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            found.append((int(entry.name), int(stat.rpartition(")")[2].split()[1]), name))
    return found


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat (idle and iowait count as not busy)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)


class CpuMeter:
    """CPU used during a phase, in cores: gunicorn's workers, PostgreSQL's processes (every backend of the server,
    other people's included), this client, and the machine as a whole. Processes are sampled every half second:
    a backend that ends mid-phase (``CONN_MAX_AGE``) keeps what it had used by its last sample."""

    def __init__(self, master_pid: int):
        self.master = master_pid

    def __enter__(self):
        self.first: dict[int, tuple[str, int]] = {}
        self.last: dict[int, int] = {}
        self.stop = threading.Event()
        self.start = (time.monotonic(), time.process_time(), machine_busy())
        self.sample(first=True)
        self.thread = threading.Thread(target=self.run)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.sample()
        wall = time.monotonic() - self.start[0]
        busy, total = (now - then for now, then in zip(machine_busy(), self.start[2], strict=True))
        self.cores = {kind: sum(self.last[pid] - ticks for pid, (k, ticks) in self.first.items() if k == kind)
                      / os.sysconf("SC_CLK_TCK") / wall for kind in ("workers", "postgres")}
        self.cores["client"] = (time.process_time() - self.start[1]) / wall
        self.cores["machine"] = busy / max(total, 1) * (os.cpu_count() or 1)

    def run(self):
        while not self.stop.wait(0.5):
            self.sample()

    def sample(self, first=False):
        for pid, parent, name in processes():
            kind = "workers" if parent == self.master else "postgres" if name == "postgres" else None
            if kind:
                ticks = cpu_ticks(pid)
                # a process first seen mid-phase started during it (a new connection's backend): from zero
                self.first.setdefault(pid, (kind, ticks if first else 0))
                self.last[pid] = max(ticks, self.last.get(pid, 0))


def server_times(log: Path, offset: int) -> tuple[dict[str, list[float]], int]:
    """Seconds gunicorn spent on each page (by the X-Bench-Page header) in its access log after ``offset``."""
    times: dict[str, list[float]] = defaultdict(list)
    with log.open("rb") as f:
        f.seek(offset)
        data = f.read()
    for line in data.decode(errors="replace").splitlines():
        label, _, micros = line.rpartition(" ")
        if micros.isdigit():
            times[label.replace("_", " ")].append(int(micros) / 1e6)
    return times, offset + len(data)


def summary(name: str, outcomes: list[Outcome], seconds: float, done: int) -> dict:
    """A kind's figures: ``done`` of its ``outcomes`` answered within its phases, which lasted ``seconds``."""
    p50, p95, p99 = percentiles([o.seconds for o in outcomes])
    row = {"name": name, "requests": len(outcomes), "rps": done / seconds, "p50": p50,
           "p95": p95, "p99": p99, "errors": sum(bool(o.error) for o in outcomes),
           "foreign": sum(bool(o.foreign) for o in outcomes), "named": sum(o.named for o in outcomes)}
    print(f"  {name:5} {row['requests']:8} {row['rps']:8.1f} {p50 * 1000:8.0f} {p95 * 1000:8.0f} {p99 * 1000:8.0f}"
          f" {row['errors']:7} {row['foreign']:13} {row['named']:8}")
    return row


def details(outcomes: list[Outcome], server: dict[str, list[float]], order: list[tuple[str, str]]) -> None:
    """Per page: requests, client p50/p95 and gunicorn's mean time; then the errors and cross-tenant names."""
    by_page: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_page[o.who, o.label].append(o)
    print(f"  {'person':42} {'page':32} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8}")
    for key in order:
        if key in by_page:
            p50, p95, _ = percentiles([o.seconds for o in by_page[key]])
            print(f"  {key[0]:42} {key[1]:32} {len(by_page[key]):8} {p50 * 1000:8.0f} {p95 * 1000:8.0f}")
    print("  gunicorn's own time per page (all persons), mean ms and requests:")
    for label, seconds in sorted(server.items(), key=lambda kv: -statistics.mean(kv[1])):
        print(f"    {label:34} {statistics.mean(seconds) * 1000:8.1f} {len(seconds):6}")
    errors = defaultdict(int)
    for o in outcomes:
        if o.error:
            errors[o.who, o.label, o.error] += 1
        for name in o.foreign:
            print(f"  CROSS-TENANT: {o.who}, {o.label}: {name.decode()}")
    for (who, label, error), count in sorted(errors.items()):
        print(f"  ERROR x{count}: {who}, {label}: {error}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_ready(port: int, cookie: str, server: subprocess.Popen, seconds: float = 60) -> None:
    """Until gunicorn answers the bare page with a 200 (its workers have loaded Django)."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        if server.poll() is not None:
            sys.exit(f"gunicorn exited with {server.returncode}")
        try:
            status, _ = get(port, BARE, cookie, "ready", 10)
            if status == 200:
                return
            sys.exit(f"the bare page answered HTTP {status}, not 200: check the settings")
        except OSError:
            time.sleep(0.5)
    sys.exit(f"gunicorn did not answer within {seconds:.0f} s")


def setup_environment() -> None:
    """Production settings as far as plain HTTP on the loopback allows; the same secret here and in gunicorn, so
    the sessions made here are valid there."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("DEBUG", "false")
    for name in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
        os.environ[name] = "false"


def sign_in(users) -> dict[int, str]:
    """A session of each user, as the sign-in would make it (``Client.force_login``): their Cookie headers."""
    from django.conf import settings
    from django.test import Client

    cookies = {}
    for user in users:
        client = Client()
        client.force_login(user)
        cookies[user.pk] = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return cookies


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60, help="seconds of each kind (bare, mix) in all")
    parser.add_argument("--rounds", type=int, default=4, help="phases of each kind, alternating (ABBA…)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--timeout", type=float, default=30, help="seconds before a request is an error")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    if args.rounds < 1 or args.duration <= 0:
        parser.error("--rounds must be at least 1 and --duration above 0 (an even --rounds balances a drift)")
    setup_environment()
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from allauth.usersessions.models import UserSession
    from django.contrib.sessions.models import Session
    from django.db import connection

    from bench.pages import pages

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    people: dict[str, Person] = {}
    users = {}
    for who, user, label, url in pages():
        if who not in people:
            people[who] = Person(who, allowed_names(user), [])
            users[who] = user
        people[who].pages.append((label, url))
    rotation = [who for who in ROTATION if who in people]
    cookies = sign_in(users.values())
    clients = [(people[who], cookies[users[who].pk]) for who in itertools.islice(itertools.cycle(rotation),
                                                                                   args.clients)]
    connection.close()

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        tmp = Path(tmp)
        os.environ["BENCH_STATIC_ROOT"] = str(tmp / "static")
        subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, check=True)
        log, output = tmp / "access.log", tmp / "server.log"
        with output.open("w") as server_output:
            server = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--workers", str(args.workers),
                 "--bind", f"{HOST}:{port}", "--no-control-socket", "--timeout", str(int(args.timeout) + 30),
                 "--access-logfile", str(log), "--access-logformat", "%({x-bench-page}i)s %(D)s"],
                cwd=ROOT, stdout=server_output, stderr=subprocess.STDOUT)
            try:
                wait_ready(port, clients[0][1], server)
                results = measure(args, port, clients, people, server.pid, log)
            finally:
                server.terminate()
                server.wait(30)
                logged = output.read_text(errors="replace")
                if "Traceback" in logged:
                    print("gunicorn's output has tracebacks (its last 4,000 characters):\n" + logged[-4000:])
    keys = [cookie.partition("=")[2] for cookie in cookies.values()]
    UserSession.objects.filter(session_key__in=keys).delete()
    Session.objects.filter(session_key__in=keys).delete()
    missed = verdict(*results)
    if args.check and missed:
        sys.exit(1)


def measure(args, port, clients, people, master_pid, log):
    """Warm-up, then the phases; prints them and returns the two kinds' summaries."""
    from django.db import connection

    print(f"{connection.vendor}, gunicorn {args.workers} sync workers (DEBUG off), {args.clients} clients "
          f"({', '.join(f'{n} {w}' for w, n in Counter(p.who for p, _ in clients).most_common())}), "
          f"{args.duration:.0f} s of each kind in {args.rounds} phases")
    print(f"this client, gunicorn and the database share {os.cpu_count()} cores; load average before: "
          f"{os.getloadavg()[0]:.1f}")
    for person, cookie in {p.who: (p, c) for p, c in clients}.values():  # each page once: caches, plans
        for label, url in person.pages:
            status, _ = get(port, url, cookie, "warm-up", args.timeout)
            if status == 404 and "page=" in url:
                person.pages.remove((label, url))
                print(f"  ({person.who}: {label} answers 404, fewer pages here: left out)")
    offset = log.stat().st_size
    # Rounds of a bare and a mix phase, in the order bare mix, mix bare, bare mix… so that a machine getting faster
    # or slower during the run (a neighbour's load, CPU frequency) weighs on both kinds alike.
    length = args.duration / args.rounds
    kinds = {name: {"outcomes": [], "done": 0, "seconds": 0.0, "cpu": [], "server": defaultdict(list)}
             for name in ("bare", "mix")}
    for number in range(args.rounds):
        for name in ("bare", "mix") if number % 2 == 0 else ("mix", "bare"):
            kind = kinds[name]
            with CpuMeter(master_pid) as meter:
                outcomes, start, deadline = run_phase(port, clients, length, args.timeout,
                                                      args.seed + 1000 * number, bare=name == "bare")
            kind["outcomes"] += outcomes
            kind["done"] += sum(o.finished <= deadline for o in outcomes)
            kind["seconds"] += deadline - start
            kind["cpu"].append(meter.cores)
            time.sleep(LOG_SETTLE)  # a worker logs a request after its answer was read: let the phase's last lines in
            times, offset = server_times(log, offset)
            for label, seconds in times.items():
                kind["server"][label] += seconds
    print(f"  {'kind':5} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}"
          f" {'cross-tenant':>13} {'checked':>8}")
    rows = {name: summary(name, kind["outcomes"], kind["seconds"], kind["done"]) for name, kind in kinds.items()}
    print(f"  ({args.rounds} phases of {length:g} s of each kind, alternating; checked: responses naming at least "
          "one of their tenant's accounts or people)")
    for name, kind in kinds.items():
        spent = [t for seconds in kind["server"].values() for t in seconds]
        busy = sum(spent) / (args.workers * kind["seconds"])
        used = {part: statistics.mean(cores[part] for cores in kind["cpu"]) for part in kind["cpu"][0]}
        print(f"  {name}: gunicorn took {statistics.mean(spent) * 1000:.1f} ms a request on average, its "
              f"workers busy {busy:.0%} of the time; CPU in cores: workers {used['workers']:.2f}, PostgreSQL "
              f"{used['postgres']:.2f}, this client {used['client']:.2f}, whole machine {used['machine']:.2f} of "
              f"{os.cpu_count()}")
    order = [(p.who, label) for p in people.values() for label, _ in p.pages]
    print("mix, per page:")
    details(kinds["mix"]["outcomes"], kinds["mix"]["server"], order)
    return rows["bare"], rows["mix"]


def verdict(bare: dict, mix: dict) -> bool:
    """Prints each target as PASS or MISS; True when one is missed."""
    ratio = mix["rps"] / bare["rps"] if bare["rps"] else 0.0
    tail = mix["p99"] / mix["p50"] if mix["p50"] else float("inf")
    targets = [
        (f"throughput: mix {mix['rps']:.1f} req/s / bare {bare['rps']:.1f} req/s = {ratio:.2f}x "
         f"(target >= {TARGET_RATIO}x)", ratio >= TARGET_RATIO),
        (f"tail: mix p99 {mix['p99'] * 1000:.0f} ms / p50 {mix['p50'] * 1000:.0f} ms = {tail:.1f}x "
         f"(target <= {TARGET_TAIL:.0f}x)", tail <= TARGET_TAIL),
        (f"errors: {bare['errors'] + mix['errors']} (target 0)", bare["errors"] + mix["errors"] == 0),
        (f"cross-tenant responses: {bare['foreign'] + mix['foreign']} (target 0)",
         bare["foreign"] + mix["foreign"] == 0),
    ]
    for text, ok in targets:
        print(f"{'PASS' if ok else 'MISS'}  {text}")
    return not all(ok for _, ok in targets)


if __name__ == "__main__":
    main()
