"""Trust Center: data retention policies, data requests and the public trust page of an account."""

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
