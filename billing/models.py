import datetime
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


def period_start(moment: datetime.datetime | datetime.date | None = None) -> datetime.date:
    """Billing periods are calendar months (UTC); a period is named by its first day."""
    moment = moment or timezone.now()
    if isinstance(moment, datetime.datetime):
        moment = moment.astimezone(datetime.UTC).date()
    return moment.replace(day=1)


class Plan(models.Model):
    """A subscription plan. Plans are data (editable in the admin) and gate features."""

    code = models.SlugField(unique=True)
    name = models.CharField(max_length=60)
    monthly_price_cents = models.PositiveIntegerField(default=0)
    included_minutes = models.PositiveIntegerField(default=0)
    overage_cents_per_minute = models.PositiveIntegerField(default=0)
    allows_subaccounts = models.BooleanField(
        default=False, help_text="Subaccount management (creating and running customer subaccounts)."
    )
    concurrent_calls = models.PositiveIntegerField(null=True, blank=True,
                                                   help_text="Calls at the same time; empty: no limit.")
    features = models.JSONField(default=list, blank=True, help_text="What the plans page lists, one line each.")
    is_default = models.BooleanField(default=False, help_text="The plan new independent accounts start on.")
    sort_order = models.PositiveSmallIntegerField(default=0)
    stripe_price_id = models.CharField(max_length=100, blank=True,
                                       help_text="The Stripe price (or plan) id, when Stripe is configured.")

    class Meta:
        ordering = ["sort_order", "monthly_price_cents"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=models.Q(is_default=True),
                                    name="plan_single_default"),
        ]

    def __str__(self):
        return self.name


