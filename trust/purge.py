"""The retention purge: clears (or anonymises) customer data whose retention period has passed.

What expired is a query per data type (``expired``), shared by the purge, its dry run and the page's preview of
a shortened period, so the three always agree. The purge never deletes a conversation or a contact (usage
records point at conversations, and invoices are built from usage): it clears the expired fields of the row,
in batches, so it is idempotent by construction (a purged row no longer matches) and resumable (``PurgeRun``
keeps the cursor and the counts after each batch, in the batch's transaction).
"""

import ipaddress
import os
import re
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from accounts.audit import audit
from accounts.models import Account, subtree_q
from workspace.models import Contact, Conversation

from .models import ANONYMISABLE, DataType, ExpiryAction, Period, PurgeRun, RetentionRule, period_cutoff
from .policy import EffectiveRule, resolve

# ---- what expired -------------------------------------------------------------------------------------------

_HOLDS = {
    DataType.TRANSCRIPTS: ~Q(transcript=[]) | ~Q(summary=""),
    DataType.RECORDINGS: ~Q(recording_url=""),
    DataType.INSIGHTS: ~Q(insights={}),
    DataType.IP_LOCATION: Q(caller_ip__isnull=False) | ~Q(caller_location=""),
}
_ANONYMISED_FLAG = {DataType.TRANSCRIPTS: "transcript_anonymised", DataType.INSIGHTS: "insights_anonymised",
                    DataType.IP_LOCATION: "caller_ip_anonymised"}


def anonymises(data_type: str, period: str, action: str) -> bool:
    return action == ExpiryAction.ANONYMISE and data_type in ANONYMISABLE and period != Period.DO_NOT_STORE


def expired(data_type: str, period: str, action: str, accounts, now):
    """The rows of ``accounts`` (a queryset or list of accounts) holding ``data_type`` past ``period`` at ``now``
    that the purge would change; None when nothing expires (keep forever)."""
    cutoff = period_cutoff(period, now)
    if cutoff is None:
        return None
    if data_type == DataType.PHONE_NUMBERS:  # counted from the contact's last conversation (or its creation)
        recent = Conversation.objects.filter(contact=OuterRef("pk"), started_at__gte=cutoff)
        return (Contact.objects.filter(account__in=accounts, created_at__lt=cutoff).exclude(phone="")
                .exclude(Exists(recent)))
    qs = Conversation.objects.filter(_HOLDS[data_type], account__in=accounts, started_at__lt=cutoff)
    if anonymises(data_type, period, action):
        qs = qs.filter(**{_ANONYMISED_FLAG[data_type]: False})
    return qs


# ---- anonymising ------------------------------------------------------------------------------------------

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_NUMBER = re.compile(r"\+?\d[\d\s().-]{3,}\d")


def anonymise_text(text: str, names: list[str]) -> str:
    """Emails, phone-like numbers (5 digits or more) and the contact's name (and its parts) replaced."""
    text = _EMAIL.sub("[email]", text)
    text = _NUMBER.sub("[number]", text)
    for name in sorted({n for full in names for n in [full, *full.split()] if len(n) >= 3}, key=len, reverse=True):
        text = re.sub(re.escape(name), "[name]", text, flags=re.IGNORECASE)
    return text


def anonymise_transcript(messages, names: list[str]) -> list:
    out = []
    for m in messages if isinstance(messages, list) else []:
        if isinstance(m, dict):
            out.append({**m, "text": anonymise_text(str(m.get("text", "")), names)})
    return out


def anonymise_insights(insights) -> dict:
    """Keeps ratings and outcomes (numbers, yes/no), drops free text and collected details."""
    if not isinstance(insights, dict):
        return {}
    return {k: v for k, v in insights.items() if isinstance(v, bool | int | float)}


def anonymise_ip(ip: str | None) -> str | None:
    """The network, not the host: IPv4 to /24, IPv6 to /48."""
    if not ip:
        return None
    addr = ipaddress.ip_address(ip)
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


def anonymise_location(location: str) -> str:
    """The country only ("Berlin, DE" → "DE")."""
    return location.rsplit(",", 1)[-1].strip() if location else ""


# ---- applying one batch -----------------------------------------------------------------------------------

