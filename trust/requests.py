"""Data requests (Trust Center → Data requests): asking, running in the background, downloading, expiring.

Services take ``by`` (the person acting) and check permissions themselves; views only call them.

- ``my_data_request``: any person who reaches the account asks for their own data.
- ``contact_preview`` / ``contact_export_request`` / ``contact_erasure_request``: ``manage_trust_center`` in the
  account; with ``include_subaccounts`` the subaccounts below where the requester holds it too
  (``accounts.access.accounts_holding``), re-checked when the request runs. An erasure names the contacts it
  will remove on its confirmation and removes exactly those (still matching, still in scope).
- ``run``: the background task's body; idempotent (only a queued request runs), records a failure with its
  reason, emails the requester after commit either way.
- ``result_for``: the file of a finished request, for the requester and the account's Owners and Admins (a
  person's own data: the requester only), within ``RESULT_LIFETIME``.
"""

import logging
import re
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from accounts.access import accounts_holding, require, resolve_access
from accounts.audit import audit
from accounts.links import link_url
from accounts.models import Account, subtree_q
from members.emails import clean_email
from members.roles import RoleId
from workspace.models import Contact, Conversation, phone_validator

from . import exports
from .erasure import erase_contact
from .models import RESULT_LIFETIME, DataRequest, DataRequestResult

logger = logging.getLogger(__name__)

MANAGE = "manage_trust_center"
VIEW = "view_trust_center"
PREVIEW_LIMIT = 200  # contacts named on an erasure's confirmation; more than that: narrow the scope
_PHONE_PUNCTUATION = re.compile(r"[\s\-().\u00a0/]")


class RequestFailed(Exception):
    """A request that cannot be carried out; the message is the reason shown in its history."""


# ---- subjects -------------------------------------------------------------------------------------------

def normalise_subject(value: str) -> str:
    """A phone number in the form Contact's validator expects (``+`` and 7 to 15 digits: spaces, dashes, dots,
    slashes and brackets removed, a leading ``00`` read as ``+``), or an email address (lower-cased). Anything
    else is a ValidationError saying what to type."""
    value = (value or "").strip()
    if not value:
        raise ValidationError({"subject": "Enter the person's phone number or email address."})
    if "@" in value:
        try:
            return clean_email(value).lower()
        except ValidationError as exc:
            raise ValidationError({"subject": exc.messages}) from exc
    phone = _PHONE_PUNCTUATION.sub("", value)
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    try:
        phone_validator(phone)
    except ValidationError as exc:
        raise ValidationError({"subject": "Enter an email address, or a phone number in the international "
                                          "format, e.g. +14155550123."}) from exc
    return phone


def mask(subject: str) -> str:
    """What the lists show of a subject: enough to recognise it, not to read it back."""
    if "@" in subject:
        local, _, domain = subject.partition("@")
        return f"{local[:1]}•••@{domain}"
    return f"{subject[:4]}•••{subject[-2:]}"


# ---- scope and matches ----------------------------------------------------------------------------------

def scope_accounts(*, account: Account, by, include_subaccounts: bool) -> list[Account]:
    """The accounts a contact request covers: ``account`` (where ``by`` must hold manage_trust_center) and,
    when asked, the subaccounts below where they hold it too. Never a parent, sibling or other tenant."""
    if not include_subaccounts:
        require(by, account, MANAGE)
        return [account]
    accounts = accounts_holding(by, account, MANAGE)
    if not accounts:
        require(by, account, MANAGE)  # raises, naming what is missing
    return accounts


def matching_contacts(accounts: list[Account], subject: str) -> list[Contact]:
    """Contacts in ``accounts`` with this phone number or email (case-insensitive), by account then name."""
    root = accounts[0]
    allowed = {a.pk: a for a in accounts}
    qs = Contact.objects.filter(account=root) if len(accounts) == 1 else Contact.objects.filter(
        subtree_q(root.path, "account__path"))
    qs = qs.filter(email__iexact=subject) if "@" in subject else qs.filter(phone=subject)
    found = [c for c in qs.order_by("account__path", "name", "pk") if c.account_id in allowed]
    for c in found:
        c.account = allowed[c.account_id]  # no query per row
    return found


@dataclass(frozen=True)
class Match:
    contact: Contact
    conversations: int


@dataclass(frozen=True)
class Preview:
    """What a contact request would cover now: the accounts in scope and the contacts that match."""

    subject: str
    include_subaccounts: bool
    accounts: list[Account]
    matches: list[Match]

    @property
    def contact_ids(self) -> list[str]:
        return [str(m.contact.public_id) for m in self.matches]

    @property
    def conversations(self) -> int:
        return sum(m.conversations for m in self.matches)


