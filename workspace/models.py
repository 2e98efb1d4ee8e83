import datetime
import uuid

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F
from django.utils import timezone


class AccountScopedQuerySet(models.QuerySet):
    def in_account(self, account):
        """The entry point for tenant data: always start from the current account."""
        return self.filter(account=account)


class AccountScoped(models.Model):
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="+")
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    objects = AccountScopedQuerySet.as_manager()

    class Meta:
        abstract = True


class Agent(AccountScoped):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"

    class Language(models.TextChoices):
        EN = "en", "English"
        DE = "de", "Deutsch"
        FR = "fr", "Français"
        ES = "es", "Español"

    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, help_text="What this agent does, for your team.")
    language = models.CharField(max_length=5, choices=Language.choices, default=Language.EN)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    # Conversations recorded with this agent, blocked ones included: the Agents page shows and sorts by it, and
    # counting a busy account's calls per agent on every view would read all of them. ``Conversation.save`` and
    # ``.delete`` keep it, in the writing transaction; ``manage.py recount_agent_conversations`` rebuilds it.
    conversation_count = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["name", "pk"]
        indexes = [models.Index(fields=["account", "name"])]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        """Saving an agent loaded earlier never writes its count back: calls recorded since then have moved it."""
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [f.name for f in self._meta.concrete_fields
                                       if not f.primary_key and f.name != "conversation_count"]
        super().save(*args, **kwargs)


phone_validator = RegexValidator(r"^\+[1-9]\d{6,14}$", "Use the international format, e.g. +14155550123.")


class Contact(AccountScoped):
    name = models.CharField(max_length=120)
    phone = models.CharField(max_length=16, blank=True, validators=[phone_validator])
    email = models.EmailField(blank=True)

    class Meta:
        ordering = ["name", "pk"]
        indexes = [models.Index(fields=["account", "name"])]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "phone"], condition=~models.Q(phone=""), name="contact_phone_unique_in_account",
                violation_error_message="A contact with this phone number already exists in this account.",
            ),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        if not self.phone and not self.email:
            raise ValidationError("Give the contact a phone number or an email address.")


class Conversation(AccountScoped):
    class Direction(models.TextChoices):
        INBOUND = "inbound", "Inbound"
        OUTBOUND = "outbound", "Outbound"
        WEB = "web", "Web"

    class Status(models.TextChoices):
        COMPLETED = "completed", "Completed"
        BLOCKED = "blocked", "Blocked by a limit"

    # The indexes of Meta.indexes that start with the account serve its foreign key too: a call updates one less.
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="+", db_index=False)
    # Indexed with the start (Meta.indexes): an agent's calls newest first, on its page and filtered by it.
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="conversations", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="conversations")
    direction = models.CharField(max_length=10, choices=Direction.choices, default=Direction.INBOUND)
    started_at = models.DateTimeField()
    duration_seconds = models.PositiveIntegerField()
    ended_at = models.DateTimeField(editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.COMPLETED)
    blocked_reason = models.CharField(max_length=200, blank=True)
    summary = models.TextField(blank=True)
    # The customer data the Trust Center's retention policy governs (trust.policy: "do not store" blanks these
    # when a conversation is written; trust.purge clears or anonymises them once they expire).
    transcript = models.JSONField(default=list, blank=True,
                                  help_text='The messages, e.g. [{"role": "agent", "text": "Hello"}, ...].')
    transcript_anonymised = models.BooleanField(default=False, editable=False)
    recording_url = models.URLField(max_length=500, blank=True)
    insights = models.JSONField(default=dict, blank=True,
                                help_text="What analysis extracted: ratings, outcomes, collected details.")
    insights_anonymised = models.BooleanField(default=False, editable=False)
    caller_ip = models.GenericIPAddressField(null=True, blank=True)
    caller_location = models.CharField(max_length=100, blank=True)
    caller_ip_anonymised = models.BooleanField(default=False, editable=False)

    class Meta:
        ordering = ["-started_at", "-pk"]
        indexes = [
            models.Index(fields=["account", "-started_at"]),
            models.Index(fields=["account", "status", "started_at", "ended_at"]),
            models.Index(fields=["agent", "-started_at"], name="conversation_agent_started"),
            # Longest (or shortest) first: the rows of equal length come newest first from a short sort each.
            models.Index(fields=["account", "duration_seconds"], name="conversation_duration"),
        ]

    def __str__(self):
        return f"{self.contact} with {self.agent} at {self.started_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        self.ended_at = self.started_at + datetime.timedelta(seconds=self.duration_seconds)
        adding = self._state.adding
        super().save(*args, **kwargs)
        if adding:
            self._counted(1)

    def delete(self, *args, **kwargs):
        deleted = super().delete(*args, **kwargs)
        if deleted[1].get(self._meta.label):  # not when another request deleted it first
            self._counted(-1)
        return deleted

    def _counted(self, calls: int) -> None:
        """Keep the figures that count calls: the agent's count and, for a call blocked by a limit, the blocked
        calls of its account's lineage in the period it started (``billing.rollups``; the dashboard's figure).
        ``lineage_ids`` (the account's ancestors and itself), when the recording has them, saves a query."""
        from accounts.models import ids_by_path
        from billing.models import period_start
        from billing.rollups import rollups_add_blocked

        agents = Agent.objects.filter(pk=self.agent_id)
        (agents.filter(conversation_count__gt=0) if calls < 0 else agents).update(
            conversation_count=F("conversation_count") + calls)
        if self.status == self.Status.BLOCKED:
            lineage_ids = getattr(self, "lineage_ids", None) or ids_by_path(self.account.lineage_paths)
            rollups_add_blocked(lineage_ids=lineage_ids, period=period_start(self.started_at), calls=calls)

    def clean(self):
        if self.account_id is None:  # checked again by the service once the account is set
            return
        for related in ("agent", "contact"):
            obj = getattr(self, related, None) if getattr(self, f"{related}_id") else None
            if obj is not None and obj.account_id != self.account_id:
                raise ValidationError({related: "Choose one from this account."})

    @property
    def minutes(self) -> int:
        return -(-self.duration_seconds // 60)