class PlanChange(models.Model):
    """A root account's change of plan. An upgrade applies at once and charges the price difference for the rest
    of the period (a prorated line on the period's statement); a downgrade is scheduled for the start of the next
    period. The statement of a period reads these rows: its fee is the plan the period started with, its included
    minutes and overage rate the plan it ends with (``billing.plans.plans_in_period``)."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        APPLIED = "applied", "Applied"
        CANCELLED = "cancelled", "Cancelled"

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="plan_changes")
    from_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    to_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices)
    effective_at = models.DateTimeField()
    prorated_cents = models.PositiveIntegerField(default=0, help_text="Upgrades: charged on the period's statement.")
    prorated_days = models.PositiveSmallIntegerField(default=0)
    period_days = models.PositiveSmallIntegerField(default=0)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    decided_note = models.CharField(max_length=300, blank=True, help_text="Why a scheduled change was cancelled.")

    class Meta:
        ordering = ["effective_at", "pk"]
        indexes = [models.Index(fields=["account", "effective_at"]), models.Index(fields=["status", "effective_at"])]
        constraints = [models.UniqueConstraint(fields=["account"], condition=models.Q(status="scheduled"),
                                               name="plan_change_one_scheduled_per_account")]

    def __str__(self):
        return f"{self.account}: {self.from_plan} → {self.to_plan} ({self.get_status_display()})"


class Subscription(models.Model):
    """The plan of a directly billed (root) account. Subaccounts on parent billing have none."""

    account = models.OneToOneField("accounts.Account", on_delete=models.CASCADE, related_name="subscription")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    started_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.account} on {self.plan}"


class UsageRecord(models.Model):
    """Billable conversation minutes of one account in one period.

    ``minutes`` is the conversation's duration rounded up to whole minutes (61 s is 2 minutes).
    ``billing_root`` is who paid for it when it happened (the account's root): a later billing
    transfer moves future usage to the new root and leaves this row on the old payer's invoice.
    The index on (period, billing_root, account, minutes) covers the invoice's GROUP BY.
    """

    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="usage_records")
    billing_root = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="+")
    period = models.DateField()
    occurred_on = models.DateField(help_text="The day the conversation started (UTC), for daily charts.")
    minutes = models.PositiveIntegerField()
    seconds = models.PositiveIntegerField()
    conversation = models.OneToOneField(
        "workspace.Conversation", null=True, blank=True, on_delete=models.SET_NULL, related_name="usage"
    )
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["period", "billing_root", "account", "minutes"], name="usage_invoice_covering"),
            models.Index(fields=["account", "period"], name="usage_account_period"),
            models.Index(fields=["period", "billing_root", "occurred_on", "minutes"], name="usage_daily_covering"),
        ]

    def __str__(self):
        return f"{self.account_id} {self.period:%Y-%m} {self.minutes} min"


class Invoice(models.Model):
    """The consolidated invoice of a directly billed root for one period: the plan fee, then one
    line per account of its tree that used minutes. Written once, when the period closes, and never
    changed after (the Stripe and payment fields follow the payment, not the amounts)."""

    class PaymentStatus(models.TextChoices):
        LOCAL = "local", "Not sent to Stripe"
        OPEN = "open", "Awaiting payment"
        PAID = "paid", "Paid"
        FAILED = "failed", "Payment failed"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="invoices")
    period = models.DateField()
    plan_name = models.CharField(max_length=60)
    plan_price_cents = models.PositiveIntegerField()
    included_minutes = models.PositiveIntegerField()
    overage_cents_per_minute = models.PositiveIntegerField()
    total_minutes = models.PositiveIntegerField()
    overage_minutes = models.PositiveIntegerField()
    total_cents = models.PositiveIntegerField()
    closed_at = models.DateTimeField(default=timezone.now)
    payment_status = models.CharField(max_length=10, choices=PaymentStatus.choices, default=PaymentStatus.LOCAL)
    stripe_invoice_id = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-period"]
        constraints = [models.UniqueConstraint(fields=["account", "period"], name="invoice_one_per_period")]

    def __str__(self):
        return f"{self.account} {self.period:%Y-%m}"


class InvoiceLine(models.Model):
    class Kind(models.TextChoices):
        PLAN = "plan", "Plan"
        USAGE = "usage", "Usage"

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
    description = models.CharField(max_length=500)  # the account's path at closing, kept as it was
    minutes = models.PositiveIntegerField(default=0)
    amount_cents = models.PositiveIntegerField(default=0)
    position = models.PositiveIntegerField(default=0)
    stripe_invoice_item_id = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["position"]

    def __str__(self):
        return self.description


def transfer_expiry():
    return timezone.now() + datetime.timedelta(days=settings.BILLING_TRANSFER_MAX_AGE_DAYS)


class BillingTransfer(models.Model):
    """A subaccount becoming an independent, directly billed account (with its subtree).

    Started by someone holding billing and subaccount management on the parent; nothing changes
    until the billing owner accepts through a signed, single-use, expiring link. At the cut-over
    (at once, or at the end of the period) ``billing.transfers.transfer_apply`` moves the subtree to
    the top level in one transaction. One open transfer per account.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for the customer"
        SCHEDULED = "scheduled", "Accepted: switches at the end of the period"
        COMPLETED = "completed", "Completed"
        DECLINED = "declined", "Declined by the customer"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired"

    class Cutover(models.TextChoices):
        NOW = "now", "As soon as the customer accepts"
        PERIOD_END = "period_end", "At the end of the current billing period"

    OPEN = (Status.PENDING, Status.SCHEDULED)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="billing_transfers")
    from_root = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="+",
                                  help_text="Who paid for the account when the transfer started.")
    from_parent = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    billing_owner_email = models.EmailField()
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    cutover = models.CharField(max_length=10, choices=Cutover.choices, default=Cutover.NOW)
    keep_agency_access = models.BooleanField(default=False)
    agency_people = models.JSONField(default=list, blank=True, help_text="User ids who become agency members.")
    agency_expires_at = models.DateTimeField(null=True, blank=True)
    nonce = models.CharField(max_length=32)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(default=transfer_expiry)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    billing_contact_name = models.CharField(max_length=150, blank=True)
    billing_contact_email = models.EmailField(blank=True)
    cutover_at = models.DateTimeField(null=True, blank=True, help_text="The instant usage moves to the new payer.")
    completed_at = models.DateTimeField(null=True, blank=True)
    # The moved subtree's account names at the switch, by id: the former payer's statements name those lines as
    # they were (a rename afterwards is the new owner's business: rule 10).
    subtree_names = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["account"], condition=models.Q(status__in=["pending", "scheduled"]),
                                    name="billing_transfer_one_open_per_account",
                                    violation_error_message="This account already has a billing transfer under way."),
        ]
        indexes = [models.Index(fields=["from_root", "status"]), models.Index(fields=["status", "cutover_at"])]

    def __str__(self):
        return f"{self.account} → independent ({self.get_status_display()})"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN

    @property
    def is_expired(self) -> bool:
        return self.status == self.Status.PENDING and timezone.now() >= self.expires_at