def _apply(data_type: str, anonymise: bool, pks: list[int]) -> None:
    conversations = Conversation.objects.filter(pk__in=pks)
    if data_type == DataType.PHONE_NUMBERS:
        Contact.objects.filter(pk__in=pks).update(phone="")
    elif data_type == DataType.RECORDINGS:
        conversations.update(recording_url="")
    elif not anonymise:
        conversations.update(**{
            DataType.TRANSCRIPTS: {"transcript": [], "summary": "", "transcript_anonymised": False},
            DataType.INSIGHTS: {"insights": {}, "insights_anonymised": False},
            DataType.IP_LOCATION: {"caller_ip": None, "caller_location": "", "caller_ip_anonymised": False},
        }[data_type])
    elif data_type == DataType.TRANSCRIPTS:
        rows = list(conversations.select_related("contact").only("transcript", "summary", "contact__name"))
        for c in rows:
            names = [c.contact.name]
            c.transcript, c.summary = anonymise_transcript(c.transcript, names), anonymise_text(c.summary, names)
            c.transcript_anonymised = True
        Conversation.objects.bulk_update(rows, ["transcript", "summary", "transcript_anonymised"])
    elif data_type == DataType.INSIGHTS:
        rows = list(conversations.only("insights"))
        for c in rows:
            c.insights, c.insights_anonymised = anonymise_insights(c.insights), True
        Conversation.objects.bulk_update(rows, ["insights", "insights_anonymised"])
    else:
        rows = list(conversations.only("caller_ip", "caller_location"))
        for c in rows:
            c.caller_ip, c.caller_location = anonymise_ip(c.caller_ip), anonymise_location(c.caller_location)
            c.caller_ip_anonymised = True
        Conversation.objects.bulk_update(rows, ["caller_ip", "caller_location", "caller_ip_anonymised"])


# ---- the policies of many accounts ------------------------------------------------------------------------

class LineageRules:
    """Every retention rule of the platform (or of a scope's lineage), loaded once; an account's effective
    policy is then resolved from its path without a query. Rules are few (at most one per account and type)."""

    def __init__(self, scope: Account | None = None):
        rules = RetentionRule.objects.select_related("account")
        if scope is not None:
            rules = rules.filter(subtree_q(scope.path, "account__path") | Q(account__path__in=scope.ancestor_paths))
        self.by_path: dict[str, list[RetentionRule]] = {}
        for r in rules:
            self.by_path.setdefault(r.account.path, []).append(r)

    def replacing(self, account: Account, choices: dict) -> "LineageRules":
        """A copy where ``account``'s own rules for the types in ``choices`` are replaced (a choice of None
        removes it): what the policy would be after a change, for its preview. Nothing is saved."""
        copy = LineageRules.__new__(LineageRules)
        copy.by_path = dict(self.by_path)
        kept = [r for r in self.by_path.get(account.path, ()) if r.data_type not in choices]
        added = [RetentionRule(account=account, data_type=t, period=c.period, action=c.action,
                               is_locked=c.is_locked) for t, c in choices.items() if c is not None]
        copy.by_path[account.path] = kept + added
        return copy

    def effective(self, account: Account) -> dict[str, EffectiveRule]:
        found = [r for p in account.lineage_paths for r in self.by_path.get(p, ())]
        lineage = {r.account.pk: r.account for r in found}
        lineage[account.pk] = account
        by_type: dict[str, list] = {}
        for r in found:
            by_type.setdefault(r.data_type, []).append(r)
        return resolve(by_type, sorted(lineage.values(), key=lambda a: a.depth))


def finite(rules: dict[str, EffectiveRule]) -> list[EffectiveRule]:
    return [r for r in rules.values() if r.period != Period.FOREVER]


# ---- the run ------------------------------------------------------------------------------------------------

class PurgeBusy(Exception):
    """Another worker holds the unfinished run, or an unfinished run of another scope must finish first."""


@dataclass
class AccountResult:
    account: Account
    counts: dict  # data type -> rows changed


def worker_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def run_claim(*, account: Account | None = None, worker: str) -> PurgeRun:
    """The unfinished run (resumed) or a new one, claimed by ``worker``. Refused (PurgeBusy) while another
    worker's claim is fresh, or when the unfinished run covers another scope."""
    now = timezone.now()
    with transaction.atomic():
        run = PurgeRun.objects.select_for_update().filter(status=PurgeRun.Status.RUNNING).first()
        if run is None:
            try:
                with transaction.atomic():
                    run = PurgeRun.objects.create(account=account, now=now)
            except IntegrityError as exc:
                raise PurgeBusy("Another purge run started at the same moment.") from exc
        elif run.account_id != (account.pk if account else None):
            scope = f"--account {run.account.public_id}" if run.account_id else "all accounts"
            raise PurgeBusy(f"Purge run #{run.pk} ({scope}) is unfinished: finish it first "
                            f"(purge_retention{' ' + scope if run.account_id else ''}).")
        fresh = run.heartbeat_at and (now - run.heartbeat_at).total_seconds() < PurgeRun.CLAIM_SECONDS
        if run.claimed_by and run.claimed_by != worker and fresh:
            raise PurgeBusy(f"Purge run #{run.pk} is being worked on ({run.claimed_by}).")
        run.claimed_by, run.heartbeat_at = worker, now
        run.save(update_fields=["claimed_by", "heartbeat_at"])
    return run


def _progress(run: PurgeRun, worker: str, **fields) -> None:
    """Save the run's progress if ``worker`` still holds it; otherwise undo the batch (raise)."""
    updated = PurgeRun.objects.filter(pk=run.pk, claimed_by=worker).update(heartbeat_at=timezone.now(), **fields)
    if not updated:
        raise PurgeBusy(f"Purge run #{run.pk} was taken over by another worker; stopping.")


