"""Writes about agents, contacts and conversations: atomic, audited, limits checked here."""

import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.access import require
from accounts.audit import audit
from accounts.limits import check_agent_limit, concurrency_block_reason, minutes_block_reason
from accounts.models import Account
from billing.models import period_start
from billing.services import usage_period, usage_record_conversation
from billing.transfers import apply_due_for
from developers import webhooks
from developers.models import WebhookEvent
from trust.policy import blanked_fields

from .models import Agent, Contact, Conversation


def _lock(account: Account) -> Account:
    """Serialize limit checks per account (two requests cannot both take the last slot)."""
    return Account.objects.select_for_update().get(pk=account.pk)


def _lock_lineage(account: Account) -> list[Account]:
    """Lock the account and every ancestor, root first (one order for everyone, so no deadlock): every minutes
    pool on the path is shared with other subtrees, so two siblings cannot both take a pool's last minutes.
    A billing transfer may move the subtree while we wait for the lock: then the rows locked by the old paths
    are not the lineage any more, and we lock again by the new ones (the payer is whoever pays now)."""
    for _ in range(3):
        account.refresh_from_db(fields=["path", "depth", "parent"])
        lineage = list(Account.objects.select_for_update().filter(path__in=account.lineage_paths).order_by("path"))
        if len(lineage) == account.depth and lineage[-1].pk == account.pk and \
                lineage[-1].path == account.path:
            return lineage
    raise ValidationError("The account moved while this was being recorded; try again.")


@transaction.atomic
def agent_create(*, account: Account, by, request=None, **fields) -> Agent:
    require(by, account, "manage_agents")
    locked = _lock(account)
    check_agent_limit(locked, Agent.objects.in_account(account).count())
    agent = Agent(account=account, **fields)
    agent.full_clean()
    agent.save()
    audit(account=account, actor=by, request=request, action="agent.created", summary=f"Agent “{agent.name}” created",
          agent=str(agent.public_id))
    return agent


def _update(obj, *, by, request, kind: str, **fields):
    require(by, obj.account, f"manage_{kind}s")
    changed = {k: v for k, v in fields.items() if getattr(obj, k) != v}
    for key, value in changed.items():
        setattr(obj, key, value)
    if changed:
        obj.full_clean()
        obj.save()
        audit(account=obj.account, actor=by, request=request, action=f"{kind}.updated",
              summary=f"{kind.capitalize()} “{obj}” updated", fields=sorted(changed), id=str(obj.public_id))
    return obj


@transaction.atomic
def agent_update(*, agent: Agent, by, request=None, **fields) -> Agent:
    require(by, agent.account, "manage_agents")
    _lock(agent.account)  # the account before the agent's row, as recording a call takes them (no deadlock)
    return _update(agent, by=by, request=request, kind="agent", **fields)


def _delete(obj, *, by, request, kind: str) -> None:
    require(by, obj.account, f"delete_{kind}s")
    in_use = obj.conversations.count() if hasattr(obj, "conversations") else 0
    if in_use:
        raise ValidationError(
            f"{obj} has {in_use} conversation(s) and cannot be deleted: their history and billing need it."
            + (" Pause the agent instead." if kind == "agent" else ""), code="in_use")
    name, public_id, account = str(obj), str(obj.public_id), obj.account
    obj.delete()
    audit(account=account, actor=by, request=request, action=f"{kind}.deleted",
          summary=f"{kind.capitalize()} “{name}” deleted", id=public_id)


@transaction.atomic
def agent_delete(*, agent: Agent, by, request=None) -> None:
    _delete(agent, by=by, request=request, kind="agent")


@transaction.atomic
def contact_create(*, account: Account, by, request=None, **fields) -> Contact:
    require(by, account, "manage_contacts")
    contact = Contact(account=account, **fields)
    contact.full_clean()
    contact.save()
    audit(account=account, actor=by, request=request, action="contact.created",
          summary=f"Contact “{contact.name}” created", id=str(contact.public_id))
    return contact


@transaction.atomic
def contact_update(*, contact: Contact, by, request=None, **fields) -> Contact:
    return _update(contact, by=by, request=request, kind="contact", **fields)


@transaction.atomic
def contact_delete(*, contact: Contact, by, request=None) -> None:
    _delete(contact, by=by, request=request, kind="contact")


CLOCK_SKEW = datetime.timedelta(minutes=5)


