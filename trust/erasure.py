"""Erasing one person's contact data: what is cleared, what is kept and how it is anonymised.

Conversations and usage are kept (history, invoices and minutes pools need them); they keep only anonymised
references: the conversation's personal fields are cleared and its contact becomes "Erased contact" without
phone or email. A contact no conversation refers to is deleted. Billing never names a contact: usage records
point at the (kept) conversation and invoice lines name accounts only, so they are left as they are. Texts that
named the contact elsewhere (audit summaries, stored API answers) are rewritten.
"""

from django.db import models

from accounts.models import AuditEvent
from api.models import IdempotencyRecord
from workspace.models import Contact, Conversation

# The fields of a conversation that hold what the person said or where they were: the one place erasure and
# exports read them from (retention governs the same fields, trust/purge.py).
PERSONAL_CONVERSATION_FIELDS = ("summary", "transcript", "recording_url", "insights", "caller_ip", "caller_location")

ERASED_NAME = "Erased contact"


def cleared_value(field_name: str):
    """What a personal field of a conversation holds once erased: NULL where allowed, else its empty value."""
    field = Conversation._meta.get_field(field_name)
    if field.null:
        return None
    if field.has_default():
        return field.get_default()
    return "" if isinstance(field, models.CharField | models.TextField) else None


def erase_contact(contact: Contact) -> dict[str, int]:
    """Erase one contact (called inside the request's transaction, the contact's row locked). Returns counts."""
    conversations = list(Conversation.objects.filter(contact=contact).values_list("pk", "public_id"))
    cleared = {f: cleared_value(f) for f in PERSONAL_CONVERSATION_FIELDS}
    if conversations:
        Conversation.objects.filter(contact=contact).update(**cleared)
    names = [t for t in (contact.name, contact.phone, contact.email) if t and t != ERASED_NAME]
    ids = [str(contact.public_id), *(str(p) for _, p in conversations)]
    _rewrite_audit(contact, ids, names)
    _rewrite_api_answers(contact, ids, cleared)
    if conversations:
        Contact.objects.filter(pk=contact.pk).update(name=ERASED_NAME, phone="", email="")
        anonymised, deleted = 1, 0
    else:
        contact.delete()
        anonymised, deleted = 0, 1
    return {"contacts_anonymised": anonymised, "contacts_deleted": deleted, "conversations_cleared": len(conversations)}


def _scrub(text: str, names: list[str]) -> str:
    for name in sorted(names, key=len, reverse=True):
        text = text.replace(name, ERASED_NAME)
    return text


def _rewrite_audit(contact: Contact, ids: list[str], names: list[str]) -> None:
    """Audit summaries about this contact or its conversations (and its deleted conversations, whose summary
    named it) keep the event but no longer the person's name, phone or email."""
    if not names:
        return
    rows = AuditEvent.objects.filter(account_id=contact.account_id).filter(
        models.Q(data__id__in=ids)
        | models.Q(action="conversation.deleted", summary__contains=f"“{contact.name} with "))
    for row in rows.only("pk", "summary"):
        scrubbed = _scrub(row.summary, names)
        if scrubbed != row.summary:
            AuditEvent.objects.filter(pk=row.pk).update(summary=scrubbed)


def _rewrite_api_answers(contact: Contact, ids: list[str], cleared: dict) -> None:
    """Answers kept for API idempotency replay that carry the contact or one of its conversations."""
    records = IdempotencyRecord.objects.filter(api_key__account_id=contact.account_id, response_body__id__in=ids)
    for record in records.only("pk", "response_body"):
        body = dict(record.response_body)
        if body.get("id") == str(contact.public_id):
            body.update(name=ERASED_NAME, phone="", email="")
        else:
            body.update({f: v for f, v in cleared.items() if f in body})
        IdempotencyRecord.objects.filter(pk=record.pk).update(response_body=body)
