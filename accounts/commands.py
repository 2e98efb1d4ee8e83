"""What the management commands share: finding an account from what staff type, dates, confirmations."""

import datetime

from django.core.management.base import CommandError

from .models import Account
from .params import uuid_or_none


def find_account(ref: str, *, option: str = "account") -> Account:
    """The account whose id (a UUID) or external ID is ``ref``; a CommandError saying why not otherwise."""
    ref = (ref or "").strip()
    as_id = uuid_or_none(ref)
    found = list(Account.objects.filter(public_id=as_id)[:1]) if as_id else []
    if not found:
        found = list(Account.objects.filter(external_id=ref)[:2]) if ref else []
    if not found:
        raise CommandError(f"--{option}: no account has the id or external ID {ref!r}.")
    if len(found) > 1:
        raise CommandError(f"--{option}: several accounts have the external ID {ref!r}: use the account id.")
    return found[0]


def parse_day(value: str | None, *, option: str) -> datetime.datetime | None:
    """YYYY-MM-DD as 00:00 UTC of that day (None when not given)."""
    if not value:
        return None
    try:
        day = datetime.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"--{option} takes a date as YYYY-MM-DD, not {value!r}.") from exc
    return datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.UTC)


def describe(account: Account) -> str:
    return f"{account.name} ({account.public_id}{', ' + account.external_id if account.external_id else ''})"
