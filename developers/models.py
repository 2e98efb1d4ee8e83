import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiKeyQuerySet(models.QuerySet):
    def in_account(self, account):
        """The entry point for keys: always start from the current account."""
        return self.filter(account=account)


class ApiKey(models.Model):
    """An account-scoped API key (Account → API keys).

    The full key ``sk-<prefix>.<secret>`` is shown once; only ``prefix`` (public, unique) and a keyed
    hash of the secret are stored (``developers.keys``). The key acts as ``created_by`` in ``account``
    and below, at most with what they hold there at each request, capped by ``scopes``.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="api_keys")
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    prefix = models.CharField(max_length=8, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    label = models.CharField(max_length=100)
    # {category: "read"|"full"}; empty: no narrower than the creator.
    scopes = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["account", "-created_at"])]
        verbose_name = "API key"

    def __str__(self):
        return f"{self.label} ({self.partial})"

    @property
    def partial(self) -> str:
        return f"sk-{self.prefix}…"

    def status_at(self, now=None) -> str:
        if self.revoked_at is not None:
            return self.Status.REVOKED
        if self.expires_at is not None and self.expires_at <= (now or timezone.now()):
            return self.Status.EXPIRED
        return self.Status.ACTIVE

    @property
    def status(self) -> str:
        return self.status_at()

    def get_status_display(self) -> str:
        return self.Status(self.status).label
