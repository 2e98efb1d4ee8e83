"""Outbound webhooks: endpoints, events, signed background deliveries with retries, and their log.

- ``webhook_create`` / ``webhook_update`` / ``webhook_regenerate_secret`` / ``webhook_delete`` /
  ``delivery_redeliver``: services (permission, audit, one transaction each).
- ``emit(account, event_type, data, agent=None)``: called by the services where things happen; writes one
  delivery per subscribed endpoint of that account (never another account's) and enqueues the sending after
  commit, so a request never waits for a delivery.
- Decided: a parent's endpoint does not receive its subaccounts' events (no "include subaccounts" option).
  An endpoint's creator may lose reach into a subaccount at any time (demoted, removed, the subaccount
  capping developer tools or moved away by a billing transfer), and a delivery log keeps bodies after the
  fact, so a subtree-wide endpoint would have to re-check the creator's reach per subaccount at emit time and
  could still leak what was logged before. Each subaccount has its own endpoints instead, set up by whoever
  manages its developer tools (a parent's people can do so from above); ``emit`` is per account.
- An endpoint sends for the people who set it up: whoever last set its address and whoever last set its secret
  must still manage developer tools in its account (``unanswered``), checked when an event is recorded and again
  before every attempt. Otherwise it is turned off, with the reason on the Webhooks page: an agency user's
  endpoint stops when the agency's access does, a leaver's when they leave (DESIGN rule 8). Turning it on again
  makes the person who does answer for both.
- ``deliver(delivery_id)``: one attempt (the background task in ``developers.tasks``). The URL is checked
  again after DNS resolution and the connection goes to the checked address (no rebinding in between).

Signature: ``X-Webhook-Signature: v1=<hex HMAC-SHA256(secret, raw_body + "." + timestamp)>`` with the
timestamp in ``X-Webhook-Timestamp`` (Unix seconds); ``X-Webhook-Id`` is the event id (deduplicate on it).
"""

import datetime
import hashlib
import hmac
import http.client
import ipaddress
import json
import secrets
import socket
import ssl
import time
import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from accounts.access import require, resolve_access
from accounts.audit import audit
from accounts.models import Account
from members.models import Membership
from members.roles import RoleId

from .models import Webhook, WebhookAttempt, WebhookDelivery, WebhookEvent

SIGNATURE_HEADER = "X-Webhook-Signature"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"
ID_HEADER = "X-Webhook-Id"
# Seconds to wait before each retry: about a day in all, then the delivery has failed.
BACKOFF = (60, 300, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600)
DISABLE_AFTER_FAILED_DELIVERIES = 5
TIMEOUT_SECONDS = 10
EXCERPT = 500


# ---- signing ---------------------------------------------------------------------------------------

def sign(secret: str, body: bytes, timestamp: int) -> str:
    return "v1=" + hmac.new(secret.encode(), body + b"." + str(timestamp).encode(), hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, timestamp: str, signature: str, *, tolerance: int = 300) -> bool:
    """What a receiver does (the snippet on the Webhooks page and in the README): recompute and compare in
    constant time, and refuse old timestamps (replays)."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(time.time() - ts) > tolerance:
        return False
    expected = "v1=" + hmac.new(secret.encode(), body + b"." + timestamp.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


# ---- addresses (SSRF) ----------------------------------------------------------------------------------

def _allows_private() -> bool:
    return getattr(settings, "WEBHOOK_ALLOW_PRIVATE_URLS", settings.DEBUG)


def _address_refusal(ip: str) -> str | None:
    addr = ipaddress.ip_address(ip)
    if getattr(addr, "ipv4_mapped", None):
        addr = addr.ipv4_mapped
    if not addr.is_global or addr.is_multicast or addr.is_reserved:
        return f"{ip} is a private, loopback, link-local or reserved address."
    return None


def check_url(url: str) -> None:
    """On save: HTTPS, a host name, and no literal private address (outside DEBUG)."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not (_allows_private() and parts.scheme == "http"):
        raise ValidationError({"url": "Use an https:// address."})
    if not parts.hostname or parts.username or parts.password:
        raise ValidationError({"url": "Give a host name, without user name or password."})
    if _allows_private():
        return
    host = parts.hostname
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        raise ValidationError({"url": "Private and loopback addresses cannot receive webhooks."})
    try:
        refusal = _address_refusal(host)
    except ValueError:
        refusal = None  # a name: checked again after resolution at delivery
    if refusal:
        raise ValidationError({"url": f"Cannot send webhooks there: {refusal}"})


