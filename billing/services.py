"""Writes about subscriptions and usage."""

from django.db import transaction

from accounts.models import Account

from .models import Plan, Subscription, UsageRecord, period_start


@transaction.atomic
def subscription_start(*, account: Account, plan: Plan | None = None) -> Subscription:
    """A directly billed account's subscription; the default (free) plan unless told."""
    plan = plan or Plan.objects.get(is_default=True)
    sub, _ = Subscription.objects.update_or_create(account=account, defaults={"plan": plan})
    return sub


def usage_record_conversation(conversation) -> UsageRecord:
    """Meter a completed conversation: its duration rounded up to whole minutes, in the period it started."""
    return UsageRecord.objects.create(
        account_id=conversation.account_id,
        period=period_start(conversation.started_at),
        minutes=conversation.minutes,
        seconds=conversation.duration_seconds,
        conversation=conversation,
    )
