"""``bench/load.py``: its client counts redirects and cross-tenant names, each person's allowed names are their
memberships' lineage, and (on PostgreSQL) the whole run against gunicorn on a tiny tree ends clean."""

import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts.models import Account
from bench.load import SCALE_NAMES, Person, allowed_names, names_in, run_phase, scale_names
from members.models import User
from tests.factories import PLANS, plan

ROOT = Path(__file__).resolve().parent.parent.parent
TINY = {"subaccounts": 12, "small": 4, "usage_last": 40, "usage_this": 20, "many": True}


def test_names_outside_the_tenant_are_found_and_search_echoes_are_not():
    allowed = frozenset({b"Scale Agency", b"Scale L2 00001", b"owner@scale.example"})
    body = (b'<h1>Scale Agency</h1><input name="q" value="L5 0001"><td>Scale L2 00001</td>'
            b"<td>Small L3 00002</td><li>small@scale.example</li><li>Scale L5 00009</li>")
    assert names_in(body, allowed) == ({b"Small L3 00002", b"small@scale.example", b"Scale L5 00009"}, True)
    assert names_in(b"<p>Nobody here</p>", allowed) == (set(), False)


# Pieces that make and break the scale data's names: their parts, word characters before and after, a login
# run into another login (``findall`` never overlaps), a domain with no local part, near misses.
PIECES = [b"Scale ", b"Small ", b"Agency", b"L2 ", b"L5 ", b"L6 ", b"00001", b"123456", b"x", b"X", b"_", b"9",
          b" ", b"<", b".", b"bob", b"Bob", b"@scale.example", b"@scale.examplex", b"@scale.example.", b"SScale ",
          b"aScale "]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=24))
def test_the_fast_scan_finds_exactly_what_the_pattern_finds(pieces):
    body = b"".join(pieces)
    assert scale_names(body) == set(SCALE_NAMES.findall(body))


class Pages(BaseHTTPRequestHandler):
    """/own: a page of the tenant; /other: one naming another tenant's account; /gone: a redirect to sign-in."""

    def do_GET(self):
        if self.path == "/gone":
            self.send_response(302)
            self.send_header("Location", "/accounts/login/")
            self.end_headers()
            return
        body = b"<p>Small Agency</p>" + (b"<p>Scale L2 00000</p>" if self.path == "/other" else b"")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_the_clients_count_redirects_as_errors_and_foreign_names_as_cross_tenant():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        person = Person("small", frozenset({b"Small Agency"}), [("own", "/own"), ("other", "/other"),
                                                                ("gone", "/gone")])
        outcomes, _, _ = run_phase(server.server_address[1], [(person, "sessionid=x")] * 2, 0.5, 5, seed=1)
    finally:
        server.shutdown()
        server.server_close()
    by_label = {label: [o for o in outcomes if o.label == label] for label in ("own", "other", "gone")}
    assert all(by_label.values()), "each page was requested"
    assert all(o.error == "HTTP 302" for o in by_label["gone"])
    assert all(o.foreign == {b"Scale L2 00000"} and not o.error for o in by_label["other"])
    assert all(not o.foreign and o.named and not o.error for o in by_label["own"])


@pytest.mark.django_db
def test_a_person_may_see_their_memberships_lineage_and_its_members_only():
    call_command("build_scale_data", **TINY, stdout=None)
    deep = User.objects.get(email="deep@scale.example")
    account = Account.objects.get(memberships__user=deep)
    lineage = {a.name.encode() for a in Account.objects.filter(path__in=account.lineage_paths)}
    allowed = allowed_names(deep)
    assert lineage <= allowed and b"Scale Agency" in allowed
    assert {b"deep@scale.example", b"owner@scale.example", b"many@scale.example"} <= allowed
    assert not {n for n in allowed if n.startswith(b"Small") or n == b"small@scale.example"}
    assert len([n for n in allowed if n.startswith(b"Scale")]) == len(lineage)  # no sibling, no cousin
    small = allowed_names(User.objects.get(email="small@scale.example"))
    assert len([n for n in small if n.startswith(b"Small")]) == 5
    assert not [n for n in small if n.startswith(b"Scale") or n == b"owner@scale.example"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # keeps the seeded plans for later tests
@pytest.mark.skipif(connection.vendor != "postgresql", reason="gunicorn's workers need a database they can share")
def test_a_short_run_against_gunicorn_has_no_error_and_no_cross_tenant_response():
    """2 clients for 2 s a phase on a tiny tree: every person's pages answer 200 through gunicorn with sessions
    made by the script (throughput targets are not asserted: this machine's load decides them). Then
    ``bench/pages.py`` on the same tree measures every page and gives its verdict."""
    for code in PLANS:  # the seeded plans, gone when an earlier transactional test flushed the tables
        plan(code)
    call_command("build_scale_data", **TINY, stdout=None)
    db = connection.settings_dict
    url = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    run = subprocess.run([sys.executable, "bench/load.py", "--clients", "4", "--duration", "2", "--workers", "1"],
                         cwd=ROOT, env={**os.environ, "DATABASE_URL": url},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASS  errors: 0" in run.stdout, run.stdout
    assert "PASS  cross-tenant responses: 0" in run.stdout, run.stdout

    run = subprocess.run([sys.executable, "bench/pages.py", "--repeat", "5"], cwd=ROOT,
                         env={**os.environ, "DATABASE_URL": url}, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "not measured" not in run.stdout, run.stdout  # every page answered 200 (page 40: 404, not asked)
    verdict = re.search(r"^(PASS|MISS)  (\d+) of (\d+) pages at most 5x the bare page", run.stdout, re.M)
    assert verdict and int(verdict[3]) >= 30, run.stdout  # the four people's pages, all measured
