"""The rate limit per key is counted atomically wherever the ``api`` cache lives: with the database cache (the
production default) in ``api.RateCounter`` with one upsert, so two requests arriving together on two app
servers cannot both take the last slot."""

import datetime

import pytest
from django.db import connection
from django.utils import timezone

from api import throttling
from api.models import RateCounter
from members.roles import RoleId
from tests.concurrency import race
from tests.factories import AccountFactory

from .conftest import v1

DB_CACHE = {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "api_cache"}


@pytest.fixture
def db_cache(settings):
    """The production default: changing CACHES rebuilds the cache handlers (Django's setting_changed)."""
    settings.CACHES = {**settings.CACHES, settings.API_CACHE_ALIAS: DB_CACHE}


@pytest.mark.django_db
def test_with_the_database_cache_the_count_is_the_counter_tables(db_cache, settings, make_member, api_for):
    settings.API_RATE_LIMIT = "2/min"
    account = AccountFactory()
    api = api_for(account, make_member(account, RoleId.OWNER))
    assert [api.get(v1("accounts/current")).status_code for _ in range(3)] == [200, 200, 429]
    (counter,) = RateCounter.objects.all()
    assert counter.bucket.startswith(f"api-rate:{api.api_key.prefix}:60:") and counter.hits == 3


@pytest.mark.django_db
def test_two_interleaved_requests_cannot_both_take_the_last_slot():
    """Request B runs whole right after request A's first statement returns (as on another app server): a
    read-then-write count would let both take the last slot; one statement that increments and returns the
    count lets exactly one."""
    expires = timezone.now() + datetime.timedelta(minutes=1)
    bucket = "api-rate:interleaved:60:1"
    for _ in range(4):  # limit 5: four used, one slot left
        throttling.counter_hit(bucket, expires)
    counts = {}

    def b_runs_after_as_first_statement(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "B" not in counts:
            counts["B"] = None  # B's own statements pass straight through
            counts["B"] = throttling.counter_hit(bucket, expires)
        return result

    with connection.execute_wrapper(b_runs_after_as_first_statement):
        counts["A"] = throttling.counter_hit(bucket, expires)
    assert sorted(counts.values()) == [5, 6]
    assert [who for who, count in counts.items() if count <= 5] == ["A"]


@pytest.mark.django_db
def test_expired_windows_are_purged_when_a_new_window_starts():
    past = timezone.now() - datetime.timedelta(seconds=1)
    RateCounter.objects.bulk_create([RateCounter(bucket=f"old:{i}", hits=1, expires_at=past) for i in range(3)])
    throttling.counter_hit("api-rate:new:60:2", timezone.now() + datetime.timedelta(minutes=1))
    assert list(RateCounter.objects.values_list("bucket", flat=True)) == ["api-rate:new:60:2"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers only race on PostgreSQL")
def test_concurrent_requests_on_separate_connections_never_exceed_the_limit():
    """Sixteen requests at once on sixteen connections (as many app servers) for a limit of 5: exactly five
    pass, and the counter saw every one."""
    n, limit = 16, 5
    expires = timezone.now() + datetime.timedelta(minutes=1)
    results = race(n, lambda i: throttling.counter_hit("api-rate:burst:60:1", expires))
    assert not [r for r in results if isinstance(r, Exception)]
    counts = results
    assert sorted(counts) == list(range(1, n + 1))
    assert sum(1 for c in counts if c <= limit) == limit
    assert RateCounter.objects.get(bucket="api-rate:burst:60:1").hits == n
