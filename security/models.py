import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone


class SecurityEvent(models.Model):
    """One line of a person's login activity: every sign-in attempt (successful, failed or refused by the
    throttle, whether or not the address belongs to anyone) and every change to how they sign in."""

    class Kind(models.TextChoices):
        LOGIN_SUCCEEDED = "login.succeeded", "Signed in"
        LOGIN_FAILED = "login.failed", "Wrong email or password"
        LOGIN_THROTTLED = "login.throttled", "Sign-in refused: too many failed attempts"
        LOCKOUT_LIFTED = "lockout.lifted", "Sign-in lockout lifted by platform staff"
        PASSWORD_CHANGED = "password.changed", "Password changed"
        PASSWORD_RESET = "password.reset", "Password reset by email"
        EMAIL_CHANGE_REQUESTED = "email.change_requested", "Email change requested"
        EMAIL_CHANGED = "email.changed", "Email changed"
        MFA_ADDED = "mfa.added", "Second factor added"
        MFA_REMOVED = "mfa.removed", "Second factor removed"
        MFA_RESET = "mfa.reset", "Recovery codes regenerated"
        MFA_FAILED = "mfa.failed", "Wrong second-factor code"
        MFA_RESET_BY_OWNER = "mfa.reset_by_owner", "Second factor reset by an account Owner"
        SESSION_REVOKED = "session.revoked", "Session signed out remotely"
        SESSIONS_ENDED_BY_POLICY = "session.ended_by_policy", "Other sessions ended: an account requires two-factor"
        SESSION_EXPIRED_BY_POLICY = "session.expired_by_policy", "Signed out by an account's session policy"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="security_events")
    email = models.CharField(max_length=254, blank=True,
                             help_text="The address typed (sign-in attempts) or the person's address then.")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    detail = models.CharField(max_length=300, blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                           related_name="+", help_text="Who did it, when not the person themselves.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["user", "-created_at"]),
            models.Index(fields=["email", "-created_at"]),
            models.Index(fields=["ip", "-created_at"]),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} · {self.email or self.user_id} · {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def is_failure(self) -> bool:
        return self.kind in (self.Kind.LOGIN_FAILED, self.Kind.LOGIN_THROTTLED, self.Kind.MFA_FAILED)


class SecurityPolicy(models.Model):
    """An account's own security policy (Settings → Security). What applies in an account is the strictest
    of its own and every ancestor's (``security.policy.effective_policy``); written only by
    ``security.services.policy_update``."""

    class MfaScope(models.TextChoices):
        NOBODY = "nobody", "Not required"
        ADMINS = "admins", "Owners and Admins"
        EVERYONE = "everyone", "Every member"

    account = models.OneToOneField("accounts.Account", on_delete=models.CASCADE, related_name="security_policy")
    require_mfa = models.CharField(max_length=16, choices=MfaScope.choices, default=MfaScope.NOBODY)
    mfa_deadline = models.DateTimeField(
        null=True, blank=True,
        help_text="Until then people without a second factor see a banner; afterwards they must set one up.")
    idle_timeout_minutes = models.PositiveIntegerField(null=True, blank=True)
    session_lifetime_hours = models.PositiveIntegerField(null=True, blank=True)
    allowed_email_domains = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        verbose_name_plural = "security policies"
        constraints = [
            models.CheckConstraint(condition=models.Q(idle_timeout_minutes__isnull=True)
                                   | models.Q(idle_timeout_minutes__gte=5), name="policy_idle_at_least_5_minutes"),
            models.CheckConstraint(condition=models.Q(session_lifetime_hours__isnull=True)
                                   | models.Q(session_lifetime_hours__gte=1), name="policy_lifetime_at_least_1_hour"),
        ]

    def __str__(self):
        return f"Security policy of {self.account}"

    @property
    def is_empty(self) -> bool:
        return (self.require_mfa == self.MfaScope.NOBODY and not self.idle_timeout_minutes
                and not self.session_lifetime_hours and not self.allowed_email_domains)


class SupportAccessQuerySet(models.QuerySet):
    def active(self):
        """Approved and not yet expired or revoked: checked on every request, so expiry needs no cron."""
        return self.filter(status=SupportAccess.Status.ACTIVE, expires_at__gt=Now())


class SupportAccess(models.Model):
    """Consented support access (issue 13 part 6): platform staff ask for read-only or full access to one
    account, for a reason and at most 72 hours; the account's Owner approves (choosing whether subaccounts
    are included) or declines; it ends at expiry or on revocation, on the next request. Written only by
    ``security.support``."""

    MAX_HOURS = 72

    class Level(models.TextChoices):
        READ = "read", "Read-only"
        FULL = "full", "Full"

    class Status(models.TextChoices):
        REQUESTED = "requested", "Waiting for the Owner"
        ACTIVE = "active", "Approved"
        DECLINED = "declined", "Declined"
        REVOKED = "revoked", "Revoked"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="support_accesses")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    level = models.CharField(max_length=8, choices=Level.choices)
    reason = models.CharField(max_length=500)
    hours = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.REQUESTED)
    include_subaccounts = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    ended_at = models.DateTimeField(null=True, blank=True)

    objects = SupportAccessQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "support accesses"
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["account", "status", "expires_at"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(hours__gte=1, hours__lte=72), name="support_at_most_72_hours"),
            models.CheckConstraint(condition=~models.Q(status="active") | models.Q(expires_at__isnull=False),
                                   name="support_active_has_expiry"),
        ]

    def __str__(self):
        return f"{self.get_level_display()} support access to {self.account} ({self.get_status_display()})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE and self.expires_at is not None and self.expires_at > timezone.now()
