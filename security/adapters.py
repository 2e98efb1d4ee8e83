"""django-allauth adapters: sign-in throttling with the time to wait, and recording of every attempt."""

from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from django.core.exceptions import ValidationError

from members.models import User

from . import throttle
from .activity import client_ip, event_record
from .models import SecurityEvent

Kind = SecurityEvent.Kind


def _user_with(email: str):
    """The person an attempted address belongs to, so it shows in their activity (never in the answer)."""
    email = throttle.email_key(email)
    return User.objects.filter(email__iexact=email).first() if email else None


class AccountAdapter(DefaultAccountAdapter):
    error_messages = {
        **DefaultAccountAdapter.error_messages,
        # The same answer whether or not the address belongs to anyone (and Django's wording, kept).
        "email_password_mismatch": "Please enter a correct email address and password. Note that both fields "
                                   "may be case-sensitive.",
    }

    def _get_login_attempts_cache_key(self, request, **credentials):
        # allauth prefixes the site's domain; the bare address lets staff lift a lockout from the admin.
        return throttle.email_key(credentials.get("email", ""))

    def pre_authenticate(self, request, **credentials):
        """Counts the attempt against the client IP, then (allauth) against the address; refuses with the
        time to wait when either is over its budget. Known and unknown addresses are counted alike."""
        email = credentials.get("email", "")
        ip = client_ip(request) or ""
        self._ip_usage = throttle.consume_ip(request, ip) if ip else None
        if ip and self._ip_usage is None:
            self._refuse(request, email, throttle.wait_seconds(action=throttle.PER_IP, key=throttle.ip_key(ip)))
        try:
            super().pre_authenticate(request, **credentials)
        except ValidationError:
            self._refuse(request, email, throttle.wait_seconds(action=throttle.PER_EMAIL,
                                                               key=throttle.email_key(email)))

    def _refuse(self, request, email, wait):
        event_record(kind=Kind.LOGIN_THROTTLED, request=request, email=throttle.email_key(email),
                     user=_user_with(email))
        raise ValidationError(
            f"Too many failed sign-in attempts. Try again in {throttle.human_wait(max(wait, 1))}, "
            "or reset your password.", code="too_many_login_attempts")

    def authenticate(self, request, **credentials):
        user = super().authenticate(request, **credentials)
        if user is not None and getattr(self, "_ip_usage", None):
            self._ip_usage.rollback()  # a correct password does not spend the IP's budget either
        return user

    def authentication_failed(self, request, **credentials):
        email = throttle.email_key(credentials.get("email", ""))
        event_record(kind=Kind.LOGIN_FAILED, request=request, email=email, user=_user_with(email))

    def login(self, request, user):
        super().login(request, user)
        event_record(kind=Kind.LOGIN_SUCCEEDED, request=request, user=user)


class MFAAdapter(DefaultMFAAdapter):
    pass
