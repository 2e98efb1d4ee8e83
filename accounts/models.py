import uuid

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import models
from django.db.models import Exists, OuterRef
from django.db.models.functions import Substr
from django.urls import reverse
from django.utils import timezone
from guardian.models import UserObjectPermissionBase
from treebeard.mp_tree import MP_Node, MP_NodeManager, MP_NodeQuerySet

from .names import name_key
from .permissions import MODEL_PERMISSIONS

LIMIT_NAMES = ("minutes", "concurrent_calls", "agents", "members")
NAME_MIN_LENGTH = 2
NAME_MAX_LENGTH = 100
STEPLEN = 4  # characters per level of the materialized path


def ancestor_or_self_paths(path) -> list:
    """SQL expressions for ``path`` (a column or ``OuterRef``) cut at every level: its ancestors' paths and its
    own (a short path repeats itself). For ``path__in=``: equality lookups the path index serves."""
    return [Substr(path, 1, STEPLEN * level) for level in range(1, settings.ACCOUNT_MAX_DEPTH + 1)]


def ids_by_path(paths: list[str]) -> list[int]:
    """The ids of the accounts at ``paths``, in their order: a lineage's paths give its ids root first. One query."""
    if not paths:
        return []
    by_path = dict(Account.objects.filter(path__in=paths).values_list("path", "pk"))
    return [by_path[p] for p in paths]


def subtree_bounds(path: str) -> tuple[str, str]:
    """The lowest and highest path of ``path``'s subtree (itself included): ``path`` and ``path + "ZZZ…"``.
    treebeard's paths use ``0-9A-Z``, so no path below ``path`` sorts after it padded with the last letter."""
    return path, path + Account.alphabet[-1] * (255 - len(path))


def subtree_q(path: str, field: str = "path") -> models.Q:
    """``path`` and every path below it, as a range ``path <= x <= path + "ZZZ…"`` (``subtree_bounds``) that a
    plain b-tree serves on PostgreSQL (whatever the collation) and SQLite (whose ``LIKE`` is case-insensitive and
    skips the index)."""
    low, high = subtree_bounds(path)
    return models.Q(**{f"{field}__gte": low, f"{field}__lte": high})


class AccountHasSubaccounts(ValidationError):
    """Deleting an account that still has subaccounts would orphan or delete customers."""


class AccountQuerySet(MP_NodeQuerySet):
    def reachable_by(self, user):
        """Accounts the user reaches: those they belong to, and every descendant of those.

        One query: an account is reachable when one of the user's memberships is on the account or one of
        its ancestors, whose paths are the account's path cut at each level (materialized path, DESIGN rule
        1): a handful of lookups on the path index and the (user, account) unique index per row, whatever
        the number of the person's memberships.
        """
        if not user.is_authenticated:
            return self.none()
        return self.reachable_by_id(user.pk)

    def reachable_by_id(self, user_id: int):
        """``reachable_by`` for a signed-in person's id."""
        from members.models import Membership

        on_prefix = (
            Membership.objects.effective().filter(user_id=user_id)
            .filter(models.Q(is_agency=False, account__path__in=ancestor_or_self_paths(OuterRef("path")))
                    | models.Q(is_agency=True, account__path=OuterRef("path")))  # agency access is not inherited
        )
        return self.filter(Exists(on_prefix))

    def delete(self, *args, **kwargs):
        """Refuse to delete any account that still has subaccounts (treebeard would cascade)."""
        blocked = [a.name for a in self.filter(numchild__gt=0).only("name")[:5]]
        if blocked:
            raise AccountHasSubaccounts(
                "Cannot delete %(names)s: move or delete its subaccounts first.",
                params={"names": ", ".join(blocked)},
            )
        return super().delete(*args, **kwargs)

    delete.alters_data = True
    delete.queryset_only = True


class AccountManager(MP_NodeManager):
    def get_queryset(self):
        return AccountQuerySet(self.model, using=self._db).order_by("path")

    def reachable_by(self, user):
        return self.get_queryset().reachable_by(user)

    def reachable_by_id(self, user_id: int):
        return self.get_queryset().reachable_by_id(user_id)


