from django.db import models
from django.utils import timezone


class IdempotencyRecord(models.Model):
    """The first answer to a POST sent with an ``Idempotency-Key``, per API key: a retry with the same key
    and the same request gets it again and acts no more; the same key with another request is refused."""

    api_key = models.ForeignKey("developers.ApiKey", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)  # SHA-256 of method, path and the parsed body
    status_code = models.PositiveSmallIntegerField(default=0)
    response_body = models.JSONField(null=True)
    location = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["api_key", "key"], name="idempotency_key_unique_per_api_key")]
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self):
        return f"{self.key} → {self.status_code}"


class CacheEntry(models.Model):
    """The table of Django's database cache backend (``dbcache://api_cache``): the production default for rate
    limits, shared by every worker process. Kept as a model so ``migrate`` creates it."""

    cache_key = models.CharField(max_length=255, primary_key=True)
    value = models.TextField()
    expires = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "api_cache"

    def __str__(self):
        return self.cache_key


class RateCounter(models.Model):
    """Requests of one API key in one rate-limit window, counted with one ``INSERT … ON CONFLICT DO UPDATE SET
    hits = hits + 1 RETURNING hits`` (``api.throttling``): atomic across processes and app servers, which the
    database cache's read-then-write ``incr`` is not. Used when the ``api`` cache is the database cache."""

    bucket = models.CharField(max_length=200, primary_key=True)  # "<key prefix>:<period>:<window number>"
    hits = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self):
        return f"{self.bucket}: {self.hits}"
