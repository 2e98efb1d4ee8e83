"""Writes about sign-in security. Each names who acts (``by``) and records it."""

from django.core.exceptions import PermissionDenied
from django.db import transaction

from members.models import User

from . import throttle
from .activity import event_record
from .models import SecurityEvent


@transaction.atomic
def lockout_lift(*, by, email: str = "", ip: str = "", request=None) -> None:
    """Platform staff let an address and/or an IP sign in again at once (forgets the failures counted);
    recorded in the person's login activity (or the address's, when it belongs to no one)."""
    if not (by is not None and by.is_active and by.is_staff):
        raise PermissionDenied("Only platform staff lift sign-in lockouts.")
    throttle.clear(email=email, ip=ip)
    user = User.objects.filter(email__iexact=throttle.email_key(email)).first() if email else None
    event_record(kind=SecurityEvent.Kind.LOCKOUT_LIFTED, request=request, user=user, email=email, by=by,
                 detail=", ".join(filter(None, [email and f"address {email}", ip and f"IP {ip}"])))