def contact_preview(*, account: Account, by, subject: str, include_subaccounts: bool) -> Preview:
    """The confirmation's content: who ``subject`` is in the scope, and how many conversations each has."""
    subject = normalise_subject(subject)
    accounts = scope_accounts(account=account, by=by, include_subaccounts=include_subaccounts)
    contacts = matching_contacts(accounts, subject)
    if len(contacts) > PREVIEW_LIMIT:
        raise ValidationError({"subject": f"More than {PREVIEW_LIMIT} contacts match: run it for one account "
                                          "at a time."})
    counts = {}
    for contact_id in Conversation.objects.filter(contact__in=[c.pk for c in contacts]).values_list("contact_id",
                                                                                                      flat=True):
        counts[contact_id] = counts.get(contact_id, 0) + 1
    return Preview(subject, include_subaccounts, accounts, [Match(c, counts.get(c.pk, 0)) for c in contacts])


# ---- asking -----------------------------------------------------------------------------------------------

def _refuse_duplicate(account: Account, by, kind: str, subject: str = "") -> None:
    if DataRequest.objects.in_account(account).in_progress().filter(kind=kind, requested_by=by,
                                                                      subject=subject).exists():
        raise ValidationError("The same request is already in progress: it is listed under In progress.")


def _enqueue_after_commit(data_request: DataRequest) -> None:
    from .tasks import run_data_request

    pk = data_request.pk
    transaction.on_commit(lambda: run_data_request.enqueue(pk))


@transaction.atomic
def my_data_request(*, account: Account, by, request=None) -> DataRequest:
    """Ask for everything the platform holds about ``by``. Any person who reaches the account may."""
    if by is None or resolve_access(by, account) is None:
        raise PermissionDenied("You do not have access to this account.")
    _refuse_duplicate(account, by, DataRequest.Kind.MY_DATA)
    data_request = DataRequest.objects.create(account=account, kind=DataRequest.Kind.MY_DATA, requested_by=by,
                                              requester_email=by.email)
    _enqueue_after_commit(data_request)
    return data_request


def _contact_request(*, kind, account, by, subject, include_subaccounts, contact_ids=(), request=None):
    if by is None:
        raise PermissionDenied("A contact request is made by a person.")
    subject = normalise_subject(subject)
    scope_accounts(account=account, by=by, include_subaccounts=include_subaccounts)
    _refuse_duplicate(account, by, kind, subject)
    data_request = DataRequest.objects.create(
        account=account, kind=kind, requested_by=by, requester_email=by.email, subject=subject,
        subject_masked=mask(subject), include_subaccounts=include_subaccounts, contact_ids=list(contact_ids))
    verb = "export" if kind == DataRequest.Kind.CONTACT_EXPORT else "erasure"
    audit(account=account, actor=by, request=request, action=f"data_request.{verb}_requested",
          summary=f"Contact data {verb} requested for {data_request.subject_masked} "
                  f"({data_request.scope_label.lower()})",
          id=str(data_request.public_id), contacts=len(contact_ids) if contact_ids else None)
    _enqueue_after_commit(data_request)
    return data_request


@transaction.atomic
def contact_export_request(*, account: Account, by, subject: str, include_subaccounts: bool = False,
                           request=None) -> DataRequest:
    """Ask for the data held about one contact (phone number or email) across the scope."""
    return _contact_request(kind=DataRequest.Kind.CONTACT_EXPORT, account=account, by=by, subject=subject,
                            include_subaccounts=include_subaccounts, request=request)


@transaction.atomic
def contact_erasure_request(*, account: Account, by, subject: str, include_subaccounts: bool = False,
                            contact_ids: list[str], request=None) -> DataRequest:
    """Erase the contacts confirmed on the preview (``contact_ids``). Refused when the matches changed since
    the confirmation was shown, so nothing is removed that the person did not see named."""
    preview = contact_preview(account=account, by=by, subject=subject, include_subaccounts=include_subaccounts)
    if not preview.matches:
        raise ValidationError({"subject": "No contact in the scope has this phone number or email."})
    if sorted(map(str, contact_ids or [])) != sorted(preview.contact_ids):
        raise ValidationError("The contacts matching this request changed since the confirmation was shown: "
                              "check them again.")
    return _contact_request(kind=DataRequest.Kind.CONTACT_ERASURE, account=account, by=by, subject=subject,
                            include_subaccounts=include_subaccounts, contact_ids=preview.contact_ids,
                            request=request)


