"""Writes about an account's data retention policy, and the preview of what a change would remove."""

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.access import require
from accounts.audit import audit
from accounts.models import Account, subtree_q

from . import public
from .models import (
    ANONYMISABLE,
    DataType,
    ExpiryAction,
    Period,
    RetentionRule,
    allowed_periods,
    period_rank,
)
from .policy import effective_retention
from .purge import LineageRules, expired


@dataclass(frozen=True)
class Choice:
    """What an account sets for one data type: its own rule, or None to follow the account above."""

    period: str
    action: str = ExpiryAction.DELETE
    is_locked: bool = False


def _check(data_type: str, choice: Choice | None) -> Choice | None:
    """The choice, validated and normalised (an action that cannot apply becomes "delete")."""
    if choice is None:
        return None
    if choice.period not in Period.values or choice.action not in ExpiryAction.values:
        raise ValidationError({data_type: "Choose a period and an action from the list."})
    if choice.period not in allowed_periods(data_type):
        raise ValidationError({data_type: f"{DataType(data_type).label} are kept at least 90 days: "
                                          "choose 90 days or longer."})
    action = choice.action
    if action == ExpiryAction.ANONYMISE and data_type not in ANONYMISABLE:
        raise ValidationError({data_type: f"{DataType(data_type).label} can only be deleted on expiry."})
    if choice.period in (Period.FOREVER, Period.DO_NOT_STORE):
        action = ExpiryAction.DELETE  # nothing expires, or nothing is kept: there is nothing to anonymise
    return Choice(choice.period, action, choice.is_locked)


def _describe(choice: Choice | None) -> str:
    if choice is None:
        return "follows the account above"
    text = Period(choice.period).label
    if choice.action == ExpiryAction.ANONYMISE:
        text += ", then anonymised"
    return text + (" (locked for subaccounts)" if choice.is_locked else "")


def _as_choice(rule: RetentionRule | None) -> Choice | None:
    return None if rule is None else Choice(rule.period, rule.action, rule.is_locked)


@transaction.atomic
def policy_update(*, account: Account, by, choices: dict[str, Choice | None], request=None) -> dict:
    """Set the account's own retention rules (``choices``: data type -> Choice, or None to follow the account
    above). Needs Trust Center management. A type an ancestor locked cannot be set here. Audited with the old
    and new values; the public trust pages that show this policy (here and below) are refreshed. Returns the
    changes (data type -> (old, new) descriptions); nothing changes when nothing differs."""
    require(by, account, "manage_trust_center")
    unknown = set(choices) - set(DataType.values)
    if unknown:
        raise ValidationError(f"Unknown data types: {', '.join(sorted(unknown))}")
    current = effective_retention(account)
    errors, wanted = {}, {}
    for data_type, choice in choices.items():
        try:
            wanted[data_type] = _check(data_type, choice)
        except ValidationError as exc:
            errors.update(exc.error_dict)
            continue
        locked_by = current[data_type].locked_by
        own = _as_choice(current.own.get(data_type))
        if locked_by is not None and wanted[data_type] != own:
            errors[data_type] = [ValidationError(
                f"{DataType(data_type).label}: an account above this one locked its policy for its subaccounts.")]
    if errors:
        raise ValidationError(errors)
    rules = {r.data_type: r for r in RetentionRule.objects.select_for_update().filter(account=account)}
    now, changes = timezone.now(), {}
    for data_type, choice in wanted.items():
        old = _as_choice(rules.get(data_type))
        if old == choice:
            continue
        changes[data_type] = (_describe(old), _describe(choice))
        if choice is None:
            rules[data_type].delete()
        else:
            RetentionRule.objects.update_or_create(account=account, data_type=data_type, defaults={
                "period": choice.period, "action": choice.action, "is_locked": choice.is_locked,
                "updated_at": now, "updated_by": by if getattr(by, "pk", None) else None})
    if changes:
        audit(account=account, actor=by, request=request, action="retention.policy_changed",
              summary="Data retention: " + "; ".join(
                  f"{DataType(t).label.lower()} {old} → {new}" for t, (old, new) in changes.items()),
              changes={t: list(v) for t, v in changes.items()})
        public.invalidate_subtree(account)
    return changes


@dataclass(frozen=True)
class Removal:
    """What a change would remove at once: rows of one data type, in how many accounts."""

    data_type: str
    rows: int
    accounts: int

    @property
    def label(self) -> str:
        return DataType(self.data_type).label


def preview(*, account: Account, choices: dict[str, Choice | None], chunk: int = 500) -> list[Removal]:
    """For every data type whose period the change shortens somewhere in ``account``'s subtree (here, or in a
    subaccount that follows it), how many rows the purge would change right now. Queries: the subtree, the
    rules, and one count per (data type, new rule) per ``chunk`` accounts, whatever the number of rows."""
    rules = LineageRules(account)
    proposed = rules.replacing(account, {t: c for t, c in choices.items()})
    now = timezone.now()
    groups: dict[tuple, list[Account]] = {}
    subtree = Account.objects.filter(subtree_q(account.path)).only("pk", "path", "depth", "name")
    for acc in subtree.order_by("path"):
        before, after = rules.effective(acc), proposed.effective(acc)
        for data_type in DataType.values:
            b, a = before[data_type], after[data_type]
            shorter = period_rank(a.period) < period_rank(b.period)
            harsher = a.period == b.period and a.action != b.action and a.action == ExpiryAction.DELETE
            if shorter or harsher:
                groups.setdefault((data_type, a.period, a.action), []).append(acc)
    totals: dict[str, list] = {}
    for (data_type, period, action), accounts in groups.items():
        for i in range(0, len(accounts), chunk):
            part = accounts[i:i + chunk]
            n = expired(data_type, period, action, [a.pk for a in part], now).count()
            entry = totals.setdefault(data_type, [0, set()])
            entry[0] += n
            entry[1].update(a.pk for a in part)
    return [Removal(t, totals[t][0], len(totals[t][1])) for t in DataType.values if t in totals]
