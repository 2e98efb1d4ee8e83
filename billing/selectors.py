"""Reads about plans and usage that other apps ask for."""

from accounts.models import Account

from .models import Plan, Subscription, UsageRollup, period_start


def plan_for(account: Account) -> Plan | None:
    """The plan that governs ``account``: its billing root's (the tree's root). One query."""
    sub = Subscription.objects.select_related("plan").filter(account__path=account.root_path).first()
    return sub.plan if sub else None


def minutes_used_in_subtrees(accounts: list[Account], period=None) -> dict[int, int]:
    """Minutes used in the period by each account's whole subtree (as the tree is now), from the rollups:
    one indexed query reading one row per account."""
    period = period or period_start()
    if not accounts:
        return {}
    used = dict(UsageRollup.objects.filter(account__in=[a.pk for a in accounts], period=period)
                .values_list("account_id", "subtree_minutes"))
    return {a.pk: used.get(a.pk, 0) for a in accounts}
