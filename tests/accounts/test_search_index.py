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
    qs = Account.objects.filter(name__icontains="needle")
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a table this small would be scanned anyway
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "accounts_account_name_trgm" in plan, plan
    assert [a.name for a in qs] == ["Needle Clinic"]
