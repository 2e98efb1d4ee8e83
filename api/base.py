"""What every endpoint shares: the URL's account resolved for the key (404 when out of its reach), the
permission each method needs, ETags, and idempotent POSTs."""

import datetime
import functools
import hashlib
import json

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils import timezone
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from accounts.access import resolve_access
from accounts.models import Account
from accounts.params import uuid_or_404

from .errors import ApiError
from .models import IdempotencyRecord

IDEMPOTENCY_HEADER = "Idempotency-Key"
# How long a first answer is kept for retries; older records are purged, a batch at a time, as new ones come.
IDEMPOTENCY_RETENTION = datetime.timedelta(hours=24)
IDEMPOTENCY_PURGE_BATCH = 500


def etag_of(data) -> str:
    body = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'


class ApiView(GenericAPIView):
    # Base of every endpoint: ``permissions`` maps a method to the codenames it needs in the URL's account.

    permissions: dict[str, tuple[str, ...]] = {}

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication, throttling
        self.access = None
        if "account_id" in kwargs:
            self.access = self.access_for(kwargs["account_id"])
            self.account = self.access.account
            needed = self.permissions.get(request.method, ())
            if request.method == "HEAD":
                needed = self.permissions.get("GET", ())
            self.access.require(*needed)

    def access_for(self, public_id):
        """The key's access in an account, or 404 when the key does not reach it (DESIGN rule 5)."""
        account = Account.objects.select_related("parent").filter(public_id=uuid_or_404(public_id)).first()
        access = resolve_access(self.request.user, account) if account else None
        if access is None:
            raise ApiError(404, "not_found", "Not found.")
        if access.is_locked_out:
            raise ApiError(403, "account_suspended", "This account is suspended.")
        self.require_second_factor(access)
        return access

    def require_second_factor(self, access) -> None:
        """A key acts as its creator at the moment of each request (DESIGN): where the account's security policy
        requires two-factor of them and its deadline has passed, a creator without one is refused here as the
        pages turn them away (found by a hostile review: keys went on working). For an agency user's key their
        agency's policy binds them too (``security.policy.agency_policy``: one query, agency users only); otherwise
        no query unless the policy requires it of them."""
        from allauth.mfa.utils import is_mfa_enabled

        from security.middleware import SECOND_FACTORS
        from security.policy import agency_policy, effective_policy, mfa_requirement

        agency = agency_policy(access)  # (an agency user's key: their agency's policy binds them here too)
        requirement = mfa_requirement(access, effective_policy(access.account, access.ancestors), agency)
        if requirement is not None and requirement.is_due() and not is_mfa_enabled(self.request.user,
                                                                                   SECOND_FACTORS):
            name = agency.agency.name if agency and requirement.source.pk == agency.agency.pk else access.account.name
            raise ApiError(403, "mfa_required", f"{name} requires two-factor authentication: the "
                                                "key's creator must set up an authenticator app or a passkey "
                                                "before the key works here again.")

    def finalize_response(self, request, response, *args, **kwargs):
        if request.method in ("GET", "HEAD") and response.status_code == 200 and isinstance(response, Response) \
                and response.data is not None:
            tag = etag_of(response.data)
            if tag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
                response = Response(status=status.HTTP_304_NOT_MODIFIED)
            response["ETag"] = tag
        return super().finalize_response(request, response, *args, **kwargs)

    def check_if_match(self, current_data) -> None:
        """PATCH with ``If-Match``: refused (412) when the object changed since that ETag was read."""
        wanted = self.request.headers.get("If-Match")
        if wanted and wanted.strip() != "*" and etag_of(current_data) not in [t.strip() for t in wanted.split(",")]:
            raise ApiError(412, "precondition_failed", "The object changed since you read it: fetch it again.")

    def scoped_object(self, queryset, lookup: str):
        return get_object_or_404(queryset, public_id=uuid_or_404(self.kwargs[lookup], "Not found."))


def idempotency_purge(*, now=None, batch: int = IDEMPOTENCY_PURGE_BATCH) -> int:
    """Delete at most ``batch`` records older than ``IDEMPOTENCY_RETENTION``; returns how many. Called before
    each new record is written (so the table holds about a day of POSTs), and usable from housekeeping."""
    cutoff = (now or timezone.now()) - IDEMPOTENCY_RETENTION
    stale = list(IdempotencyRecord.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:batch])
    return IdempotencyRecord.objects.filter(pk__in=stale).delete()[0] if stale else 0


def idempotent(method):
    """POST handlers: with an ``Idempotency-Key`` header, the first answer is stored with the change it made
    (one transaction); a retry with the same key and request gets it back and acts no more; the same key
    with a different request is refused (422). Concurrent retries wait on the row's unique index. A key is
    remembered for ``IDEMPOTENCY_RETENTION`` (24 hours); after that it acts as a new one."""

    @functools.wraps(method)
    def handler(self, request, *args, **kwargs):
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is None:
            return method(self, request, *args, **kwargs)
        if not 1 <= len(key) <= 255 or not key.isprintable():
            raise ApiError(400, "invalid_idempotency_key", "An Idempotency-Key has 1 to 255 printable characters.")
        body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
        fingerprint = hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()
        idempotency_purge()
        with transaction.atomic():
            record, created = IdempotencyRecord.objects.get_or_create(api_key=request.auth, key=key,
                                                                      defaults={"fingerprint": fingerprint})
            if not created and record.created_at < timezone.now() - IDEMPOTENCY_RETENTION:
                record.delete()  # older than the retention but not purged yet: a new key
                record = IdempotencyRecord.objects.create(api_key=request.auth, key=key, fingerprint=fingerprint)
                created = True
            if not created:
                if record.fingerprint != fingerprint:
                    raise ApiError(422, "idempotency_key_reused",
                                   "This Idempotency-Key was already used with a different request.")
                replay = Response(record.response_body, status=record.status_code,
                                  headers={"Idempotent-Replayed": "true"})
                if record.location:
                    replay["Location"] = record.location
                return replay
            try:
                with transaction.atomic():
                    response = method(self, request, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - answered (4xx) or re-raised by DRF's handler
                response = self.handle_exception(exc)
            if response.status_code >= 500:
                transaction.set_rollback(True)
                return response
            record.status_code = response.status_code
            record.response_body = response.data
            record.location = response.get("Location", "")
            record.save(update_fields=["status_code", "response_body", "location"])
            return response

    return handler
