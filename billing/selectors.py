"""Reads about plans and usage that other apps ask for."""

from django.db.models import Q, Sum

from accounts.models import Account

from .models import Plan, Subscription, UsageRecord, period_start


def plan_for(account: Account) -> Plan | None:
    """The plan that governs ``account``: its billing root's (the tree's root). One query."""
    sub = Subscription.objects.select_related("plan").filter(account__path=account.root_path).first()
    return sub.plan if sub else None


def minutes_used_in_subtrees(accounts: list[Account], period=None) -> dict[int, int]:
    """Minutes used this period by each account's whole subtree, in one query."""
    period = period or period_start()
    if not accounts:
        return {}
    sums = UsageRecord.objects.filter(period=period).aggregate(**{
        f"a{a.pk}": Sum("minutes", filter=Q(account__path__startswith=a.path), default=0) for a in accounts
    })
    return {a.pk: sums[f"a{a.pk}"] for a in accounts}