def resolve(url: str) -> tuple[str, int, str]:
    """(scheme, port, address to connect to) after DNS resolution: every address the name has must be public
    (outside DEBUG), so a name that points inside is refused at delivery even if it looked fine when saved."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    addresses = sorted({info[4][0] for info in infos})
    if not addresses:
        raise OSError(f"{parts.hostname} does not resolve.")
    if not _allows_private():
        for ip in addresses:
            refusal = _address_refusal(ip)
            if refusal:
                raise PermissionError(f"Refused: {parts.hostname} resolves to {refusal}")
    return parts.scheme, port, addresses[0]


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an already checked address, with the certificate checked for the host name."""

    def __init__(self, host, port, address, **kwargs):
        super().__init__(host, port, context=ssl.create_default_context(), **kwargs)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host, port, address, **kwargs):
        super().__init__(host, port, **kwargs)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


# ---- services --------------------------------------------------------------------------------------

def _clean(account: Account, *, name: str, url: str, events, agents) -> dict:
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError({"name": "Give the webhook a name."})
    check_url(url)
    events = sorted(set(events or []))
    unknown = [e for e in events if e not in WebhookEvent.values]
    if not events or unknown:
        raise ValidationError({"events": "Choose at least one event" + (f"; unknown: {', '.join(unknown)}" if unknown
                                                                        else ".")})
    agents = list(agents or [])
    if any(a.account_id != account.pk for a in agents):
        raise ValidationError({"agents": "Choose agents of this account."})
    return {"name": name[:100], "url": url, "events": events, "agents": agents}


@transaction.atomic
def webhook_create(*, account: Account, by, name: str, url: str, events, agents=(), is_active: bool = True,
                   request=None) -> tuple[Webhook, str]:
    """A new endpoint; returns it with its signing secret, shown once."""
    require(by, account, "manage_developer_tools")
    values = _clean(account, name=name, url=url, events=events, agents=agents)
    agents = values.pop("agents")
    secret = new_secret()
    webhook = Webhook.objects.create(account=account, secret=secret, is_active=is_active, created_by=by,
                                     url_set_by=by, secret_set_by=by, **values)
    webhook.agents.set(agents)
    audit(account=account, actor=by, request=request, action="webhook.created",
          summary=f"Webhook “{webhook.name}” created", url=url, events=values["events"])
    return webhook, secret


@transaction.atomic
def webhook_update(*, webhook: Webhook, by, name: str, url: str, events, agents=(), is_active: bool,
                   request=None) -> Webhook:
    """Change an endpoint. A new address makes ``by`` answer for it; turning the endpoint on makes ``by`` answer
    for its address and its secret (``unanswered``)."""
    require(by, webhook.account, "manage_developer_tools")
    values = _clean(webhook.account, name=name, url=url, events=events, agents=agents)
    agents = values.pop("agents")
    if values["url"] != webhook.url:
        webhook.url_set_by = by
    for key, value in values.items():
        setattr(webhook, key, value)
    if is_active and not webhook.is_active:
        webhook.consecutive_failures, webhook.disabled_reason = 0, ""
        webhook.url_set_by = webhook.secret_set_by = by
    webhook.is_active = is_active
    webhook.save()
    webhook.agents.set(agents)
    audit(account=webhook.account, actor=by, request=request, action="webhook.updated",
          summary=f"Webhook “{webhook.name}” updated", url=webhook.url, events=webhook.events, active=is_active)
    return webhook


@transaction.atomic
def webhook_regenerate_secret(*, webhook: Webhook, by, request=None) -> str:
    require(by, webhook.account, "manage_developer_tools")
    webhook.secret, webhook.secret_set_by = new_secret(), by
    webhook.save(update_fields=["secret", "secret_set_by"])
    audit(account=webhook.account, actor=by, request=request, action="webhook.secret_regenerated",
          summary=f"Signing secret of webhook “{webhook.name}” regenerated")
    return webhook.secret


@transaction.atomic
def webhook_delete(*, webhook: Webhook, by, request=None) -> None:
    require(by, webhook.account, "manage_developer_tools")
    name, account = webhook.name, webhook.account
    webhook.delete()
    audit(account=account, actor=by, request=request, action="webhook.deleted", summary=f"Webhook “{name}” deleted")


