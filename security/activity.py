"""Login activity: ``event_record`` writes one SecurityEvent; the receivers below turn what
django-allauth announces (its own code emits these; we cannot call a service in its place) into events.
Sign-in attempts are recorded by ``security.adapters.AccountAdapter`` directly."""

from allauth.account import signals as account_signals
from allauth.mfa import signals as mfa_signals
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver

from .models import SecurityEvent
from .sessions import session_started

Kind = SecurityEvent.Kind


def client_ip(request) -> str | None:
    if request is None:
        return None
    from allauth.account.adapter import get_adapter

    try:
        return get_adapter(request).get_client_ip(request)
    except PermissionDenied:  # allauth cannot tell the IP: record none
        return None


def event_record(*, kind, request=None, user=None, email: str = "", detail: str = "", by=None) -> SecurityEvent:
    """Writes one line of login activity, with the request's IP and browser when there is a request."""
    if user is not None and not email:
        email = user.email
    return SecurityEvent.objects.create(
        kind=kind, user=user if user is not None and user.pk else None, email=(email or "")[:254],
        ip=client_ip(request), user_agent=(request.META.get("HTTP_USER_AGENT", "") if request else "")[:300],
        detail=detail[:300], by=by)


AUTHENTICATOR_NAMES = {"totp": "authenticator app", "recovery_codes": "recovery codes", "webauthn": "passkey"}


def _authenticator_name(authenticator) -> str:
    return AUTHENTICATOR_NAMES.get(authenticator.type, authenticator.type)


@receiver(account_signals.password_changed)
def _password_changed(sender, request, user, **kwargs):
    event_record(kind=Kind.PASSWORD_CHANGED, request=request, user=user)


@receiver(account_signals.password_set)
def _password_set(sender, request, user, **kwargs):
    event_record(kind=Kind.PASSWORD_CHANGED, request=request, user=user, detail="password set")


@receiver(account_signals.email_added)
def _email_added(sender, request, user, email_address, **kwargs):
    event_record(kind=Kind.EMAIL_CHANGE_REQUESTED, request=request, user=user,
                 detail=f"verification sent to {email_address.email}")


@receiver(account_signals.email_changed)
def _email_changed(sender, request, user, from_email_address, to_email_address, **kwargs):
    old = from_email_address.email if from_email_address else ""
    event_record(kind=Kind.EMAIL_CHANGED, request=request, user=user, email=to_email_address.email,
                 detail=f"from {old} to {to_email_address.email}" if old else f"to {to_email_address.email}")


@receiver(mfa_signals.authenticator_added)
def _mfa_added(sender, request, user, authenticator, **kwargs):
    event_record(kind=Kind.MFA_ADDED, request=request, user=user, detail=_authenticator_name(authenticator))


@receiver(mfa_signals.authenticator_removed)
def _mfa_removed(sender, request, user, authenticator, **kwargs):
    event_record(kind=Kind.MFA_REMOVED, request=request, user=user, detail=_authenticator_name(authenticator))


@receiver(mfa_signals.authenticator_reset)
def _mfa_reset(sender, request, user, authenticator, **kwargs):
    event_record(kind=Kind.MFA_RESET, request=request, user=user, detail=_authenticator_name(authenticator))


@receiver(mfa_signals.authentication_failed)
def _mfa_failed(sender, request, user, authenticator, reauthentication=False, **kwargs):
    event_record(kind=Kind.MFA_FAILED, request=request, user=user,
                 detail=_authenticator_name(authenticator) + (" (confirming it is you)" if reauthentication else ""))


@receiver(user_logged_in)
def _session_started(sender, request, user, **kwargs):
    """Every way in (allauth's sign-in, sign-up, an invitation link) lists the session at once and notes
    when it signed in (accounts may limit a session's lifetime)."""
    if request is not None and hasattr(request, "session"):
        session_started(request)