def _summary(counts: dict, rules: dict[str, EffectiveRule]) -> str:
    parts = []
    for data_type in DataType.values:
        n = counts.get(data_type)
        if n:
            verb = "anonymised" if rules[data_type].anonymises else "deleted"
            parts.append(f"{DataType(data_type).label.lower()} {verb}: {n}")
    return "; ".join(parts) or "nothing had expired"


def scope_accounts(scope: Account | None):
    qs = Account.objects.all() if scope is None else Account.objects.filter(subtree_q(scope.path))
    return qs.only("pk", "path", "depth", "name", "public_id", "external_id")


def run_purge(run: PurgeRun, *, worker: str, batch_size: int | None = None,
              on_progress: Callable[[int, int], None] | None = None,
              on_account: Callable[[AccountResult], None] | None = None) -> PurgeRun:
    """Work ``run`` (claimed by ``worker``) to the end. Each batch of at most ``batch_size`` rows is one
    transaction with the run's progress; each account ends with its audit row (counts per data type) in the
    transaction that moves the cursor past it. Accounts whose policy keeps everything forever are skipped."""
    batch_size = batch_size or settings.RETENTION_PURGE_BATCH_SIZE
    rules = LineageRules(run.account)
    accounts = scope_accounts(run.account)
    total = accounts.count()
    done = accounts.filter(path__lte=run.cursor_path).count() if run.cursor_path else 0
    totals = dict(run.totals)
    while True:
        chunk = list(accounts.filter(path__gt=run.cursor_path).order_by("path")[:500])
        if not chunk:
            break
        for account in chunk:
            effective = rules.effective(account)
            todo = finite(effective)
            counts = dict(run.current_counts) if run.current_account_id == account.pk else {}
            for rule in todo:
                anonymise = anonymises(rule.data_type, rule.period, rule.action)
                counts.setdefault(rule.data_type, 0)
                after = 0  # keyset: each batch starts past the last one, never re-reading the rows it cleared
                while True:
                    qs = expired(rule.data_type, rule.period, rule.action, [account], run.now)
                    pks = list(qs.filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)[:batch_size])
                    if not pks:
                        break
                    after = pks[-1]
                    with transaction.atomic():
                        _apply(rule.data_type, anonymise, pks)
                        counts[rule.data_type] += len(pks)
                        _progress(run, worker, current_account=account, current_counts=counts)
            with transaction.atomic():
                if todo:
                    audit(account=account, actor=None, action="retention.purged",
                          summary=f"Retention purge: {_summary(counts, effective)}", run=run.pk, counts=counts)
                    for data_type, n in counts.items():
                        totals[data_type] = totals.get(data_type, 0) + n
                run.cursor_path, run.current_account, run.current_counts = account.path, None, {}
                run.accounts_done += 1 if todo else 0
                run.totals = totals
                _progress(run, worker, cursor_path=account.path, current_account=None, current_counts={},
                          accounts_done=run.accounts_done, totals=totals)
            done += 1
            if todo and on_account:
                on_account(AccountResult(account, counts))
            if on_progress:
                on_progress(done, total)
    with transaction.atomic():
        PurgeRun.objects.filter(pk=run.pk, claimed_by=worker).update(
            status=PurgeRun.Status.COMPLETED, finished_at=timezone.now(), claimed_by="")
    run.refresh_from_db()
    return run


def run_release(run: PurgeRun, worker: str) -> None:
    """Let go of an unfinished run (so a rerun resumes at once instead of waiting for the claim to go stale)."""
    PurgeRun.objects.filter(pk=run.pk, claimed_by=worker).update(claimed_by="")


def purge(*, account: Account | None = None, batch_size: int | None = None, on_progress=None,
          on_account=None) -> PurgeRun:
    """Start or resume the purge (all accounts, or ``account`` and its subaccounts) and run it to the end."""
    worker = worker_id()
    run = run_claim(account=account, worker=worker)
    try:
        return run_purge(run, worker=worker, batch_size=batch_size, on_progress=on_progress, on_account=on_account)
    finally:
        run_release(run, worker)


def dry_run(*, account: Account | None = None, on_progress=None, on_account=None) -> dict:
    """What a purge would change now, per account and data type; writes nothing. Returns the totals."""
    now = timezone.now()
    rules = LineageRules(account)
    accounts = scope_accounts(account)
    total, done, totals = accounts.count(), 0, {}
    for acc in accounts.order_by("path").iterator(chunk_size=500):
        todo = finite(rules.effective(acc))
        counts = {r.data_type: expired(r.data_type, r.period, r.action, [acc], now).count() for r in todo}
        for data_type, n in counts.items():
            totals[data_type] = totals.get(data_type, 0) + n
        done += 1
        if todo and on_account:
            on_account(AccountResult(acc, counts))
        if on_progress:
            on_progress(done, total)
    return totals