# ---- running ----------------------------------------------------------------------------------------------

def run(request_id: int) -> str | None:
    """Carry out a queued request (the background task). Returns its final status, or None when there was
    nothing to do (unknown, or already taken by another worker). Results and every change land in one
    transaction; a failure rolls them back and is recorded with its reason."""
    purge_expired()
    with transaction.atomic():
        data_request = (DataRequest.objects.select_for_update(of=("self",)).select_related("account", "requested_by")
                        .filter(pk=request_id, status=DataRequest.Status.PENDING).first())
        if data_request is None:
            return None
        data_request.status, data_request.started_at = DataRequest.Status.RUNNING, timezone.now()
        data_request.save(update_fields=["status", "started_at"])
    try:
        with transaction.atomic():
            _perform(data_request)
    except (RequestFailed, PermissionDenied, ValidationError) as exc:
        _fail(data_request, _reason(exc))
    except Exception:
        _fail(data_request, "An unexpected error stopped this request. The platform team has been told; "
                            "try again later.")
        raise  # the worker logs it with its traceback
    return data_request.status


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc) or "Refused."


def _fail(data_request: DataRequest, reason: str) -> None:
    with transaction.atomic():
        data_request.status, data_request.finished_at = DataRequest.Status.FAILED, timezone.now()
        data_request.failure_reason = reason[:300]
        if data_request.kind == DataRequest.Kind.CONTACT_ERASURE:
            data_request.subject = ""  # nothing erased, but no reason to keep the address either
        data_request.save(update_fields=["status", "finished_at", "failure_reason", "subject"])
        _notify(data_request)


def _perform(data_request: DataRequest) -> None:
    by = data_request.requested_by
    if by is None or not by.is_active:
        raise RequestFailed("The person who asked no longer has a login.")
    account = data_request.account
    about = {"request_id": str(data_request.public_id), "kind": data_request.get_kind_display(),
             "account": account.name, "account_id": str(account.public_id), "requested_by": by.email,
             "requested_at": data_request.created_at, "generated_at": timezone.now()}
    if data_request.kind == DataRequest.Kind.MY_DATA:
        if resolve_access(by, account) is None:
            raise RequestFailed("You no longer have access to this account.")
        sections = exports.my_data(by)
        outcome = {"sections": {s.key: len(s.rows) for s in sections}}
    else:
        accounts = _scope_now(data_request, by)
        about.update(subject=data_request.subject, scope=data_request.scope_label,
                     accounts=", ".join(a.name for a in accounts))
        contacts = matching_contacts(accounts, data_request.subject)
        if data_request.kind == DataRequest.Kind.CONTACT_EXPORT:
            sections = exports.contact_data(contacts)
            outcome = {"accounts": len(accounts), "contacts": len(contacts),
                       "conversations": len(sections[1].rows)}
        else:
            sections, outcome = _erase(data_request, contacts, by)
    files = {DataRequestResult.Format.JSON: exports.render_json(about, sections),
             DataRequestResult.Format.XLSX: exports.render_xlsx(about, sections)}
    DataRequestResult.objects.bulk_create([DataRequestResult(request=data_request, format=fmt, content=content,
                                                             size=len(content)) for fmt, content in files.items()])
    now = timezone.now()
    data_request.status, data_request.finished_at = DataRequest.Status.COMPLETED, now
    data_request.expires_at, data_request.outcome = now + RESULT_LIFETIME, outcome
    if data_request.kind == DataRequest.Kind.CONTACT_ERASURE:
        data_request.subject = ""
    data_request.save(update_fields=["status", "finished_at", "expires_at", "outcome", "subject"])
    _notify(data_request)


def _scope_now(data_request: DataRequest, by) -> list[Account]:
    """The scope as the requester's access stands now (they may have lost some of it since asking)."""
    try:
        return scope_accounts(account=data_request.account, by=by,
                              include_subaccounts=data_request.include_subaccounts)
    except PermissionDenied as exc:
        raise RequestFailed(f"{by.email} may no longer run contact requests in {data_request.account.name}: "
                            f"{exc}") from exc


