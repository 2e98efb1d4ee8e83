import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from .preferences import DateFormat
from .roles import ROLES, RoleId, get_role


class UserManager(BaseUserManager):
    use_in_migrations = True

    @staticmethod
    def normalize(email: str) -> str:
        return (email or "").strip().lower()

    def get_by_natural_key(self, username):
        return self.get(email__iexact=self.normalize(username))

    def create_user(self, email, password=None, *, email_verified=False, **extra):
        """The person and their primary address (allauth's ``EmailAddress``, which email changes and
        verification work on); ``email_verified`` when a signed link sent there proved the mailbox."""
        from allauth.account.models import EmailAddress

        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        EmailAddress.objects.using(self._db).create(user=user, email=user.email, primary=True,
                                                    verified=email_verified)
        return user

    def create_superuser(self, email, password=None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Signs in with an email address; belongs to accounts through memberships."""

    email = models.EmailField("email address", unique=True)
    name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(
        default=False, help_text="May sign in to the Django admin (platform staff)."
    )
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    last_account = models.ForeignKey(
        "accounts.Account",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The account last chosen in the switcher; where / and login lead.",
    )

    time_zone = models.CharField(max_length=64, default="UTC",
                                 help_text="Times are shown in this time zone (IANA name).")
    date_format = models.CharField(max_length=8, choices=DateFormat.choices, default=DateFormat.DAY_MONTH_YEAR)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["name"]

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def clean(self):
        super().clean()
        self.email = UserManager.normalize(self.email)

    def __str__(self):
        return self.email

    @property
    def display_name(self) -> str:
        return self.name or self.email.split("@")[0]

    def get_full_name(self):
        return self.name

    def get_short_name(self):
        return self.display_name


class MembershipQuerySet(models.QuerySet):
    def effective(self):
        """Only memberships that give access now (agency ones need an active grant)."""
        from agency.models import effective_membership_q

        return self.filter(effective_membership_q())

    def effective_among(self, found: list["Membership"]) -> list["Membership"]:
        """Those of ``found`` (memberships already loaded) that ``effective()`` keeps, for the hot path (every
        account page): ordinary memberships need no check; agency ones are checked by ``effective()`` in one query,
        paid only by agency users. (``effective()``'s subqueries cost more to compile than to run.)"""
        agency = [m.pk for m in found if m.is_agency]
        if not agency:
            return found
        kept = set(self.model.objects.effective().filter(pk__in=agency).values_list("pk", flat=True))
        return [m for m in found if not m.is_agency or m.pk in kept]


class Membership(models.Model):
    """A person's role in one account. Reaches the account's descendants too (DESIGN rule 1)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=RoleId.choices, default=RoleId.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    is_agency = models.BooleanField(
        default=False, help_text="An agency's user in a client-owned account (keeps the Agency Admin role's access)."
    )
    agency_account = models.ForeignKey(
        "accounts.Account", null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        help_text="For an agency user: their agency's own account, whose grant on this account they use.",
    )
    last_active_at = models.DateTimeField(null=True, blank=True)
    # Where the membership came from (R2, R3): created by a person acting through an agency (an agency
    # user, or someone whose own membership an agency user created) and the grant in force then.
    via_agency = models.BooleanField(
        default=False, help_text="Created by an agency user (directly or through someone they added): never "
                                 "governs agency access and gives at most Member or Viewer.")
    via_grant = models.ForeignKey("agency.AgencyGrant", null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="memberships_created",
                                  help_text="The agency grant this membership was created through.")
    # Kept by ``members.entry_points`` whenever the person's memberships or the accounts' paths change: the
    # switcher lists the memberships where this is False (a top of the person's reachable forest) without
    # deciding it for every membership on every request.
    below_own = models.BooleanField(
        default=False, editable=False,
        help_text="Lies below another of the person's own (non-agency) memberships: reached from there, so "
                  "the switcher does not list it at the top.")

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "account"], name="membership_unique_user_account"),
            models.CheckConstraint(condition=models.Q(is_agency=False, agency_account__isnull=True)
                                   | models.Q(is_agency=True, role="agency_admin"),
                                   name="membership_agency_consistent"),
            models.CheckConstraint(condition=models.Q(role__in=list(ROLES)), name="membership_role_valid"),
        ]
        indexes = [models.Index(fields=["account", "role"]),
                   models.Index(fields=["user", "below_own"], name="membership_entry_points")]

    def __str__(self):
        return f"{self.user} · {self.account} · {self.get_role_display()}"

    @property
    def role_obj(self):
        return get_role(self.role)


def invitation_expiry():
    from datetime import timedelta

    return timezone.now() + timedelta(days=settings.INVITATION_MAX_AGE_DAYS)


def new_nonce():
    import secrets

    return secrets.token_urlsafe(16)


class Invitation(models.Model):
    """An invitation to join an account by email. Its link is signed, single use and expires;
    resending rotates the nonce, so older links stop working."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        REVOKED = "revoked", "Revoked"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=20, choices=RoleId.choices, default=RoleId.MEMBER)
    is_agency = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    nonce = models.CharField(max_length=32, default=new_nonce)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(default=invitation_expiry)
    last_sent_at = models.DateTimeField(default=timezone.now)
    send_count = models.PositiveSmallIntegerField(default=1)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    via_agency = models.BooleanField(default=False, help_text="Sent by someone acting through an agency.")
    sent_by_platform = models.BooleanField(
        default=False, help_text="Sent by the platform (admin, commands): no person's rights to re-check. An "
                                 "invitation whose sender was deleted is not one of these, and no longer works.")
    via_grant = models.ForeignKey("agency.AgencyGrant", null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(Lower("email"), "account", condition=models.Q(status="pending"),
                                    name="invitation_one_pending_per_email",
                                    violation_error_message="This email already has a pending invitation."),
            models.CheckConstraint(condition=models.Q(role__in=list(ROLES)), name="invitation_role_valid"),
        ]
        indexes = [models.Index(fields=["account", "status"])]

    def __str__(self):
        return f"{self.email} → {self.account} ({self.get_status_display()})"

    @property
    def is_expired(self) -> bool:
        return timezone.now() >= self.expires_at

    @property
    def role_obj(self):
        return get_role(self.role)
