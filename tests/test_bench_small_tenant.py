"""``bench/small_tenant.py``'s measure of work (issue 14, item 6): rows read from a PostgreSQL plan, and each
SELECT of a page with its work on the database the tests run on."""

import io

import pytest
from django.core.management import call_command

from bench.small_tenant import page_work, rows_read
from members.models import User


def test_rows_read_counts_every_scan_with_its_loops_and_filtered_rows():
    plan = {"Node Type": "Aggregate", "Actual Rows": 1, "Plans": [
        {"Node Type": "Nested Loop", "Actual Rows": 10, "Actual Loops": 1, "Plans": [
            {"Node Type": "Seq Scan", "Actual Rows": 10, "Rows Removed by Filter": 10042, "Actual Loops": 1},
            {"Node Type": "Index Scan", "Actual Rows": 1, "Actual Loops": 10},
            {"Node Type": "Bitmap Heap Scan", "Actual Rows": 2, "Rows Removed by Index Recheck": 3, "Actual Loops": 2},
        ]},
    ]}
    assert rows_read(plan) == 10 + 10042 + 10 + (2 + 3) * 2


@pytest.mark.django_db
def test_page_work_lists_each_select_of_the_page_with_its_work(client):
    call_command("build_scale_data", "--without-big", "--subaccounts=12", "--small=4", "--usage-last=48",
                 "--usage-this=32", stdout=io.StringIO())
    client.force_login(User.objects.get(email="small@scale.example"))
    work = page_work(client, "/switcher/?q=Small")
    assert work and all(sql.lstrip().upper().startswith("SELECT") for sql, _ in work)
    assert any("accounts_account" in sql and n > 0 for sql, n in work)