class UsageRollup(models.Model):
    """Minutes of one account in one period: its own, and its whole subtree's (itself included) as the
    tree is now. A cache of the ledger (``UsageRecord``) kept in step by ``billing.rollups`` in the same
    transaction as each record and each subtree move; ``manage.py rebuild_usage_rollups`` rebuilds it.
    Lists, tabs and minutes pools read it; invoices never do."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="usage_rollups")
    period = models.DateField()
    own_minutes = models.BigIntegerField(default=0)
    subtree_minutes = models.BigIntegerField(default=0)
    # Calls blocked by a limit that started in the period, in the subtree as it is now (the dashboard's figure):
    # kept by ``Conversation.save`` and ``.delete``, not from the ledger (a blocked call meters nothing).
    subtree_blocked = models.BigIntegerField(default=0, db_default=0)
    # Minutes used in the period by subaccounts that have since left the subtree (a billing transfer or a move).
    # Not a cache: a record the move writes (``rollups_follow_move``) and the rebuild keeps. The account's minutes
    # pool counts them until the period ends, so moving a used-up subaccount away does not fill the pool again.
    departed_minutes = models.BigIntegerField(default=0, db_default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "period"], name="usage_rollup_one_per_period")]

    def __str__(self):
        return f"{self.account_id} {self.period:%Y-%m} {self.own_minutes}/{self.subtree_minutes} min"


class UsageDayRollup(models.Model):
    """The same figures per account and day, for the daily charts."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    own_minutes = models.BigIntegerField(default=0)
    subtree_minutes = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "day"], name="usage_day_rollup_one_per_day")]

    def __str__(self):
        return f"{self.account_id} {self.day} {self.own_minutes}/{self.subtree_minutes} min"


class UsagePayerRollup(models.Model):
    """Minutes of one account in one period paid by one billing root: the live statement's lines (the
    invoice's GROUP BY, kept in step). Never changed by a move: who paid is fixed when usage is recorded."""

    billing_root = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="+")
    period = models.DateField()
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="+")
    minutes = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["billing_root", "period", "account"],
                                               name="usage_payer_rollup_one_per_line")]
        # the live statement: totals and the overage split grouped by minutes, and its lines largest first, read
        # from the index alone (billing.statements.live_statement, statement_rows)
        indexes = [models.Index(fields=["billing_root", "period", "-minutes", "account"],
                                name="usage_payer_largest_first")]

    def __str__(self):
        return f"{self.billing_root_id} {self.period:%Y-%m} {self.account_id} {self.minutes} min"


class UsagePayerGroup(models.Model):
    """How many of a billing root's statement lines of a period have exactly ``minutes`` minutes: the live
    statement's totals and overage split (``billing.statements.live_statement``) in a few hundred rows rather than
    one per line. Kept with ``UsagePayerRollup`` (a line moving from one minutes value to another leaves one
    group for the other, in the same statement); rows whose ``lines`` fell to 0 are ignored."""

    billing_root = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="+")
    period = models.DateField()
    minutes = models.BigIntegerField()
    lines = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["billing_root", "period", "minutes"],
                                               name="usage_payer_group_one_per_value")]

    def __str__(self):
        return f"{self.billing_root_id} {self.period:%Y-%m} {self.lines} × {self.minutes} min"
