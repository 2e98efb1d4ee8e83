"""Every main page at scale, as a ratio to a bare logged-in page measured in the same run (issue 14).

Requests go through Django's test client in this process (no network), floor and page alternating, median
of ``--repeat`` each; PostgreSQL gets ``VACUUM ANALYZE`` (SQLite ``ANALYZE``) first. Prints each page's
median and ratio, and the worst, then PASS or MISS. Target: every page at most 5x the bare page (a page that
does not answer 200 is a miss); ``--check`` exits 1 on a miss.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python manage.py migrate
    DATABASE_URL=… .venv/bin/python manage.py build_scale_data --many          # once (a few minutes)
    DATABASE_URL=… .venv/bin/python bench/pages.py [--repeat 7] [--only subaccounts] [--check]

Without DATABASE_URL it uses the SQLite file of the settings (db.sqlite3): point it at a copy built for
benchmarks, never at data you care about. ``bench/small_tenant.py`` imports the pieces (``tenant_pages``,
``prepare``, ``timed``) to compare the small tenant's pages with and without the big tenant.
"""

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402


def a(account, suffix=""):
    return f"/a/{account.public_id}/{suffix}"


def tenant_pages(root) -> list[tuple[str, str]]:
    """(label, url) of the pages measured for the Owner of ``root``."""
    from accounts.models import Account
    from accounts.subaccount_views import SubaccountListView

    sub = Account.objects.filter(parent=root).order_by("path").first()
    page_40 = [("subaccounts, page 40", a(root, "subaccounts/?page=40"))]  # (when the root's children fill 40 pages)
    return [
        ("dashboard", a(root)),
        ("subaccounts, page 1", a(root, "subaccounts/")),
        *(page_40 if root.numchild > 39 * SubaccountListView.paginate_by else []),
        ("subaccounts, sorted by minutes", a(root, "subaccounts/?sort=minutes")),
        ("subaccounts, search", a(root, "subaccounts/?q=L5+0001")),
        ("clients", a(root, "clients/")),
        ("billing overview", a(root, "billing/")),
        ("usage tab", a(root, "billing/usage/")),
        ("invoices", a(root, "billing/invoices/")),
        ("subaccount overview tab", a(root, f"subaccounts/{sub.public_id}/")),
        ("subaccount limits tab", a(root, f"subaccounts/{sub.public_id}/limits/")),
        ("subaccount billing tab", a(root, f"subaccounts/{sub.public_id}/billing/")),
        ("transfer wizard, first step", a(root, f"subaccounts/{sub.public_id}/transfer/")),
        ("members", a(root, "members/")),
        ("audit", a(root, "audit/")),
        ("switcher", "/switcher/"),
        ("switcher search", "/switcher/?q=L5+0001"),
    ]


def small_tenant():
    """The small tenant's Owner and (label, url) of their pages; needs only the small agency."""
    from accounts.models import Account
    from members.models import User

    return (User.objects.get(email="small@scale.example"),
            tenant_pages(Account.objects.get(name="Small Agency", depth=1)))


def pages():
    """(who, user, label, url) for every page measured."""
    from accounts.models import Account
    from members.models import User

    big = Account.objects.get(name="Scale Agency", depth=1)
    deep = Account.objects.filter(path__startswith=big.path, depth=5).order_by("path").first()
    owner, deep_user = (User.objects.get(email=e) for e in ("owner@scale.example", "deep@scale.example"))
    many = User.objects.filter(email="many@scale.example").first()
    small_owner, small_pages = small_tenant()
    out = [("owner of the big root", owner, label, url) for label, url in tenant_pages(big)]
    out += [("owner of the small tenant", small_owner, label, url) for label, url in small_pages]
    out += [("member of a level-5 account", deep_user, label, url) for label, url in (
        ("dashboard", a(deep)), ("usage tab", a(deep, "billing/usage/")), ("members", a(deep, "members/")),
        ("switcher", "/switcher/"), ("switcher search", "/switcher/?q=L5"),
    )]
    if many is not None:
        out += [("person with a membership in every account", many, label, url) for label, url in (
            ("switcher", "/switcher/"), ("switcher search", "/switcher/?q=L5+0001"),
            ("switcher children", f"/switcher/?parent={big.public_id}"),
        )]
    return out


def timed(client, url) -> tuple[float, int]:
    started = time.perf_counter()
    response = client.get(url)
    return time.perf_counter() - started, response.status_code


def prepare():
    """Requests through the test client with the benchmarks' URLs (the bare page), as production runs them:
    ``DEBUG`` off (no query log) and templates not instrumented (``setup_test_environment`` would make every
    template render copy its context for the test client: a cost per template a page includes, not production's);
    statistics fresh."""
    settings.DEBUG = False
    warnings.filterwarnings("ignore", "No directory at", UserWarning)  # whitenoise: static files not collected here
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.ROOT_URLCONF = "bench.floor_urls"
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


TARGET = 5.0  # every page at most this many times the bare page


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="requests of each (at least 5)")
    parser.add_argument("--only", default="", help="only pages whose label contains this")
    parser.add_argument("--slow", type=float, default=2.0, help="seconds above which a page is measured 3 times")
    parser.add_argument("--check", action="store_true", help="exit 1 when a page is over the target or not a 200")
    args = parser.parse_args()
    prepare()
    print(f"{connection.vendor}, {args.repeat} alternating requests each, medians")
    clients, worst, over, failed, measured = {}, (0.0, ""), [], [], 0
    for who, user, label, url in pages():
        if args.only and args.only not in label:
            continue
        if user.pk not in clients:
            clients[user.pk] = Client()
            clients[user.pk].force_login(user)
        client = clients[user.pk]
        timed(client, "/bench/bare/")
        warm, status = timed(client, url)  # warm up
        floor, page, statuses = [], [], {status}
        # a page slower than --slow seconds is measured 3 times, not --repeat (the figure is then rough)
        for _ in range(3 if warm > args.slow else max(args.repeat, 5)):
            floor.append(timed(client, "/bench/bare/")[0])
            elapsed, status = timed(client, url)
            page.append(elapsed)
            statuses.add(status)
        if statuses != {200}:  # every request, the warm-up's included
            shown = ", ".join(str(each) for each in sorted(statuses))
            print(f"  {who:44} {label:34} HTTP {shown} (not measured)")
            failed.append(f"{who}: {label} (HTTP {shown})")
            continue
        ratio = statistics.median(page) / statistics.median(floor)
        worst, measured = max(worst, (ratio, f"{who}: {label}")), measured + 1
        if ratio > TARGET:
            over.append(f"{who}: {label} ({ratio:.1f}x)")
        print(f"  {who:44} {label:34} {statistics.median(page) * 1000:8.1f} ms  {ratio:7.1f}x"
              f"  (bare {statistics.median(floor) * 1000:.1f} ms)")
    print(f"worst: {worst[0]:.1f}x ({worst[1]})")
    missed = not measured or over or failed
    print(f"{'MISS' if missed else 'PASS'}  {measured - len(over)} of {measured} pages at most {TARGET:g}x the bare "
          f"page" + "".join(f"; over: {each}" for each in over) + "".join(f"; {each}" for each in failed))
    if args.check and missed:
        sys.exit(1)


if __name__ == "__main__":
    main()
