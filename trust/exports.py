"""What a data request's files hold, and the files themselves (JSON and ``.xlsx``).

A result is a list of sections (one sheet each in the workbook, one key each in the JSON). Names of accounts the
reader could not reach are never written (R6): a person's own export says "an account you no longer reach".
"""

import datetime
import json
from dataclasses import dataclass, field

from accounts.models import Account, AuditEvent
from billing.models import UsageRecord
from members.models import Membership
from security.models import SecurityEvent
from workspace.models import Contact, Conversation

from . import xlsx
from .erasure import PERSONAL_CONVERSATION_FIELDS

NOT_REACHED = "an account you no longer reach"


@dataclass
class Section:
    key: str  # the JSON key
    title: str  # the sheet's name
    columns: tuple[str, ...]
    rows: list[list] = field(default_factory=list)

    def as_dicts(self) -> list[dict]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def my_data(user) -> list[Section]:
    """The person's profile, memberships, login activity and the audit rows they caused."""
    profile = Section("profile", "Profile", ("field", "value"), [
        ["email", user.email], ["name", user.name], ["joined", user.date_joined], ["last_login", user.last_login],
        ["time_zone", user.time_zone], ["date_format", user.date_format]])
    memberships = list(Membership.objects.filter(user=user).select_related("account").order_by("created_at", "pk"))
    audit = list(AuditEvent.objects.filter(actor=user).select_related("account").order_by("created_at", "pk")
                 .iterator(chunk_size=2000))
    mentioned = {m.account_id for m in memberships} | {a.account_id for a in audit}
    reached = set(Account.objects.reachable_by(user).filter(pk__in=mentioned).values_list("pk", flat=True))

    def account_name(account) -> str:
        return account.name if account.pk in reached else NOT_REACHED

    def account_id(account) -> str:
        return str(account.public_id) if account.pk in reached else ""

    member_rows = Section("memberships", "Memberships", (
        "account", "account_id", "role", "since", "agency_member", "last_active"), [
        [account_name(m.account), account_id(m.account), m.get_role_display(), m.created_at, m.is_agency,
         m.last_active_at] for m in memberships])
    activity = Section("login_activity", "Login activity", ("when", "event", "ip", "device", "detail"), [
        [e.created_at, e.get_kind_display(), e.ip, e.user_agent, e.detail]
        for e in SecurityEvent.objects.filter(user=user).order_by("created_at", "pk").iterator(chunk_size=2000)])
    actions = Section("audit", "Actions (audit trail)", ("when", "account", "account_id", "action", "summary", "ip"), [
        [a.created_at, account_name(a.account), account_id(a.account), a.action,
         a.summary if a.account_id in reached else "", a.ip_address] for a in audit])
    return [profile, member_rows, activity, actions]


def contact_data(contacts: list[Contact]) -> list[Section]:
    """The contacts, their conversations (with every personal field) and the usage metered for them."""
    names = {c.account_id: c.account.name for c in contacts}
    ids = {c.account_id: str(c.account.public_id) for c in contacts}
    contact_rows = Section("contacts", "Contacts", (
        "account", "account_id", "contact_id", "name", "phone", "email", "created"), [
        [names[c.account_id], ids[c.account_id], str(c.public_id), c.name, c.phone, c.email, c.created_at]
        for c in contacts])
    conversations = list(Conversation.objects.filter(contact__in=[c.pk for c in contacts])
                         .select_related("agent", "contact").order_by("started_at", "pk"))
    conversation_rows = Section("conversations", "Conversations", (
        "account", "conversation_id", "contact_id", "agent", "direction", "started", "ended", "duration_seconds",
        "status", *PERSONAL_CONVERSATION_FIELDS), [
        [names[c.account_id], str(c.public_id), str(c.contact.public_id), c.agent.name, c.get_direction_display(),
         c.started_at, c.ended_at, c.duration_seconds, c.get_status_display(),
         *(_plain(getattr(c, f)) for f in PERSONAL_CONVERSATION_FIELDS)] for c in conversations])
    by_conversation = {c.pk: c for c in conversations}
    usage = Section("usage", "Usage", ("account", "conversation_id", "period", "minutes"), [
        [names[u.account_id] if u.account_id in names else "", str(by_conversation[u.conversation_id].public_id),
         u.period, u.minutes]
        for u in UsageRecord.objects.filter(conversation__in=list(by_conversation)).order_by("period", "pk")])
    return [contact_rows, conversation_rows, usage]


def _plain(value):
    """A stored value as a cell: structures as JSON text."""
    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, dict | list) else value


def _json_default(value):
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return str(value)


def render_json(about: dict, sections: list[Section]) -> bytes:
    data = {"request": about, **{s.key: s.as_dicts() for s in sections}}
    return json.dumps(data, indent=2, ensure_ascii=False, default=_json_default).encode()


def render_xlsx(about: dict, sections: list[Section]) -> bytes:
    sheets = [("About this export", [["field", "value"], *([k, v] for k, v in about.items())])]
    sheets += [(s.title, [list(s.columns), *s.rows]) for s in sections]
    return xlsx.workbook(sheets)
