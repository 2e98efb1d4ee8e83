"""Print the query counts of the dashboard and the switcher at 5 and 50 subaccounts and at depth 1 and 5.

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
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params, HTTP_HX_REQUEST="true" if "switcher" in url else None)
    assert response.status_code == 200, (url, response.status_code)
    return len(ctx.captured_queries)


def main():
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0)
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
        print(f"{'case':<20}{'dashboard':>10}{'switcher':>10}{'children':>10}{'search':>10}")
        for row in rows:
            print(f"{row[0]:<20}" + "".join(f"{v:>10}" for v in row[1:]))
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
