"""Failed sign-ins, counted per address and per client IP with django-allauth's rate limiter.

allauth counts the ``login_failed`` action itself (keyed here by the normalised address, see
``AccountAdapter``); the per-IP count is a second action, ``login_failed_ip``, keyed by the IP, so that
both can be lifted by key from the admin without a request from that IP. Both rates are in
``settings.ACCOUNT_RATE_LIMITS``; the counters live in the default cache, shared by every process when
``CACHE_URL`` points at Redis. An attempt is counted before the password is checked and handed back when
it succeeds, so a correct password never spends the budget and guessing in parallel cannot exceed it.

The time to wait is read from the counter allauth keeps (the timestamps of the attempts in the window):
that is allauth's internal format (``allauth.core.internal.ratelimit``), pinned with the package version
and covered by tests/security/test_throttle.py.
"""

import math
import time

from allauth.core import ratelimit
from allauth.core.internal import ratelimit as allauth_ratelimit
from django.core.cache import cache

APP = "allauth.account"
PER_EMAIL = "login_failed"
PER_IP = "login_failed_ip"


def email_key(email: str) -> str:
    return (email or "").strip().lower()


def ip_key(ip: str) -> str:
    return f"ip:{ip}"


def consume_ip(request, ip: str):
    """Counts one attempt from ``ip``; the usage (to hand back on success), or None when the IP is over its
    budget."""
    return allauth_ratelimit.consume(request, app=APP, action=PER_IP, key=ip_key(ip))


def wait_seconds(*, action: str, key: str, now: float | None = None) -> int:
    """Seconds until ``key`` may try again under ``action`` (0 when it may now)."""
    now = time.time() if now is None else now
    longest = 0.0
    for rate in allauth_ratelimit.get_rates(app=APP, action=action):
        cache_key = allauth_ratelimit.get_cache_key(None, app=APP, action=action, rate=rate, key=key)
        recent = sorted((t for t in cache.get(cache_key, []) if t > now - rate.duration), reverse=True)
        if len(recent) >= rate.amount:
            longest = max(longest, recent[rate.amount - 1] + rate.duration - now)
    return math.ceil(longest)


def locked_for(*, email: str = "", ip: str = "") -> int:
    """Seconds the address or the IP still has to wait, whichever is longer."""
    waits = [0]
    if email:
        waits.append(wait_seconds(action=PER_EMAIL, key=email_key(email)))
    if ip:
        waits.append(wait_seconds(action=PER_IP, key=ip_key(ip)))
    return max(waits)


def clear(*, email: str = "", ip: str = "") -> None:
    """Forgets the failures counted for the address and/or the IP."""
    if email:
        ratelimit.clear(None, action=PER_EMAIL, key=email_key(email))
    if ip:
        ratelimit.clear(None, action=PER_IP, key=ip_key(ip))


def human_wait(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
