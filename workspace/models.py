import datetime
import uuid

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
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

    class Meta:
        ordering = ["name", "pk"]
        indexes = [models.Index(fields=["account", "name"])]

    def __str__(self):
        return self.name


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

    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="conversations")
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
        ]

    def __str__(self):
        return f"{self.contact} with {self.agent} at {self.started_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        self.ended_at = self.started_at + datetime.timedelta(seconds=self.duration_seconds)
        super().save(*args, **kwargs)

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
