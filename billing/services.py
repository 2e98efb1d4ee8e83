"""Writes about subscriptions, usage and invoices."""

import datetime
import itertools
import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from accounts.audit import audit
from accounts.bulk import collector_paused, insert_rows
from accounts.models import Account, ids_by_path
from developers import webhooks
from developers.models import WebhookEvent

from .models import Invoice, InvoiceLine, Plan, Subscription, UsageRecord, period_start
from .rollups import rollups_add
from .statements import compute_statement

log = logging.getLogger(__name__)


@transaction.atomic
def subscription_start(*, account: Account, plan: Plan | None = None) -> Subscription:
    """A directly billed account's subscription; the default (free) plan unless told."""
    plan = plan or Plan.objects.get(is_default=True)
    sub, _ = Subscription.objects.update_or_create(account=account, defaults={"plan": plan})
    return sub


def usage_period(billing_root: Account, started_at: datetime.datetime) -> datetime.date:
    """The period a conversation that started at ``started_at`` is metered in: the one it started in, unless
    ``billing_root``'s invoice for it is closed (a closed invoice never changes): then the current one. Minutes
    pools are checked against this period, so a call dated in a closed month cannot slip past this month's."""
    period = period_start(started_at)
    if period < period_start() and Invoice.objects.filter(account=billing_root, period=period).exists():
        return period_start()
    return period


def usage_record_conversation(conversation, *, billing_root: Account | None = None,
                              lineage: list[Account] | None = None, period: datetime.date | None = None
                              ) -> UsageRecord:
    """Meter a completed conversation: its duration rounded up to whole minutes (61 s bill as 2),
    in its ``usage_period``, paid by the account's billing root at this moment. ``lineage`` (the account's
    ancestors and itself, root first) saves a query when the caller has it, and ``period`` (``usage_period``)
    one more."""
    if billing_root is None:
        billing_root = Account.objects.get(path=conversation.account.root_path)
    period = period or usage_period(billing_root, conversation.started_at)
    return usage_record_create(
        account=conversation.account, billing_root=billing_root, period=period,
        occurred_on=conversation.started_at.astimezone(datetime.UTC).date(),
        minutes=conversation.minutes, seconds=conversation.duration_seconds, conversation=conversation,
        lineage=lineage,
    )


@transaction.atomic
def usage_record_create(*, account: Account, billing_root: Account, period: datetime.date,
                        occurred_on: datetime.date, minutes: int, seconds: int, conversation=None,
                        lineage: list[Account] | None = None) -> UsageRecord:
    """The one writer of the usage ledger: the record and its rollups (``billing.rollups``) in one
    transaction, so lists, tabs and pools read figures that always match the ledger."""
    record = UsageRecord.objects.create(
        account_id=account.pk, billing_root=billing_root, period=period, occurred_on=occurred_on,
        minutes=minutes, seconds=seconds, conversation=conversation,
    )
    if lineage is None or lineage[-1].pk != account.pk:
        lineage_ids = ids_by_path(account.lineage_paths)
    else:
        lineage_ids = [a.pk for a in lineage]
    rollups_add(lineage_ids=lineage_ids, billing_root_id=billing_root.pk, period=period, day=occurred_on,
                minutes=minutes)
    return record


def _check_closable(root: Account, period: datetime.date) -> None:
    if not root.is_root():
        raise ValidationError(f"{root.name} is on parent billing: its usage is on its billing root's invoice.")
    if period != period_start(period):
        raise ValidationError("A billing period is named by its first day.")
    if period >= period_start():
        raise ValidationError(f"The period {period:%B %Y} has not ended yet.")


@transaction.atomic
@collector_paused()  # (10,000 lines and their rows: ``accounts.bulk.collector_paused``)
def invoice_close(*, root: Account, period: datetime.date, by=None, request=None) -> tuple[Invoice, bool]:
    """Freeze the root's statement for an ended period into an Invoice (atomic; idempotent on
    (root, period): closing again returns the existing invoice unchanged). Returns (invoice, created)."""
    if by is not None and not by.is_staff:
        from accounts.access import require

        require(by, root, "manage_billing")
    _check_closable(root, period)
    Account.objects.select_for_update().filter(pk=root.pk).first()  # one closer at a time per root
    existing = Invoice.objects.filter(account=root, period=period).first()
    if existing:
        return existing, False
    statement = compute_statement(root, period)
    total_minutes, total_cents = statement.total_minutes, statement.total_cents  # (each a sum over the lines)
    invoice = Invoice.objects.create(
        account=root, period=period, plan_name=statement.plan_name, plan_price_cents=statement.plan_price_cents,
        included_minutes=statement.included_minutes, overage_cents_per_minute=statement.overage_cents_per_minute,
        total_minutes=total_minutes, overage_minutes=statement.overage_minutes, total_cents=total_cents,
    )
    # One row a line, written by the driver's bulk path (``accounts.bulk``: an invoice of 10,000 lines took
    # ~300 ms in bulk_create's per-row Python, more than the statement itself).
    usage, plan_kind, n = InvoiceLine.Kind.USAGE.value, InvoiceLine.Kind.PLAN.value, len(statement.lines)
    plan_name = f"{statement.fee_plan_name or statement.plan_name} plan, {period:%B %Y}"
    rows = itertools.chain(
        [(invoice.pk, plan_kind, root.pk, plan_name, 0, statement.plan_price_cents, 0, "")],
        ((invoice.pk, usage, line.account_id, line.description, line.minutes, line.amount_cents, i, "")
         for i, line in enumerate(statement.lines, start=1)),
        ((invoice.pk, plan_kind, root.pk, line.description, 0, line.amount_cents, n + 1 + i, "")
         for i, line in enumerate(statement.adjustments)))
    insert_rows(InvoiceLine, ("invoice", "kind", "account", "description", "minutes", "amount_cents", "position",
                              "stripe_invoice_item_id"), rows)
    audit(account=root, actor=by, request=request, action="billing.period_closed",
          summary=f"Invoice for {period:%B %Y} closed: {total_minutes} min, {total_cents / 100:.2f}",
          invoice=str(invoice.public_id))
    webhooks.emit(root, WebhookEvent.INVOICE_CLOSED, {
        "invoice_id": str(invoice.public_id), "period": period, "total_minutes": invoice.total_minutes,
        "total_cents": invoice.total_cents})
    from . import stripe_sync

    if stripe_sync.is_configured():
        transaction.on_commit(lambda: stripe_sync.push_invoice_safely(invoice.pk))
    return invoice, True


def roots_to_close(period: datetime.date):
    """Directly billed accounts that owe something for the period (a subscription, or usage)."""
    with_usage = UsageRecord.objects.filter(period=period).values("billing_root")
    return Account.objects.filter(Q(subscription__isnull=False) | Q(pk__in=with_usage), depth=1).order_by("pk")
