import datetime

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
    is_default = models.BooleanField(default=False, help_text="The plan new independent accounts start on.")
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "monthly_price_cents"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=models.Q(is_default=True),
                                    name="plan_single_default"),
        ]

    def __str__(self):
        return self.name


class Subscription(models.Model):
    """The plan of a directly billed (root) account. Subaccounts on parent billing have none."""

    account = models.OneToOneField("accounts.Account", on_delete=models.CASCADE, related_name="subscription")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    started_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.account} on {self.plan}"


class UsageRecord(models.Model):
    """Billable conversation minutes of one account in one period.

    ``minutes`` is the conversation's duration rounded up to whole minutes. The index on
    (period, account, minutes) covers the per-account GROUP BY of an invoice and a pool check.
    """

    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="usage_records")
    period = models.DateField()
    minutes = models.PositiveIntegerField()
    seconds = models.PositiveIntegerField()
    conversation = models.OneToOneField(
        "workspace.Conversation", null=True, blank=True, on_delete=models.SET_NULL, related_name="usage"
    )
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["period", "account", "minutes"], name="usage_period_account_minutes")]

    def __str__(self):
        return f"{self.account_id} {self.period:%Y-%m} {self.minutes} min"
