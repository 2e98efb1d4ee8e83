"""Rate limit per API key: a fixed window counted in the ``api`` cache (shared by every process; never process
memory in production, see ``CACHES`` in the settings)."""

import time

from django.conf import settings
from django.core.cache import caches
from rest_framework.throttling import BaseThrottle

PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600}


def parse_rate(rate: str) -> tuple[int, int]:
    """"600/min" → (600, 60)."""
    count, _, period = rate.partition("/")
    return int(count), PERIODS[period.strip().lower()]


class ApiKeyRateThrottle(BaseThrottle):
    def allow_request(self, request, view):
        key = getattr(request, "auth", None)
        prefix = getattr(key, "prefix", None)
        if prefix is None:
            return True  # unauthenticated requests are refused anyway
        limit, period = parse_rate(settings.API_RATE_LIMIT)
        now = time.time()
        window = int(now // period)
        cache = caches[settings.API_CACHE_ALIAS]
        cache_key = f"api-rate:{prefix}:{period}:{window}"
        cache.add(cache_key, 0, timeout=period + 1)
        try:
            count = cache.incr(cache_key)
        except ValueError:  # expired between add and incr
            cache.set(cache_key, 1, timeout=period + 1)
            count = 1
        self.retry_after = max(1, int((window + 1) * period - now + 0.999))
        return count <= limit

    def wait(self):
        return self.retry_after
