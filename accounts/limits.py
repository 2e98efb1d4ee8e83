"""Limits a parent sets on a subaccount, checked where the thing would be created."""

from django.core.exceptions import ValidationError
from django.template.defaultfilters import pluralize

from billing.selectors import minutes_drawn_from_pools

from .models import Account


class LimitReached(ValidationError):
    pass


def check_agent_limit(account: Account, current: int) -> None:
    if account.limit_agents is not None and current + 1 > account.limit_agents:
        raise LimitReached(
            f"{account.name} has reached its limit of {account.limit_agents} "
            f"agent{pluralize(account.limit_agents)}. "
            "Delete or reuse an agent, or ask the parent account to raise the limit.", code="agent_limit")


def minutes_block_reason(lineage: list[Account], minutes: int, period) -> str | None:
    """Why ``minutes`` more in ``period`` (the period they are metered in: ``billing.services.usage_period``)
    would break a minutes pool on the account or an ancestor, or None.

    A subaccount's minutes count against every ancestor's pool, and keep counting there for the rest of the
    period when it moves away (``departed_minutes``). One query for all pools.
    """
    limited = [a for a in lineage if a.limit_minutes is not None]
    if not limited:
        return None
    used = minutes_drawn_from_pools(limited, period)
    own = lineage[-1]
    for account in limited:
        if used[account.pk] + minutes > account.limit_minutes:
            if account.pk != own.pk:  # R6: the reason is shown in this account; name nothing above it
                return OVER_POOL_ABOVE
            return (f"Minutes limit of this account reached: {used[account.pk]} of "
                    f"{account.limit_minutes} minute{pluralize(account.limit_minutes)} used this period.")
    return None


OVER_POOL_ABOVE = "A minutes pool above this account is used up."


def concurrency_block_reason(account: Account, started_at, ended_at) -> str | None:
    if account.limit_concurrent_calls is None:
        return None
    from workspace.models import Conversation

    overlapping = Conversation.objects.in_account(account).filter(
        status=Conversation.Status.COMPLETED, started_at__lt=ended_at, ended_at__gt=started_at
    ).count()
    if overlapping >= account.limit_concurrent_calls:
        return (f"Concurrent call limit of this account reached: "
                f"{account.limit_concurrent_calls} call{pluralize(account.limit_concurrent_calls)} already in progress "
                f"at that time.")
    return None
