"""Reads about plans and usage that other apps ask for."""

from django.db.models import F

from accounts.baked import Baked
from accounts.models import Account

from .models import Plan, Subscription, UsageRollup, period_start

# Nearly every account page asks it: compiled once (``accounts.baked``); ``first()``'s order.
_subscription = Baked(lambda root_path: Subscription.objects.select_related("plan").filter(account__path=root_path)
                      .order_by("pk")[:1])


_pool_minutes = Baked(lambda ids, period: UsageRollup.objects.filter(account_id__in=ids, period=period)
                      .values_list("account_id", "subtree_minutes", F("subtree_minutes") + F("departed_minutes")))


def plan_for(account: Account) -> Plan | None:
    """The plan that governs ``account``: its billing root's (the tree's root). One query."""
    found = _subscription(account.root_path)
    return found[0].plan if found else None


def minutes_used_in_subtrees(accounts: list[Account], period=None) -> dict[int, int]:
    """Minutes used in the period by each account's whole subtree (as the tree is now), from the rollups:
    one indexed query reading one row per account."""
    return {pk: subtree for pk, (subtree, _) in subtree_and_pool_minutes(accounts, period).items()}


def minutes_drawn_from_pools(accounts: list[Account], period=None) -> dict[int, int]:
    """What each account's minutes pool has given in the period: its subtree's minutes (as the tree is now) and
    the minutes of subaccounts that used it in the period and have since left (a billing transfer or a move).
    One indexed query reading one row per account."""
    return {pk: pool for pk, (_, pool) in subtree_and_pool_minutes(accounts, period).items()}


def subtree_and_pool_minutes(accounts: list[Account], period=None) -> dict[int, tuple[int, int]]:
    """Each account's ``minutes_used_in_subtrees`` and ``minutes_drawn_from_pools`` figures, in one query."""
    period = period or period_start()
    if not accounts:
        return {}
    found = {pk: (subtree, pool) for pk, subtree, pool in _pool_minutes(sorted(a.pk for a in accounts), period)}
    return {a.pk: found.get(a.pk, (0, 0)) for a in accounts}
