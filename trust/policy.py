"""The retention policy that applies in an account: its own rule per data type, else the nearest ancestor's,
unless an ancestor locked its rule for the subtree (then the topmost locked one wins).

One query for the whole lineage (``account__path IN`` its ancestors' paths and its own, computed from the path).
Each value remembers the account that sets it, so the page can say where it comes from (naming it only to
readers who reach it: R6). This module reads only ``accounts`` and its own models, so the service that records
a conversation (``workspace``) can apply "do not store" without importing the rest of ``trust``.
"""

from dataclasses import dataclass

from accounts.models import Account

from .models import ANONYMISABLE, DataType, ExpiryAction, Period, RetentionRule


@dataclass(frozen=True)
class EffectiveRule:
    data_type: str
    period: str
    action: str
    source: Account | None  # the account whose rule applies; None: nobody set one (keep forever)
    locked_by: Account | None = None  # an ancestor that locked this type for its subtree

    @property
    def label(self) -> str:
        return DataType(self.data_type).label

    @property
    def period_label(self) -> str:
        return Period(self.period).label

    @property
    def stores(self) -> bool:
        return self.period != Period.DO_NOT_STORE

    @property
    def anonymises(self) -> bool:
        return self.action == ExpiryAction.ANONYMISE and self.data_type in ANONYMISABLE \
            and self.period not in (Period.FOREVER, Period.DO_NOT_STORE)

    @property
    def summary(self) -> str:
        """Plain words for people (and the public trust page)."""
        if self.period == Period.FOREVER:
            return "Kept until deleted"
        if self.period == Period.DO_NOT_STORE:
            return "Not stored"
        return f"{'Anonymised' if self.anonymises else 'Deleted'} after {self.period_label.lower()}"


DEFAULT_PERIOD, DEFAULT_ACTION = Period.FOREVER, ExpiryAction.DELETE


def resolve(lineage_rules: dict[str, list[RetentionRule]], lineage: list[Account]) -> dict[str, EffectiveRule]:
    """The effective rule per data type from the lineage (root first) and its rules by data type (no query)."""
    depth_of = {a.pk: i for i, a in enumerate(lineage)}
    by_pk = {a.pk: a for a in lineage}
    own_pk = lineage[-1].pk
    result = {}
    for data_type in DataType.values:
        rules = sorted(lineage_rules.get(data_type, ()), key=lambda r: depth_of[r.account_id])
        locked = next((r for r in rules if r.is_locked and r.account_id != own_pk), None)
        chosen = locked or (rules[-1] if rules else None)
        if chosen is None:
            result[data_type] = EffectiveRule(data_type, DEFAULT_PERIOD, DEFAULT_ACTION, None)
        else:
            result[data_type] = EffectiveRule(data_type, chosen.period, chosen.action, by_pk[chosen.account_id],
                                              by_pk[chosen.account_id] if locked else None)
    return result


@dataclass(frozen=True)
class EffectiveRetention:
    account: Account
    rules: dict  # data type -> EffectiveRule
    own: dict  # data type -> this account's own RetentionRule
    rows: tuple = ()  # every rule of the lineage

    def __getitem__(self, data_type: str) -> EffectiveRule:
        return self.rules[data_type]

    def __iter__(self):
        return iter(self.rules[t] for t in DataType.values)

    def do_not_store(self) -> set[str]:
        return {t for t, rule in self.rules.items() if not rule.stores}

    @property
    def last_changed(self):
        """When a rule of the lineage last changed (None: nobody ever set one)."""
        return max((r.updated_at for r in self.rows), default=None)


def effective_retention(account: Account) -> EffectiveRetention:
    """What applies in ``account``: one query (the lineage's rules with their accounts)."""
    rows = tuple(RetentionRule.objects.filter(account__path__in=account.lineage_paths).select_related("account"))
    lineage = {r.account.pk: r.account for r in rows}
    lineage[account.pk] = account
    by_type: dict[str, list] = {}
    for r in rows:
        by_type.setdefault(r.data_type, []).append(r)
    return EffectiveRetention(account, resolve(by_type, sorted(lineage.values(), key=lambda a: a.depth)),
                              {r.data_type: r for r in rows if r.account_id == account.pk}, rows)


def not_stored(account: Account) -> set[str]:
    """The data types ``account`` keeps none of ("do not store")."""
    return effective_retention(account).do_not_store()


# What "do not store" blanks, per data type (IP addresses and phone numbers are always kept 90 days at least).
BLANKS = {
    DataType.TRANSCRIPTS: {"transcript": [], "summary": ""},
    DataType.RECORDINGS: {"recording_url": ""},
    DataType.INSIGHTS: {"insights": {}},
}


def blanked_fields(account: Account) -> dict:
    """Conversation fields to blank before saving in ``account`` (field -> blank value): what its policy says
    not to store is never saved, so never purged. One query."""
    out = {}
    for data_type in sorted(not_stored(account)):
        out.update(BLANKS.get(data_type, {}))
    return out
