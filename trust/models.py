"""Trust Center: data retention policies, data requests and the public trust page of an account."""

import calendar
import datetime
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

# ---- Data requests ----------------------------------------------------------------------------------------

RESULT_LIFETIME = datetime.timedelta(days=7)


class DataRequestQuerySet(models.QuerySet):
    def in_account(self, account):
        """The entry point for requests: always start from the current account."""
        return self.filter(account=account)

    def in_progress(self):
        return self.filter(status__in=DataRequest.IN_PROGRESS)

    def finished(self):
        return self.exclude(status__in=DataRequest.IN_PROGRESS)


class DataRequest(models.Model):
    """A request about people's data, made in one account (Trust Center → Data requests), run in the background.

    - ``my_data``: everything the platform holds about the person who asked (profile, memberships, login
      activity, audit rows they caused). Their own: only they download it.
    - ``contact_export`` / ``contact_erasure``: the contacts with one phone number or email in the account and,
      with ``include_subaccounts``, in the subaccounts below where the requester holds ``manage_trust_center``
      (re-checked when the request runs). An erasure removes exactly the contacts named on its confirmation
      (``contact_ids``); when it finishes, the subject is kept masked only.

    Results (``DataRequestResult``) can be downloaded for ``RESULT_LIFETIME`` after the request finished.
    """

    class Kind(models.TextChoices):
        MY_DATA = "my_data", "My data"
        CONTACT_EXPORT = "contact_export", "Contact export"
        CONTACT_ERASURE = "contact_erasure", "Contact erasure"

    class Status(models.TextChoices):
        PENDING = "pending", "Queued"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    IN_PROGRESS = (Status.PENDING, Status.RUNNING)

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="data_requests")
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    requester_email = models.CharField(max_length=254, blank=True)  # as it was, should the person be deleted
    # Contact requests: the normalised phone number or email ("" once an erasure finished), and a masked form
    # for the lists (e.g. "+4179•••67", "j•••@example.com").
    subject = models.CharField(max_length=254, blank=True)
    subject_masked = models.CharField(max_length=254, blank=True)
    include_subaccounts = models.BooleanField(default=False)
    contact_ids = models.JSONField(default=list, blank=True)  # erasure: the public ids confirmed for removal
    outcome = models.JSONField(default=dict, blank=True)  # counts, for the lists: accounts, contacts, ...
    failure_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)  # results downloadable until then

    objects = DataRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["account", "status", "-created_at"]),
            models.Index(fields=["account", "requested_by", "kind", "-created_at"]),
            models.Index(fields=["expires_at"]),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.subject_masked or self.requester_email} ({self.status})"

    @property
    def is_contact_request(self) -> bool:
        return self.kind != self.Kind.MY_DATA

    @property
    def is_in_progress(self) -> bool:
        return self.status in self.IN_PROGRESS

    def is_downloadable(self, now=None) -> bool:
        return (self.status == self.Status.COMPLETED and self.expires_at is not None
                and self.expires_at > (now or timezone.now()))

    @property
    def scope_label(self) -> str:
        if self.kind == self.Kind.MY_DATA:
            return "The requester"
        return "This account and its subaccounts" if self.include_subaccounts else "This account"


class DataRequestResult(models.Model):
    """One file of a finished request (``.xlsx`` or JSON), kept in the database so every app server can serve
    it; read only through the download view, which checks the reader each time. Deleted when it expires."""

    class Format(models.TextChoices):
        XLSX = "xlsx", "Excel (.xlsx)"
        JSON = "json", "JSON"

    request = models.ForeignKey(DataRequest, on_delete=models.CASCADE, related_name="results")
    format = models.CharField(max_length=4, choices=Format.choices)
    content = models.BinaryField()
    size = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["request", "format"], name="data_request_result_per_format")]

    def __str__(self):
        return f"{self.request_id}.{self.format}"

# ---- end of Data requests ---------------------------------------------------------------------------------


# ---- Retention ----------------------------------------------------------------------------------------------


class DataType(models.TextChoices):
    """The kinds of customer data an account's retention policy governs (what our model holds of them)."""

    TRANSCRIPTS = "transcripts", "Conversation transcripts"
    RECORDINGS = "recordings", "Call recordings"
    INSIGHTS = "insights", "Conversation insights"
    IP_LOCATION = "ip_location", "IP addresses and location"
    PHONE_NUMBERS = "phone_numbers", "Customer phone numbers"


