import uuid

from django.conf import settings
from django.db import models
from django.db.models import OuterRef, Q, Subquery
from django.db.models.functions import Now
from django.db.models.lookups import IsNull
from django.utils import timezone


class AgencyGrantQuerySet(models.QuerySet):
    def active(self):
        """Approved and not past its expiry, judged by the database clock (no cron needed)."""
        unexpired = Q(expires_at__isnull=True) | Q(expires_at__gt=Now())
        return self.filter(unexpired, status=AgencyGrant.Status.ACTIVE)


class AgencyGrant(models.Model):
    """An agency's access to one client-owned (root) account: requested by the agency or
    created when the client invites an agency user; approved, narrowed, extended or revoked
    by the client. Its agency members reach the client only while it is active."""

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        ACTIVE = "active", "Active"
        DECLINED = "declined", "Declined"
        REVOKED = "revoked", "Revoked"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    client = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="agency_grants")
    agency = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="client_grants")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    expires_at = models.DateTimeField(null=True, blank=True)
    # The client may narrow what the agency's people may do ({category: level}; empty = Agency Admin's access).
    matrix = models.JSONField(default=dict, blank=True)
    note = models.CharField(max_length=300, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    expiry_recorded = models.BooleanField(default=False, help_text="The audit trail has the expiry.")

    objects = AgencyGrantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["client", "agency"], condition=Q(status__in=["requested", "active"]),
                                    name="agency_grant_one_open_per_pair",
                                    violation_error_message="This agency already has access or a pending request."),
            models.CheckConstraint(condition=~Q(client=models.F("agency")), name="agency_grant_not_self"),
        ]
        indexes = [models.Index(fields=["client", "agency", "status"]), models.Index(fields=["agency", "status"])]

    def __str__(self):
        return f"{self.agency} → {self.client} ({self.get_status_display()})"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_effective(self) -> bool:
        return self.status == self.Status.ACTIVE and not self.is_expired

    @property
    def state_label(self) -> str:
        if self.status == self.Status.ACTIVE and self.is_expired:
            return "Expired"
        return self.get_status_display()


class AgencySettings(models.Model):
    """A client account's agency settings: whether agency access is on, and the matrix that
    caps every non-agency member (the Owner included) while it is."""

    account = models.OneToOneField("accounts.Account", on_delete=models.CASCADE, related_name="agency_settings")
    enabled = models.BooleanField(default=False)
    matrix = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"Agency settings of {self.account} ({'on' if self.enabled else 'off'})"


class AgencyBaseline(models.Model):
    """The agency's default access baseline: a new client's agency settings start from it."""

    account = models.OneToOneField("accounts.Account", on_delete=models.CASCADE, related_name="agency_baseline")
    matrix = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"Agency baseline of {self.account}"


def effective_membership_q():
    """Memberships that count now: every ordinary one, and an agency one only while its agency's grant on
    that account is active and unexpired, while its person still belongs to the agency (R3: a leaver of
    the agency loses every client on the next request), and while the agency's account (a root: agency access joins
    two independent accounts) is not suspended: a suspended agency's people work in no client until the platform
    lifts it; the grant stays, so lifting the suspension gives them back. Checked in SQL, per request."""
    from accounts.models import Account
    from members.models import Membership

    grant = AgencyGrant.objects.active().filter(client_id=OuterRef("account_id"),
                                                agency_id=OuterRef("agency_account_id"))
    still_in_agency = Membership.objects.filter(user_id=OuterRef("user_id"), account_id=OuterRef("agency_account_id"),
                                                is_agency=False)
    suspended = Account.objects.filter(pk=OuterRef("agency_account_id"), status=Account.Status.SUSPENDED)
    return Q(is_agency=False) | Q(_found(grant), _found(still_in_agency), _found(suspended, False))


def _found(qs, found: bool = True):
    """Whether ``qs`` has a row (``found=False``: has none), as ``(SELECT id … LIMIT 1) IS [NOT] NULL``: one indexed
    lookup per agency membership. PostgreSQL may run an ``EXISTS`` as a hash of every row the subquery could match
    on the platform (it did for the grant and the agency membership: a sequential scan of every person's
    memberships, on each request of an agency user, growing with the platform); a scalar subquery it never
    hashes."""
    return IsNull(Subquery(qs.order_by().values("pk")[:1]), not found)
