"""Rate limit per API key: a fixed window, counted where every process and app server sees the same number
(never process memory in production, see ``CACHES`` in the settings).

The count must be atomic, or two requests arriving together on two servers can both take the last slot. A
cache whose ``incr`` is atomic (process memory, Redis, memcached) counts with ``add`` + ``incr``; anything else,
the database cache in particular (its ``incr`` reads, then writes), counts in ``api.RateCounter`` with one
upsert statement that returns the new count."""

import datetime
import time

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.db import connection
from django.utils import timezone
from rest_framework.throttling import BaseThrottle

from .models import RateCounter

PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600}
PURGE_BATCH = 500


def parse_rate(rate: str) -> tuple[int, int]:
    """"600/min" → (600, 60)."""
    count, _, period = rate.partition("/")
    return int(count), PERIODS[period.strip().lower()]


def _has_atomic_incr(cache) -> bool:
    """Backends whose ``incr`` is one atomic operation (a lock, or the server's own INCR)."""
    if isinstance(cache, LocMemCache):
        return True
    module = type(cache).__module__
    return module.endswith(("cache.backends.redis", "cache.backends.memcached"))


def counter_hit(bucket: str, expires_at: datetime.datetime) -> int:
    """Add one request to ``bucket`` and return its new count, in one statement (PostgreSQL and SQLite alike).
    The first request of a window also purges a batch of expired windows, so the table stays small."""
    table = RateCounter._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (bucket, hits, expires_at) VALUES (%s, 1, %s) "
            f"ON CONFLICT (bucket) DO UPDATE SET hits = {table}.hits + 1 RETURNING hits",
            [bucket, expires_at],
        )
        (hits,) = cursor.fetchone()
    if hits == 1:
        stale = RateCounter.objects.filter(expires_at__lt=timezone.now()).values_list("pk", flat=True)[:PURGE_BATCH]
        RateCounter.objects.filter(pk__in=list(stale)).delete()
    return hits


def cache_hit(cache, bucket: str, timeout: int) -> int:
    cache.add(bucket, 0, timeout=timeout)
    try:
        return cache.incr(bucket)
    except ValueError:  # expired between add and incr
        cache.add(bucket, 0, timeout=timeout)
        return cache.incr(bucket)


class ApiKeyRateThrottle(BaseThrottle):
    def allow_request(self, request, view):
        key = getattr(request, "auth", None)
        prefix = getattr(key, "prefix", None)
        if prefix is None:
            return True  # unauthenticated requests are refused anyway
        limit, period = parse_rate(settings.API_RATE_LIMIT)
        now = time.time()
        window = int(now // period)
        bucket = f"api-rate:{prefix}:{period}:{window}"
        cache = caches[settings.API_CACHE_ALIAS]
        if _has_atomic_incr(cache):
            count = cache_hit(cache, bucket, period + 1)
        else:
            expires = datetime.datetime.fromtimestamp((window + 1) * period, tz=datetime.UTC)
            count = counter_hit(bucket, expires)
        self.retry_after = max(1, int((window + 1) * period - now + 0.999))
        return count <= limit

    def wait(self):
        return self.retry_after