DATA_TYPE_HELP = {
    DataType.TRANSCRIPTS: "The messages of each conversation and its summary.",
    DataType.RECORDINGS: "The link to each conversation's audio recording.",
    DataType.INSIGHTS: "What analysis extracted from a conversation: ratings, outcomes, details.",
    DataType.IP_LOCATION: "The caller's IP address and the location derived from it.",
    DataType.PHONE_NUMBERS: "Contacts' phone numbers, counted from the contact's last conversation.",
}


class Period(models.TextChoices):
    FOREVER = "forever", "Keep forever"
    DO_NOT_STORE = "none", "Do not store"
    DAYS_30 = "30d", "30 days"
    DAYS_90 = "90d", "90 days"
    MONTHS_6 = "6m", "6 months"
    YEAR_1 = "1y", "1 year"
    YEARS_2 = "2y", "2 years"


# Length of each finite period in months or days (calendar months: "6 months" before 31 August is 28 February).
PERIOD_SPAN = {Period.DAYS_30: ("days", 30), Period.DAYS_90: ("days", 90), Period.MONTHS_6: ("months", 6),
               Period.YEAR_1: ("months", 12), Period.YEARS_2: ("months", 24)}
# Shorter first: "do not store" keeps nothing, "keep forever" everything.
PERIOD_ORDER = [Period.DO_NOT_STORE, Period.DAYS_30, Period.DAYS_90, Period.MONTHS_6, Period.YEAR_1,
                Period.YEARS_2, Period.FOREVER]


def period_rank(period: str) -> int:
    return PERIOD_ORDER.index(Period(period))


def months_before(moment: datetime.datetime, months: int) -> datetime.datetime:
    year, month0 = divmod(moment.month - 1 - months, 12)
    year += moment.year
    day = min(moment.day, calendar.monthrange(year, month0 + 1)[1])
    return moment.replace(year=year, month=month0 + 1, day=day)


def period_cutoff(period: str, now: datetime.datetime) -> datetime.datetime | None:
    """Data older than the returned instant has expired; None when nothing ever expires (keep forever). For
    "do not store" it is ``now`` itself: everything held already has."""
    period = Period(period)
    if period == Period.FOREVER:
        return None
    if period == Period.DO_NOT_STORE:
        return now
    unit, n = PERIOD_SPAN[period]
    return now - datetime.timedelta(days=n) if unit == "days" else months_before(now, n)


class ExpiryAction(models.TextChoices):
    DELETE = "delete", "Delete"
    ANONYMISE = "anonymise", "Anonymise"


# Recordings and phone numbers can only be deleted (nothing of an audio link or a phone number is anonymous);
# phone numbers and IP addresses are kept at least 90 days (abuse and billing questions), as in the reference.
ANONYMISABLE = frozenset({DataType.TRANSCRIPTS, DataType.INSIGHTS, DataType.IP_LOCATION})
MINIMUM_90_DAYS = frozenset({DataType.IP_LOCATION, DataType.PHONE_NUMBERS})


def allowed_periods(data_type: str) -> list[str]:
    if data_type in MINIMUM_90_DAYS:
        return [p for p in PERIOD_ORDER if period_rank(p) >= period_rank(Period.DAYS_90)]
    return list(PERIOD_ORDER)


