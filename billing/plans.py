"""Changing a root account's plan (Billing → Plans).

- **Upgrade** (a higher monthly price): applies at once; the period's statement keeps the fee of the plan the
  period started with and adds a prorated line for the difference over the days left (the day of the change
  included). Features (subaccounts) and the included minutes of the new plan apply at once.
- **Downgrade**: scheduled for the start of the next period, refused while the account uses what the target
  lacks (subaccounts on a plan without them); re-checked when it comes due, and cancelled (with an audit row)
  if the account uses it again by then. Cancel a scheduled one any time before.
- Only billing admins (``manage_billing``) of a root account; a subaccount's plan is its root's.
- Without Stripe this is all local. With Stripe configured the subscription at Stripe is switched to the new
  plan's price in the same step (refused by Stripe: nothing changes here either), and the next closed invoice
  carries the prorated line as an invoice item like any other.
"""

import calendar
import datetime
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.audit import audit, staff_acting
from accounts.models import Account

from .models import Plan, PlanChange, Subscription, period_start
from .templatetags.billing import cents


def _period_bounds(moment: datetime.datetime) -> tuple[datetime.datetime, datetime.datetime, int]:
    start = period_start(moment)
    days = calendar.monthrange(start.year, start.month)[1]
    begin = datetime.datetime.combine(start, datetime.time(), tzinfo=datetime.UTC)
    return begin, begin + datetime.timedelta(days=days), days


@dataclass(frozen=True)
class Quote:
    """What moving to a plan now means: an upgrade's prorated charge for the days left, or a downgrade's date."""

    upgrade: bool
    prorated_cents: int
    days_left: int  # today included
    period_days: int
    next_period: datetime.date


def quote(plan: Plan, current: Plan | None, now: datetime.datetime | None = None) -> Quote:
    now = now or timezone.now()
    _, end, days = _period_bounds(now)
    old_price = current.monthly_price_cents if current else 0
    upgrade = current is None or plan.monthly_price_cents > old_price
    left = (end.date() - now.astimezone(datetime.UTC).date()).days
    prorated = (plan.monthly_price_cents - old_price) * left // days if upgrade else 0
    return Quote(upgrade, prorated, left, days, end.date())


def current_plan(account: Account) -> Plan | None:
    sub = Subscription.objects.select_related("plan").filter(account=account).first()
    return sub.plan if sub else None


def plan_change_refusal(account: Account, plan: Plan, current: Plan | None = None) -> str | None:
    """Why ``account`` may not move to ``plan`` (now for an upgrade, at the period's end for a downgrade)."""
    if not account.is_root():
        return f"{account.name} is billed through the account above: its plan is that account's."
    current = current or current_plan(account)
    if current is not None and plan.pk == current.pk:
        return f"{account.name} is already on the {plan.name} plan."
    if not plan.allows_subaccounts and account.numchild:
        return (f"The {plan.name} plan has no subaccounts and {account.name} has {account.numchild}: transfer or "
                "delete them first (a billing transfer makes a subaccount independent).")
    if account.is_suspended:
        return f"{account.name} is suspended."
    return None


def _require(by, account: Account) -> None:
    if by is None:
        return
    from accounts.access import require

    require(by, account, "manage_billing")


def _switch_at_stripe(account: Account, plan: Plan) -> None:
    """With Stripe configured, the subscription there follows the plan (inside the caller's transaction: a
    refusal rolls the local change back, with Stripe's reason)."""
    from . import stripe_sync

    if not stripe_sync.is_configured():
        return
    try:
        stripe_sync.subscription_switch(account, plan)
    except stripe_sync.BillingProviderError as exc:
        raise ValidationError(f"Stripe did not switch the subscription: {exc}") from exc


@transaction.atomic
def plan_change(*, account: Account, plan: Plan, by, staff=None, request=None) -> PlanChange:
    """Upgrade now (with a prorated line) or schedule a downgrade for the next period. Replaces a scheduled one.
    ``by=None`` is the platform; ``staff``, the staff member acting for it in the admin, is named in the audit
    trail."""
    staff_data = staff_acting(by, staff)
    account = Account.objects.select_for_update().get(pk=account.pk)
    _require(by, account)
    current = current_plan(account)
    refusal = plan_change_refusal(account, plan, current)
    if refusal:
        raise ValidationError(refusal)
    now = timezone.now()
    scheduled = PlanChange.objects.filter(account=account, status=PlanChange.Status.SCHEDULED).first()
    if scheduled is not None:
        scheduled.status, scheduled.decided_note = PlanChange.Status.CANCELLED, f"Replaced by a change to {plan.name}"
        scheduled.save(update_fields=["status", "decided_note"])
    q = quote(plan, current, now)
    if q.upgrade:
        prorated, left, days = q.prorated_cents, q.days_left, q.period_days
        change = PlanChange.objects.create(
            account=account, from_plan=current or plan, to_plan=plan, status=PlanChange.Status.APPLIED,
            effective_at=now, prorated_cents=prorated, prorated_days=left, period_days=days, requested_by=by)
        Subscription.objects.update_or_create(account=account, defaults={"plan": plan})
        _switch_at_stripe(account, plan)
        audit(account=account, actor=by or staff, request=request, action="billing.plan_changed",
              summary=f"Plan upgraded to {plan.name} ({cents(prorated)} prorated for {left} of {days} days)",
              old=current.code if current else None, new=plan.code, **staff_data)
        return change
    end = datetime.datetime.combine(q.next_period, datetime.time(), tzinfo=datetime.UTC)
    change = PlanChange.objects.create(account=account, from_plan=current, to_plan=plan,
                                       status=PlanChange.Status.SCHEDULED, effective_at=end, requested_by=by)
    audit(account=account, actor=by or staff, request=request, action="billing.plan_change_scheduled",
          summary=f"Plan change to {plan.name} scheduled for {end:%d %B %Y}", old=current.code, new=plan.code,
          **staff_data)
    return change


