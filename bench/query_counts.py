"""Print query counts: dashboard and switcher at 5 and 50 subaccounts and at depth 1 and 5; the
subaccounts page at 5, 200 and 2,000 subaccounts (with usage, members and agents on every row).

Run: .venv/bin/python bench/query_counts.py   (uses a throw-away test database; DATABASE_URL picks PostgreSQL)
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402


def count(client, url, **params):
    connection.queries_log.clear()  # the log keeps 9,000 queries: start each measure empty
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params, HTTP_HX_REQUEST="true" if "switcher" in url else None)
    assert response.status_code == 200, (url, response.status_code)
    return len(ctx.captured_queries)


def _decorate(root):
    """A member, an agent and a usage record on every subaccount, in bulk."""
    from accounts.models import Account
    from billing.models import UsageRecord, period_start
    from billing.rollups import rollups_rebuild
    from members.models import Membership
    from tests.factories import UserFactory
    from workspace.models import Agent

    subs = list(Account.objects.filter(parent=root))
    users = UserFactory.create_batch(len(subs))
    pairs = zip(users, subs, strict=True)
    Membership.objects.bulk_create(Membership(user=u, account=a, role="member") for u, a in pairs)
    Agent.objects.bulk_create(Agent(account=a, name="Agent") for a in subs)
    UsageRecord.objects.bulk_create(UsageRecord(account=a, billing_root=root, period=period_start(),
                                                occurred_on=period_start(), minutes=3, seconds=150) for a in subs)
    rollups_rebuild()


def main():
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # setup speed only
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from members.roles import RoleId
        from tests.factories import MembershipFactory, UserFactory, account_chain, account_tree

        client = Client()
        rows = []
        for n in (5, 50):
            root = account_tree(breadth=n)
            user = UserFactory()
            MembershipFactory(user=user, account=root, role=RoleId.OWNER)
            client.force_login(user)
            rows.append((f"{n} subaccounts", count(client, root.get_absolute_url()),
                         count(client, "/switcher/"), count(client, "/switcher/", parent=str(root.public_id)),
                         count(client, "/switcher/", q="Account")))
        for depth in (1, 5):
            chain = account_chain(depth, prefix=f"Depth{depth}")
            user = UserFactory()
            MembershipFactory(user=user, account=chain[0], role=RoleId.OWNER)
            client.force_login(user)
            rows.append((f"depth {depth} (leaf)", count(client, chain[-1].get_absolute_url()),
                         count(client, "/switcher/"), count(client, "/switcher/", parent=str(chain[0].public_id)),
                         count(client, "/switcher/", q="Depth")))
        print(f"database: {connection.vendor}")
        print(f"{'case':<20}{'subaccounts page':>18}{'sorted by minutes':>19}{'search':>8}")
        for n in (5, 200, 2000):
            root = account_tree(breadth=n)
            user = UserFactory()
            MembershipFactory(user=user, account=root, role=RoleId.OWNER)
            _decorate(root)
            client.force_login(user)
            page = f"/a/{root.public_id}/subaccounts/"
            print(f"{f'{n} subaccounts':<20}{count(client, page):>18}{count(client, page, sort='minutes'):>19}"
                  f"{count(client, page, q='Account'):>8}")
        print(f"{'case':<20}{'dashboard':>10}{'switcher':>10}{'children':>10}{'search':>10}")
        for row in rows:
            print(f"{row[0]:<20}" + "".join(f"{v:>10}" for v in row[1:]))
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
