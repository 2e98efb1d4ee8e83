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


class WebhookEvent(models.TextChoices):
    CONVERSATION_STARTED = "conversation.started", "Conversation started"
    CONVERSATION_ENDED = "conversation.ended", "Conversation ended"
    SUBACCOUNT_CREATED = "subaccount.created", "Subaccount created"
    MEMBER_ADDED = "member.added", "Member added"
    MEMBER_REMOVED = "member.removed", "Member removed"
    AGENCY_ACCESS_CHANGED = "agency_access.changed", "Agency access changed"
    BILLING_TRANSFER_COMPLETED = "billing_transfer.completed", "Billing transfer completed"
    USAGE_LIMIT_REACHED = "usage.limit_reached", "Usage limit reached"
    INVOICE_CLOSED = "invoice.closed", "Invoice closed"


class Webhook(models.Model):
    """An endpoint of an account (Settings → Developers → Webhooks) that receives the chosen events, signed
    with its secret. ``agents`` empty: every agent of the account."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="webhooks")
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    is_active = models.BooleanField(default=True)
    # The signing secret must be readable to sign; generated, shown once, regenerated on demand.
    secret = models.CharField(max_length=64, editable=False)
    events = models.JSONField(default=list)
    agents = models.ManyToManyField("workspace.Agent", blank=True, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    # Who answers for where its events go and who can sign as it: the person who last set its address, and the
    # one who last set its secret (creating it, or turning it on again, sets both). It sends only while both
    # still manage developer tools here (``developers.webhooks.unanswered``): an agency user's endpoint stops
    # when the agency's access does. None: the platform (admin, commands). A person who answers for an endpoint
    # cannot be deleted until someone else does (PROTECT), so no endpoint passes to the platform by a deletion.
    url_set_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    secret_set_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT,
                                      related_name="+")
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["name", "pk"]
        indexes = [models.Index(fields=["account", "is_active"])]

    def __str__(self):
        return self.name


class WebhookDelivery(models.Model):
    """One event sent (or to be sent) to one endpoint, with its attempts. The body is kept as first sent, so a
    redelivery sends the same bytes with a new timestamp and signature."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RETRYING = "retrying", "Retrying"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="+")
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event_id = models.UUIDField(default=uuid.uuid4)
    event_type = models.CharField(max_length=40, choices=WebhookEvent.choices)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_response_code = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["webhook", "-created_at"])]

    def __str__(self):
        return f"{self.event_type} → {self.webhook_id} ({self.status})"


class WebhookAttempt(models.Model):
    """The log of one try: request headers, response code and body excerpt, duration, error."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    request_headers = models.JSONField(default=dict)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self):
        return f"attempt {self.number} of {self.delivery_id}"