def started_at_refusal(started_at: datetime.datetime) -> None:
    """Refuse a start in the future (beyond a few minutes of clock skew) or before last month: every month's
    minutes pools and invoice are settled once that month and the next have passed, so a call dated in a
    month long gone, or one to come, would draw a pool nobody checks and meter usage nobody bills."""
    now = timezone.now()
    if started_at > now + CLOCK_SKEW:
        raise ValidationError({"started_at": "A conversation cannot start in the future."})
    earliest = period_start(period_start(now) - datetime.timedelta(days=1))
    if started_at.astimezone(datetime.UTC).date() < earliest:
        raise ValidationError({"started_at": f"A conversation can be recorded until the end of the month after "
                                             f"it started: the earliest start accepted now is {earliest:%-d %B %Y}."})


@transaction.atomic
def conversation_record(*, account: Account, agent: Agent, contact: Contact, started_at: datetime.datetime,
                        duration_seconds: int, by, direction=Conversation.Direction.INBOUND, summary="",
                        transcript=None, recording_url="", insights=None, caller_ip=None, caller_location="",
                        request=None) -> Conversation:
    """Record a conversation and meter its minutes: the one way a conversation is written (pages, the API,
    the demo seed).

    Past a minutes pool (the account's or an ancestor's) or the concurrent-call limit the
    conversation is still recorded, as blocked with the reason, and no usage is metered.
    What the account's retention policy says not to store (transcripts, recordings, insights) is
    blanked before the row is saved, so it never reaches the database.
    """
    require(by, account, "manage_conversations")
    started_at_refusal(started_at)
    apply_due_for(account)  # a billing transfer whose cut-over has passed switches the payer first
    lineage = _lock_lineage(account)
    locked = lineage[-1]
    conversation = Conversation(account=account, agent=agent, contact=contact, started_at=started_at,
                                duration_seconds=duration_seconds, direction=direction, summary=summary,
                                transcript=transcript or [], recording_url=recording_url, insights=insights or {},
                                caller_ip=caller_ip or None, caller_location=caller_location)
    for field, blank in blanked_fields(account).items():
        setattr(conversation, field, blank)
    conversation.ended_at = started_at + datetime.timedelta(seconds=duration_seconds)
    conversation.full_clean(exclude=["ended_at"])
    period = usage_period(lineage[0], started_at)  # the pools are those of the period it is metered in
    reason = (minutes_block_reason(lineage, conversation.minutes, period)
              or concurrency_block_reason(locked, started_at, conversation.ended_at))
    if reason:
        conversation.status, conversation.blocked_reason = Conversation.Status.BLOCKED, reason
    conversation.lineage_ids = [a.pk for a in lineage]  # for the blocked calls' figure: no query for them
    conversation.save()
    if not reason:
        usage_record_conversation(conversation, billing_root=lineage[0], lineage=lineage, period=period)
    audit(account=account, actor=by, request=request, action="conversation.recorded",
          summary=f"Conversation recorded ({conversation.minutes} min)" + (" — blocked" if reason else ""),
          id=str(conversation.public_id), blocked=reason or "")
    data = {"conversation_id": str(conversation.public_id), "agent_id": str(agent.public_id),
            "agent_name": agent.name, "contact_id": str(contact.public_id), "direction": conversation.direction,
            "started_at": conversation.started_at}
    if reason:
        webhooks.emit(account, WebhookEvent.USAGE_LIMIT_REACHED, {**data, "reason": reason}, agent=agent)
    else:
        webhooks.emit(account, WebhookEvent.CONVERSATION_STARTED, data, agent=agent)
        webhooks.emit(account, WebhookEvent.CONVERSATION_ENDED, {
            **data, "status": conversation.status, "ended_at": conversation.ended_at,
            "duration_seconds": conversation.duration_seconds}, agent=agent)
    return conversation


@transaction.atomic
def conversation_update(*, conversation: Conversation, by, request=None, **fields) -> Conversation:
    """Only descriptive fields change: start and duration are metered and stay as recorded. What the
    retention policy says not to store is blanked, as when recording."""
    require(by, conversation.account, "manage_conversations")
    fields.update({f: blank for f, blank in blanked_fields(conversation.account).items() if f in fields})
    return _update(conversation, by=by, request=request, kind="conversation", **fields)


@transaction.atomic
def conversation_delete(*, conversation: Conversation, by, request=None) -> None:
    """Delete a conversation; its metered usage stays on the invoice (billing records are kept)."""
    require(by, conversation.account, "delete_conversations")
    _lock(conversation.account)  # the account before the agent's count, as recording a call takes them
    name, public_id, account = str(conversation), str(conversation.public_id), conversation.account
    conversation.delete()
    audit(account=account, actor=by, request=request, action="conversation.deleted",
          summary=f"Conversation “{name}” deleted", id=public_id)