class RetentionRule(models.Model):
    """How long one account keeps one type of data, and what happens on expiry. No row: the account follows the
    account above it (a root without one keeps forever). ``is_locked`` imposes the rule on every subaccount below,
    whatever they set (``trust.policy.effective_retention``)."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="retention_rules")
    data_type = models.CharField(max_length=20, choices=DataType.choices)
    period = models.CharField(max_length=10, choices=Period.choices)
    action = models.CharField(max_length=10, choices=ExpiryAction.choices, default=ExpiryAction.DELETE)
    is_locked = models.BooleanField(default=False, help_text="Subaccounts cannot set their own.")
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "data_type"], name="retention_rule_one_per_type"),
            models.CheckConstraint(
                condition=~(models.Q(data_type__in=sorted(MINIMUM_90_DAYS))
                            & models.Q(period__in=[Period.DO_NOT_STORE, Period.DAYS_30])),
                name="retention_rule_minimum_90_days"),
            models.CheckConstraint(
                condition=models.Q(action=ExpiryAction.DELETE) | models.Q(data_type__in=sorted(ANONYMISABLE)),
                name="retention_rule_anonymise_where_allowed"),
        ]

    def __str__(self):
        return f"{self.get_data_type_display()}: {self.get_period_display()}"


class PurgeRun(models.Model):
    """One pass of the retention purge (the daily task or ``manage.py purge_retention``). Its progress is kept
    here after every batch, so a run that stops (crash, deploy) continues where it was: accounts are done in
    path order, ``cursor_path`` is the last one finished, and within an account the rows already purged no
    longer match. Every cutoff is computed from ``now`` of the run, so a resumed run removes exactly what the
    first attempt would have. At most one run is unfinished at a time, and one worker holds it (``claimed_by``,
    renewed with ``heartbeat_at``; a claim older than ``CLAIM_SECONDS`` is taken over)."""

    CLAIM_SECONDS = 600

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"

    account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.CASCADE,
                                related_name="+", help_text="Only this account and its subaccounts (empty: all).")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    now = models.DateTimeField(help_text="The instant every cutoff of this run is computed from.")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    cursor_path = models.CharField(max_length=255, blank=True, help_text="The last account finished.")
    current_account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+")
    current_counts = models.JSONField(default=dict, blank=True, help_text="Removed so far in the current account.")
    accounts_done = models.PositiveIntegerField(default=0)
    totals = models.JSONField(default=dict, blank=True, help_text="Removed per data type, all accounts.")
    claimed_by = models.CharField(max_length=64, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["status"], condition=models.Q(status="running"),
                                    name="purge_run_one_unfinished"),
        ]

    def __str__(self):
        return f"Retention purge {self.started_at:%Y-%m-%d %H:%M} ({self.get_status_display()})"


class ScheduledRun(models.Model):
    """A daily job enqueued for one day (UTC). The unique row is the multi-machine guard of ``run_daily``: cron
    may fire on every machine, only the first to insert the row enqueues the task."""

    job = models.CharField(max_length=50)
    day = models.DateField()
    enqueued_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "day"], name="scheduled_run_once_a_day")]

    def __str__(self):
        return f"{self.job} {self.day}"


# ---- Public page ----------------------------------------------------------------------------------------------

class PublicTrustPage(models.Model):
    """An account's public trust page, off until enabled. It shows only the sections the account chooses
    (``show_*``), never ids, members or anything else of the account. Its address is a ``TrustPageSlug``."""

    account = models.OneToOneField("accounts.Account", on_delete=models.CASCADE, related_name="trust_page")
    is_enabled = models.BooleanField("Publish the page", default=False,
                                     help_text="Anyone with the link can read it, without signing in.")
    company_name = models.CharField(max_length=120, blank=True)
    privacy_policy_url = models.URLField("Privacy policy link", max_length=500, blank=True)
    terms_url = models.URLField("Terms link", max_length=500, blank=True)
    subprocessors = models.JSONField(default=list, blank=True)
    ai_providers = models.JSONField("AI providers", default=list, blank=True)
    security_contact = models.EmailField("Security contact", blank=True)
    show_company_name = models.BooleanField(default=False)
    show_legal_links = models.BooleanField(default=False)
    show_subprocessors = models.BooleanField(default=False)
    show_ai_providers = models.BooleanField(default=False)
    show_retention = models.BooleanField(default=False)
    show_security_contact = models.BooleanField(default=False)
    show_last_updated = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    def __str__(self):
        return f"Public trust page of {self.account}"


class TrustPageSlug(models.Model):
    """An address of a public trust page: its current one (``retired_at`` empty) or an old one, which keeps
    redirecting to the current address and stays reserved for the grace period (``TRUST_SLUG_GRACE_DAYS``)
    before anyone may take it. Current and old addresses share one unique column, so two pages can never
    hold the same address, whatever the timing."""

    slug = models.SlugField(max_length=50, unique=True)
    page = models.ForeignKey(PublicTrustPage, on_delete=models.CASCADE, related_name="slugs")
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["page"], condition=models.Q(retired_at__isnull=True),
                                    name="trust_page_one_current_slug"),
        ]

    def __str__(self):
        return self.slug

    def frees_at(self) -> datetime.datetime | None:
        if self.retired_at is None:
            return None
        return self.retired_at + datetime.timedelta(days=settings.TRUST_SLUG_GRACE_DAYS)