def _erase(data_request: DataRequest, contacts: list[Contact], by):
    """Erase the confirmed contacts that still match and are still in scope; the result lists what was done
    (names withheld: the person is being erased). One audit row in every account that had data removed."""
    confirmed = set(data_request.contact_ids)
    chosen = [c for c in contacts if str(c.public_id) in confirmed]
    locked = {c.pk: c for c in Contact.objects.select_for_update().filter(pk__in=[c.pk for c in chosen])}
    rows, per_account, totals = [], {}, {"contacts_anonymised": 0, "contacts_deleted": 0,
                                         "conversations_cleared": 0}
    for contact in chosen:
        if contact.pk not in locked:
            continue  # deleted meanwhile
        contact_id = str(contact.public_id)
        counts = erase_contact(locked[contact.pk])
        for k, v in counts.items():
            totals[k] += v
        per_account.setdefault(contact.account_id, [contact.account, 0, 0])
        per_account[contact.account_id][1] += 1
        per_account[contact.account_id][2] += counts["conversations_cleared"]
        rows.append([contact.account.name, str(contact.account.public_id), contact_id,
                     "anonymised" if counts["contacts_anonymised"] else "deleted", counts["conversations_cleared"]])
    skipped = len(confirmed) - len(rows)
    for account, n_contacts, n_conversations in per_account.values():
        audit(account=account, actor=by, action="data_request.erased",
              summary=f"Contact data erased for {data_request.subject_masked}: {n_contacts} contact(s), "
                      f"{n_conversations} conversation(s) cleared",
              id=str(data_request.public_id), contacts=n_contacts, conversations=n_conversations)
    if not per_account:
        audit(account=data_request.account, actor=by, action="data_request.erased",
              summary=f"Contact data erasure for {data_request.subject_masked}: nothing left to erase",
              id=str(data_request.public_id), contacts=0, conversations=0)
    section = exports.Section("erased", "Erased", ("account", "account_id", "contact_id", "contact", "conversations"),
                              rows)
    return [section], {**totals, "accounts": len(per_account), "skipped": skipped}


def _notify(data_request: DataRequest) -> None:
    """Email the requester once the request has finished (after commit: nothing for a rollback)."""
    to = data_request.requester_email
    if not to:
        return
    name = "my-data" if data_request.kind == DataRequest.Kind.MY_DATA else "requests"
    link = link_url(reverse(f"trust:{name}", kwargs={"account_id": data_request.account.public_id}))
    what = data_request.get_kind_display().lower()
    if data_request.status == DataRequest.Status.COMPLETED:
        subject = f"Your {what} request is ready"
        body = (f"Your {what} request in {data_request.account.name} has finished. The result can be downloaded "
                f"until {data_request.expires_at:%Y-%m-%d %H:%M} UTC from the Trust Center:\n{link}\n")
    else:
        subject = f"Your {what} request failed"
        body = (f"Your {what} request in {data_request.account.name} could not be carried out: "
                f"{data_request.failure_reason}\n\nData requests: {link}\n")
    transaction.on_commit(lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to]))


# ---- reading results ----------------------------------------------------------------------------------------

def may_download(access, reader, data_request: DataRequest) -> bool:
    """Who reads a result: a person's own data only that person; a contact request's the requester and the
    account's Owners and Admins (from above too), while they may view the Trust Center. Never platform support.
    No query (``access`` is the reader's, already resolved)."""
    if access is None or access.is_support or access.account.pk != data_request.account_id:
        return False
    mine = data_request.requested_by_id is not None and data_request.requested_by_id == reader.pk
    if data_request.kind == DataRequest.Kind.MY_DATA:
        return mine
    return access.has(VIEW) and (mine or (access.role.id in (RoleId.OWNER, RoleId.ADMIN) and not access.is_agency))


def result_for(*, data_request: DataRequest, by, fmt: str) -> DataRequestResult:
    """The file of a finished request in ``fmt`` for ``by``: PermissionDenied for a reader who may not have it,
    Http404 when there is none (not finished, failed, expired, or an unknown format)."""
    access = resolve_access(by, data_request.account) if by is not None else None
    if not may_download(access, by, data_request):
        raise PermissionDenied("Only the person who asked and the account's Owners and Admins can download this"
                               + (" (a person's own data: only they can)." if data_request.kind ==
                                  DataRequest.Kind.MY_DATA else "."))
    if fmt not in DataRequestResult.Format.values or not data_request.is_downloadable():
        raise Http404("This result is not available: it expired or the request did not finish.")
    result = DataRequestResult.objects.filter(request=data_request, format=fmt).first()
    if result is None:
        raise Http404("This result is not available.")
    return result


def purge_expired(now=None) -> int:
    """Delete the files of requests past their expiry (the requests stay in the history). Returns how many."""
    deleted, _ = DataRequestResult.objects.filter(request__expires_at__lte=now or timezone.now()).delete()
    return deleted