class Account(MP_Node):
    """A tenant: a root account (billed directly) or a subaccount nested under a parent.

    The tree is a materialized path (django-treebeard): ancestors are one indexed
    ``path IN (...)`` query, descendants one ``path LIKE 'prefix%'`` range query.
    ``parent`` mirrors the path for readable joins and the admin; both are only
    written by ``accounts.services``.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    steplen = STEPLEN
    node_order_by = []

    public_id = models.UUIDField("account ID", default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    # The name as duplicates are compared (R9: normalised, case-folded); kept by save() and rename.
    name_key = models.CharField(max_length=3 * NAME_MAX_LENGTH, editable=False, default="")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # The customer's own identifier (a CRM or billing id), given by ``provision_accounts`` files: unique
    # within one tree, so a rerun of the same file finds what it created instead of duplicating it.
    external_id = models.CharField("external ID", max_length=100, blank=True, default="")
    # The dashboard's first-steps checklist was put away (top-level accounts; issue 16).
    onboarding_dismissed_at = models.DateTimeField(null=True, blank=True)

    # Set by the parent: caps what this account's own members may do here (DESIGN rule 2).
    # {category: level}; a missing category is not capped. Empty on root accounts.
    access_categories = models.JSONField(default=dict, blank=True)
    # Limits of this account (null: no limit of its own; ancestors' pools still apply).
    limit_minutes = models.PositiveIntegerField("minutes per period", null=True, blank=True)
    limit_concurrent_calls = models.PositiveIntegerField("concurrent calls", null=True, blank=True)
    limit_agents = models.PositiveIntegerField("max agents", null=True, blank=True)
    limit_members = models.PositiveIntegerField("max members", null=True, blank=True)
    # What this account gives the subaccounts created under it from now on.
    default_access_categories = models.JSONField(default=dict, blank=True)
    default_limit_minutes = models.PositiveIntegerField("minutes per period", null=True, blank=True)
    default_limit_concurrent_calls = models.PositiveIntegerField("concurrent calls", null=True, blank=True)
    default_limit_agents = models.PositiveIntegerField("max agents", null=True, blank=True)
    default_limit_members = models.PositiveIntegerField("max members", null=True, blank=True)

    objects = AccountManager()

    class Meta:
        permissions = MODEL_PERMISSIONS
        constraints = [
            models.UniqueConstraint(fields=["parent", "name_key"], name="account_name_key_unique_among_siblings",
                                    violation_error_message="A sibling account already has this name."),
            # Unique per tree (the root's 4-character path step): a billing transfer moves a subtree to a tree of
            # its own, so it can never collide.
            models.UniqueConstraint(Substr("path", 1, 4), "external_id", condition=~models.Q(external_id=""),
                                    name="account_external_id_unique_per_tree",
                                    violation_error_message="Another account of this tree has this external ID."),
            models.CheckConstraint(
                condition=models.Q(parent__isnull=True, depth=1) | models.Q(parent__isnull=False, depth__gt=1),
                name="account_parent_matches_depth",
            ),
        ]
        indexes = [models.Index(fields=["parent", "name"]),
                   models.Index(fields=["external_id"], condition=~models.Q(external_id=""),
                                name="account_external_id"),
                   # a subtree's names in path order without reading the table: the Subaccounts search over a
                   # big subtree (SQLite reads it from the index alone, ~3x faster than row by row)
                   models.Index(fields=["path", "name"], name="account_subtree_names")]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        self.name_key = name_key(self.name)
        if kwargs.get("update_fields") is not None and "name" in kwargs["update_fields"]:
            kwargs["update_fields"] = {*kwargs["update_fields"], "name_key"}
        super().save(*args, **kwargs)

    def get_absolute_url(self):
        return reverse("accounts:dashboard", kwargs={"account_id": self.public_id})

    @property
    def ancestor_paths(self) -> list[str]:
        """Paths of every ancestor, root first (no query)."""
        return [self.path[:i] for i in range(self.steplen, len(self.path), self.steplen)]

    @property
    def lineage_paths(self) -> list[str]:
        """Ancestor paths plus this account's own."""
        return [*self.ancestor_paths, self.path]

    @property
    def is_subaccount(self) -> bool:
        return self.depth > 1

    @property
    def is_suspended(self) -> bool:
        return self.status == self.Status.SUSPENDED

    @property
    def email(self) -> str:
        """The billing contact: the first Owner's email (dj-stripe's subscriber needs an email)."""
        owner = self.memberships.filter(role="owner").select_related("user").order_by("created_at").first()
        return owner.user.email if owner else ""

    @property
    def billing_mode(self) -> str:
        """A subaccount is billed through its parent; a root account is billed directly.
        (A billing transfer makes a subaccount a root, so the mode follows the tree.)"""
        return "parent" if self.depth > 1 else "direct"

    @property
    def billing_mode_label(self) -> str:
        return "Parent billing" if self.depth > 1 else "Direct billing"

    @property
    def root_path(self) -> str:
        return self.path[: self.steplen]

    def limits(self) -> dict[str, int | None]:
        return {name: getattr(self, f"limit_{name}") for name in LIMIT_NAMES}

    def default_limits(self) -> dict[str, int | None]:
        return {name: getattr(self, f"default_limit_{name}") for name in LIMIT_NAMES}

    def descendants(self):
        """Every account below this one, one range query on the path index."""
        return Account.objects.filter(subtree_q(self.path), depth__gt=self.depth)

    def delete(self, *args, **kwargs):
        if self.numchild:
            raise AccountHasSubaccounts(
                "Cannot delete %(name)s while it has subaccounts: move or delete them first.",
                params={"name": self.name},
            )
        return super().delete(*args, **kwargs)


