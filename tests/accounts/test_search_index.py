"""Account name search has a trigram index on PostgreSQL (accounts migration 0008), so a search reads the matching
accounts instead of every account of the platform (issue 14: the small tenant's switcher search)."""

import pytest
from django.db import connection

from accounts.models import Account
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's trigram index")
def test_a_name_search_can_use_the_trigram_index():
    for i in range(50):
        AccountFactory(name=f"Filler {i}")
    AccountFactory(name="Needle Clinic")
    qs = Account.objects.filter(name__icontains="needle").order_by()
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        # a table this small would be scanned anyway (a sequential scan, or the path index read in full): left
        # only bitmap scans, the planner can use an index that serves the condition, or none
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "accounts_account_name_trgm" in plan, plan
    assert [a.name for a in qs] == ["Needle Clinic"]
