from django.conf import settings
from django.core import checks

PER_PROCESS = ("django.core.cache.backends.locmem.LocMemCache", "django.core.cache.backends.dummy.DummyCache")


@checks.register(checks.Tags.security, deploy=True)
def throttle_cache_is_shared(app_configs, **kwargs):
    """Sign-in throttling counts failures in the default cache: one per process would multiply the budget
    by the number of workers (and forget it on every restart)."""
    if settings.CACHES["default"]["BACKEND"] in PER_PROCESS:
        return [checks.Warning(
            "The default cache is per process, so sign-in throttling counts per worker.",
            hint="Set CACHE_URL to a shared cache, e.g. redis://host:6379/0.", id="security.W001")]
    return []
