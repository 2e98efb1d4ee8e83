"""DRF authentication by ``X-API-Key``: the key's creator, limited to the key's account subtree and scopes.

Every refusal (missing creator, malformed, unknown, wrong secret, revoked, expired, creator no longer
reaching the account) is the same 401, so an answer never tells which keys exist.
"""

import datetime

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from accounts.access import AccessCeiling, resolve_access
from accounts.audit import client_ip

from . import keys
from .models import ApiKey
from .services import scope_matrix

HEADER = "X-API-Key"
INVALID = "The API key is missing, malformed, unknown, revoked or expired, or its creator no longer has access."
LAST_USED_INTERVAL = datetime.timedelta(minutes=1)
_DUMMY_HASH = "0" * 64


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        raw = request.META.get("HTTP_X_API_KEY")
        if raw is None:
            return None  # not authenticated: a 401 asking for the header
        parsed = keys.parse(raw)
        if parsed is None:
            raise exceptions.AuthenticationFailed(INVALID, code="invalid_api_key")
        prefix, secret = parsed
        key = (ApiKey.objects.select_related("account", "created_by").filter(prefix=prefix).first())
        # Always compute and compare a hash, so an unknown prefix takes as long as a wrong secret.
        if not keys.matches(key.secret_hash if key else _DUMMY_HASH, prefix, secret) or key is None:
            raise exceptions.AuthenticationFailed(INVALID, code="invalid_api_key")
        now = timezone.now()
        user = key.created_by
        if key.status_at(now) != ApiKey.Status.ACTIVE or user is None or not user.is_active:
            raise exceptions.AuthenticationFailed(INVALID, code="invalid_api_key")
        user.access_ceiling = AccessCeiling(account=key.account, scopes=scope_matrix(key.scopes),
                                            label=f"API key “{key.label}” ({key.partial})")
        if resolve_access(user, key.account) is None:  # the creator left: the key does nothing
            raise exceptions.AuthenticationFailed(INVALID, code="invalid_api_key")
        self._touch(key, request, now)
        return user, key

    def authenticate_header(self, request):
        return f'ApiKey header="{HEADER}"'

    @staticmethod
    def _touch(key: ApiKey, request, now) -> None:
        """Last used (time and IP), written at most once a minute per key, or when the IP changes."""
        ip = client_ip(request)
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_INTERVAL or key.last_used_ip != ip:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now, last_used_ip=ip)
            key.last_used_at, key.last_used_ip = now, ip