@transaction.atomic
def delivery_redeliver(*, delivery: WebhookDelivery, by, request=None) -> WebhookDelivery:
    """Send a delivery again now (same event id and body, a new timestamp and signature)."""
    require(by, delivery.account, "manage_developer_tools")
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=WebhookDelivery.Status.PENDING,
                                                          next_attempt_at=timezone.now())
    audit(account=delivery.account, actor=by, request=request, action="webhook.redelivered",
          summary=f"Webhook delivery of {delivery.event_type} sent again", event_id=str(delivery.event_id))
    _enqueue_after_commit([delivery.pk], manual=True)
    return delivery


# ---- events and deliveries -------------------------------------------------------------------------

def emit(account: Account, event_type: str, data: dict, *, agent=None) -> list[WebhookDelivery]:
    """Record the event for every active endpoint of ``account`` subscribed to it (and, when the event is about
    an agent, scoped to that agent or to all agents); deliveries are sent after commit, in the background."""
    endpoints = [w for w in Webhook.objects.filter(account=account, is_active=True)
                 .select_related("account", "url_set_by", "secret_set_by").prefetch_related("agents")
                 if event_type in w.events and not _turned_off_if_unanswered(w)]
    if agent is not None:
        endpoints = [w for w in endpoints if not w.agents.all() or any(a.pk == agent.pk for a in w.agents.all())]
    if not endpoints:
        return []
    created = timezone.now()
    deliveries = []
    for webhook in endpoints:
        event_id = uuid.uuid4()
        envelope = {"event_id": str(event_id), "event_type": event_type, "created": created.isoformat(),
                    "account_id": str(account.public_id), "account_name": account.name, "data": data}
        deliveries.append(WebhookDelivery(webhook=webhook, account=account, event_id=event_id,
                                          event_type=event_type, next_attempt_at=created,
                                          body=json.dumps(envelope, cls=DjangoJSONEncoder, separators=(",", ":"))))
    deliveries = WebhookDelivery.objects.bulk_create(deliveries)
    _enqueue_after_commit([d.pk for d in deliveries])
    return deliveries


def _enqueue_after_commit(ids: list[int], *, manual: bool = False) -> None:
    from .tasks import deliver_webhook

    def enqueue():
        for pk in ids:
            deliver_webhook.enqueue(pk, manual)

    transaction.on_commit(enqueue)


def deliver(delivery_id: int, manual: bool = False) -> str | None:
    """One attempt. Returns the delivery's status, or None when there is nothing to do. Schedules the next
    try with exponential backoff (about a day in all); repeated failed deliveries disable the endpoint."""
    delivery = (WebhookDelivery.objects.select_related("webhook__account", "webhook__url_set_by",
                                                       "webhook__secret_set_by", "account")
                .filter(pk=delivery_id).first())
    if delivery is None or (delivery.status == WebhookDelivery.Status.SUCCEEDED and not manual):
        return None
    webhook = delivery.webhook
    if not webhook.is_active and not manual:
        return None
    reason = _turned_off_if_unanswered(webhook)
    if reason:  # its people lost their access since the event (manual sends too)
        with transaction.atomic():
            WebhookAttempt.objects.create(delivery=delivery, number=delivery.attempts + 1,
                                          error=f"Not sent: {reason}"[:300])
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                attempts=delivery.attempts + 1, status=WebhookDelivery.Status.FAILED, next_attempt_at=None)
        return WebhookDelivery.Status.FAILED
    number = delivery.attempts + 1
    timestamp = int(time.time())
    body = delivery.body.encode()
    headers = {"Content-Type": "application/json", "User-Agent": "AgencyConsole-Webhooks/1",
               ID_HEADER: str(delivery.event_id), TIMESTAMP_HEADER: str(timestamp),
               SIGNATURE_HEADER: sign(webhook.secret, body, timestamp)}
    started = time.monotonic()
    code, excerpt, error = None, "", ""
    try:
        scheme, port, address = resolve(webhook.url)
        parts = urlsplit(webhook.url)
        conn_class = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
        conn = conn_class(parts.hostname, port, address, timeout=TIMEOUT_SECONDS)
        try:
            conn.request("POST", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), body=body,
                         headers=headers)
            response = conn.getresponse()
            code = response.status
            excerpt = response.read(EXCERPT).decode("utf-8", errors="replace")
        finally:
            conn.close()
    except (OSError, http.client.HTTPException, ValueError) as exc:  # refused, DNS, TLS, timeout, bad URL
        error = f"{type(exc).__name__}: {exc}"[:300]
    duration = int((time.monotonic() - started) * 1000)
    ok = code is not None and 200 <= code < 300
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        WebhookAttempt.objects.create(delivery=delivery, number=number, request_headers=headers,
                                      response_code=code, response_excerpt=excerpt, duration_ms=duration,
                                      error=error)
        delivery.attempts, delivery.last_response_code = number, code
        retry_in = None
        if ok:
            delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.SUCCEEDED, None
        elif not manual and number <= len(BACKOFF):
            retry_in = BACKOFF[number - 1]
            delivery.status = WebhookDelivery.Status.RETRYING
            delivery.next_attempt_at = timezone.now() + datetime.timedelta(seconds=retry_in)
        else:
            delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.FAILED, None
        delivery.save(update_fields=["attempts", "last_response_code", "status", "next_attempt_at"])
        _count_outcome(webhook, ok=ok, failed=delivery.status == WebhookDelivery.Status.FAILED)
        if retry_in is not None:
            from .tasks import deliver_webhook

            run_after = delivery.next_attempt_at
            transaction.on_commit(lambda: deliver_webhook.using(run_after=run_after).enqueue(delivery.pk, False))
    return delivery.status


