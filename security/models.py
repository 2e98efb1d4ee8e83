from django.conf import settings
from django.db import models
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
