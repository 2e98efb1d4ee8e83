"""Signed links that act on one row: invitations and billing transfers.

A link carries ``<public id>:<nonce>`` signed with a timestamp (django.core.signing), so it cannot be
forged, expires, and dies when the row's nonce changes (resending) or its status moves on (the caller's
check). Each kind of link has its own salt, so one kind's token is never accepted as another's.
"""

import datetime

from django.conf import settings
from django.core import signing


class LinkExpired(Exception):
    pass


class LinkInvalid(Exception):
    pass


def link_token(salt: str, obj) -> str:
    return signing.TimestampSigner(salt=salt).sign(f"{obj.public_id}:{obj.nonce}")


def link_url(path: str, request=None) -> str:
    """An absolute URL: from the request when there is one, else ``SITE_URL`` (emails sent by commands)."""
    return request.build_absolute_uri(path) if request is not None else f"{settings.SITE_URL}{path}"


def link_value(salt: str, token: str, *, max_age: datetime.timedelta) -> tuple[str, str]:
    """(public id, nonce) of a valid token; LinkExpired or LinkInvalid otherwise."""
    try:
        value = signing.TimestampSigner(salt=salt).unsign(token, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise LinkExpired from exc
    except signing.BadSignature as exc:
        raise LinkInvalid from exc
    public_id, _, nonce = value.partition(":")
    return public_id, nonce