@transaction.atomic
def plan_change_cancel(*, change: PlanChange, by, request=None) -> PlanChange:
    change = PlanChange.objects.select_for_update().select_related("account", "to_plan").get(pk=change.pk)
    _require(by, change.account)
    if change.status != PlanChange.Status.SCHEDULED:
        raise ValidationError("Only a scheduled plan change can be cancelled.")
    change.status, change.decided_note = PlanChange.Status.CANCELLED, "Cancelled"
    change.save(update_fields=["status", "decided_note"])
    audit(account=change.account, actor=by, request=request, action="billing.plan_change_cancelled",
          summary=f"Scheduled change to {change.to_plan.name} cancelled")
    return change


def apply_due_plan_changes(now: datetime.datetime | None = None) -> tuple[int, int]:
    """Apply scheduled downgrades whose time has come (cron, and before closing a period). (applied, cancelled)."""
    now = now or timezone.now()
    applied = cancelled = 0
    for pk in PlanChange.objects.filter(status=PlanChange.Status.SCHEDULED, effective_at__lte=now) \
            .values_list("pk", flat=True):
        with transaction.atomic():
            change = (PlanChange.objects.select_for_update().select_related("account", "to_plan", "from_plan")
                      .filter(pk=pk, status=PlanChange.Status.SCHEDULED).first())
            if change is None:
                continue
            refusal = plan_change_refusal(change.account, change.to_plan, change.from_plan)
            if refusal:
                change.status, change.decided_note = PlanChange.Status.CANCELLED, refusal[:300]
                change.save(update_fields=["status", "decided_note"])
                audit(account=change.account, actor=None, action="billing.plan_change_cancelled",
                      summary=f"Scheduled change to {change.to_plan.name} cancelled: {refusal}"[:255])
                cancelled += 1
                continue
            try:
                _switch_at_stripe(change.account, change.to_plan)
            except ValidationError:
                continue  # Stripe refused: the change stays scheduled and the next run tries again
            change.status = PlanChange.Status.APPLIED
            change.save(update_fields=["status"])
            Subscription.objects.update_or_create(account=change.account, defaults={"plan": change.to_plan})
            audit(account=change.account, actor=None, action="billing.plan_changed",
                  summary=f"Plan changed to {change.to_plan.name} (scheduled downgrade)",
                  old=change.from_plan.code, new=change.to_plan.code)
            applied += 1
    return applied, cancelled


def plans_in_period(root: Account, period: datetime.date, current: Plan | None):
    """(plan the period started with, plan it ends with, [(description, cents)] prorated lines), from the root's
    plan changes since the period began (one query). A scheduled change that is due counts as made, even before
    the cron applies it; one still in the future does not."""
    begin = datetime.datetime.combine(period, datetime.time(), tzinfo=datetime.UTC)
    _, end, _ = _period_bounds(begin)
    now = timezone.now()
    changes = [c for c in PlanChange.objects.filter(account=root, effective_at__gte=begin)
               .exclude(status=PlanChange.Status.CANCELLED).select_related("from_plan", "to_plan")
               .order_by("effective_at", "pk")
               if c.status == PlanChange.Status.APPLIED or c.effective_at <= now]
    final = changes[-1].to_plan if changes else current
    at_start = next((c.from_plan for c in changes if c.effective_at > begin), final)
    at_end = next((c.from_plan for c in changes if c.effective_at >= end), final)
    lines = [(f"Plan change on {c.effective_at:%d %b}: {c.from_plan.name} → {c.to_plan.name}, prorated "
              f"({c.prorated_days} of {c.period_days} days)", c.prorated_cents)
             for c in changes if begin <= c.effective_at < end and c.prorated_cents]
    return at_start, at_end, lines