def unanswered(webhook: Webhook) -> str | None:
    """Why nobody answers for the endpoint any more, or None: the people who set its address and its secret
    (None: the platform) must still manage developer tools in its account, as their access stands now (grants in
    force, caps, suspension: ``resolve_access``)."""
    seen = set()
    for person, what in ((webhook.url_set_by, "address"), (webhook.secret_set_by, "signing secret")):
        if person is None or person.pk in seen:
            continue
        seen.add(person.pk)
        access = resolve_access(person, webhook.account)
        if access is None or not access.has("manage_developer_tools"):
            return f"Turned off: {person.email} set its {what} and no longer manages developer tools here."
    return None


def _turned_off_if_unanswered(webhook: Webhook) -> str | None:
    """Turns the endpoint off when nobody answers for it (``unanswered``), with the reason, an audit row and a
    mail to the account's Owners and Admins; the reason when it did (or it was off already for that reason)."""
    reason = unanswered(webhook)
    if reason is None:
        return None
    with transaction.atomic():
        webhook = Webhook.objects.select_for_update().select_related("account").get(pk=webhook.pk)
        if webhook.is_active:
            webhook.is_active, webhook.disabled_reason = False, reason[:200]
            webhook.save(update_fields=["is_active", "disabled_reason"])
            audit(account=webhook.account, actor=None, action="webhook.disabled",
                  summary=f"Webhook “{webhook.name}” turned off: the person who set it up lost access")
            _mail_admins(webhook, f"Webhook “{webhook.name}” was turned off",
                         f"{reason}\n\nIt sent to {webhook.url} in {webhook.account.name}. Nothing more is sent "
                         "until someone who manages developer tools turns it on again under Developers → Webhooks, "
                         "and so answers for its address and secret: check the address first, and regenerate the "
                         "secret if they knew it.")
    return reason


def _mail_admins(webhook: Webhook, subject: str, body: str) -> None:
    """After commit, to the account's own (not the agency's) Owners and Admins."""
    emails = list(Membership.objects.filter(account=webhook.account, role__in=[RoleId.OWNER, RoleId.ADMIN],
                                            is_agency=False).values_list("user__email", flat=True))
    if emails:
        transaction.on_commit(lambda: send_mail(subject, body, None, emails))


def _count_outcome(webhook: Webhook, *, ok: bool, failed: bool) -> None:
    webhook = Webhook.objects.select_for_update().get(pk=webhook.pk)
    if ok:
        if webhook.consecutive_failures:
            Webhook.objects.filter(pk=webhook.pk).update(consecutive_failures=0)
        return
    if not failed:
        return
    webhook.consecutive_failures += 1
    fields = ["consecutive_failures"]
    if webhook.consecutive_failures >= DISABLE_AFTER_FAILED_DELIVERIES and webhook.is_active:
        webhook.is_active = False
        webhook.disabled_reason = f"Disabled after {webhook.consecutive_failures} failed deliveries in a row."
        fields += ["is_active", "disabled_reason"]
        audit(account=webhook.account, actor=None, action="webhook.disabled",
              summary=f"Webhook “{webhook.name}” disabled after repeated failures")
        _mail_admins(webhook, f"Webhook “{webhook.name}” was disabled",
                     f"Deliveries to {webhook.url} failed {webhook.consecutive_failures} times in a row, so the "
                     "webhook was disabled. Fix the receiver, then turn the webhook on again under Developers → "
                     "Webhooks.")
    webhook.save(update_fields=fields)