class AccountUserObjectPermission(UserObjectPermissionBase):
    """django-guardian's direct foreign-key permission row: one (user, permission, account).

    Rows hold what a person may do in an account where they are a member; they are
    written only by ``members.rows``. Inheritance down
    the tree is resolved at check time (``accounts.access``), never by copying rows.
    """

    content_object = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="user_permissions")

    class Meta(UserObjectPermissionBase.Meta):
        indexes = [models.Index(fields=["user", "content_object"])]


# Every recorded call writes a "conversation.…" event: in a busy account nearly all of them. The audit trail and
# the dashboard hide them unless asked, and read an index that holds only the others.
CONVERSATION_EVENTS = "conversation."
if set(CONVERSATION_EVENTS) & set("%_\\'"):  # written into SQL as it is (``NotConversationEvent``)
    raise ImproperlyConfigured("CONVERSATION_EVENTS must not hold what LIKE or a string literal reads otherwise.")


class NotConversationEvent(models.Expression):
    """``NOT (action LIKE 'conversation.%')`` with the pattern written into the SQL, exactly as the partial index's
    WHERE: a bound pattern would leave the planner unable to tell that the index applies (SQLite always, PostgreSQL
    in a prepared statement's generic plan), and it would read every conversation event to find the others."""

    conditional = True
    output_field = models.BooleanField()

    def __init__(self, field="action"):
        super().__init__()
        self.column = models.F(field)

    def get_source_expressions(self):
        return [self.column]

    def set_source_expressions(self, exprs):
        (self.column,) = exprs

    def as_sql(self, compiler, connection):
        column, params = compiler.compile(self.column)
        cast = "::text" if connection.vendor == "postgresql" else ""
        escape = " ESCAPE '\\'" if connection.vendor == "sqlite" else ""
        # %%: the SQL goes through the driver's parameter formatting, which writes it as one %
        return f"NOT ({column}{cast} LIKE '{CONVERSATION_EVENTS}%%'{escape})", params


class AuditEvent(models.Model):
    """Who did what, in which account, from where."""

    # indexed by the composite indexes below, which all start with it
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="audit_events", db_index=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_email = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=64)
    summary = models.CharField(max_length=255)
    data = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["account", "-created_at", "-id"]),  # the log's order, ties included
            # the log's default view and the dashboard's latest: the same order, conversation events left out
            models.Index(fields=["account", "-created_at", "-id"], name="audit_not_conversation_idx",
                         condition=~models.Q(action__startswith=CONVERSATION_EVENTS)),
            # the same across accounts: a large subtree's log, newest first, stops after its page
            models.Index(fields=["-created_at", "-id"], name="audit_recent_idx",
                         condition=~models.Q(action__startswith=CONVERSATION_EVENTS)),
            models.Index(fields=["-created_at", "-id"], name="audit_created_idx"),  # and with conversation events
            # one action in one account, newest first; the actions the filters offer (``audit.audit_actions``)
            models.Index(fields=["action", "account", "-created_at", "-id"], name="audit_action_idx"),
        ]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_email or 'system'} {self.action}"
