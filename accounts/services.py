"""Writes about the account tree. Atomic, with ``by`` named and an audit row in the same transaction."""

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Case, F, IntegerField, Max, Q, Value, When
from django.db.models.functions import Concat, Substr

from billing.rollups import rollups_follow_move
from billing.selectors import plan_for
from billing.services import subscription_start
from developers import webhooks
from developers.models import WebhookEvent
from members import entry_points
from members.grants import check_grant
from members.roles import RoleId
from members.rows import composed_categories
from members.services import account_sync_permissions, membership_add

from .audit import audit, staff_acting
from .models import (
    LIMIT_NAMES,
    NAME_MAX_LENGTH,
    NAME_MIN_LENGTH,
    Account,
    AccountHasSubaccounts,
    ids_by_path,
    subtree_q,
)
from .names import name_key, normalize_name
from .permissions import clean_matrix, compose, stored


def clean_account_name(name: str, *, parent: Account | None, exclude: Account | None = None) -> str:
    """The name as stored (R9: NFKC, no invisible, bidi control or control characters, single spaces), at
    least two characters, unique among its siblings in normalised, case-folded form."""
    name = normalize_name(name)
    if len(name) < NAME_MIN_LENGTH:
        raise ValidationError(f"Account names need at least {NAME_MIN_LENGTH} characters.", code="too_short")
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError(f"Account names can be at most {NAME_MAX_LENGTH} characters.", code="too_long")
    if parent is not None:
        siblings = Account.objects.filter(parent=parent, name_key=name_key(name))
        if exclude is not None:
            siblings = siblings.exclude(pk=exclude.pk)
        if siblings.exists():
            # Renaming (``exclude``): the person may be the account's own and not reach its parent, which the
            # message must then not name (rule 10, found by a hostile review); creating or moving under a parent
            # is done by someone who reaches it.
            if exclude is not None:
                raise ValidationError(f"Another account beside this one is already named “{name}”.",
                                      code="duplicate")
            raise ValidationError(f"{parent.name} already has a subaccount named “{name}”.", code="duplicate")
    return name


def check_can_nest_under(parent: Account) -> None:
    limit = settings.ACCOUNT_MAX_DEPTH
    if parent.depth >= limit:
        raise ValidationError(
            f"Subaccounts can be nested at most {limit} levels deep; {parent.name} is already at level "
            f"{parent.depth}.",
            code="too_deep",
        )


@transaction.atomic
def account_create(*, name: str, owner, by=None, request=None) -> Account:
    """A new independent (root) account; ``owner`` becomes its Owner."""
    name = clean_account_name(name, parent=None)
    account = Account.objects.add_root(instance=Account(name=name, created_by=by or owner))
    subscription_start(account=account)
    audit(account=account, actor=by or owner, request=request, action="account.created",
          summary=f"Account “{name}” created")
    membership_add(account=account, user=owner, role=RoleId.OWNER, by=None, request=request)
    return account


def subaccount_refusal(parent: Account, by, *, shown: bool = False) -> str | None:
    """Why ``by`` may not create a subaccount under ``parent`` now, or None when they may.

    ``by=None`` is the platform (admin, commands): only the tree and the plan apply. ``shown``: only for what a
    page shows (its create button, its banner), so the plan loaded with the request's access will do; creating
    reads the plan again under the parent's lock (a downgrade committed since the request began refuses it).
    """
    access = None
    if by is not None:
        from .access import resolve_access

        access = resolve_access(by, parent)
        if access is None or not access.has("manage_subaccounts"):
            return f"Your role in {parent.name} does not allow creating subaccounts."
    if parent.is_suspended:
        return f"{parent.name} is suspended."
    plan = access.plan if shown and access is not None else plan_for(parent)
    if plan is None or not plan.allows_subaccounts:
        return (f"The {plan.name if plan else 'current'} plan does not include subaccount management: "
                "upgrade to the Agency plan to create subaccounts.")
    if parent.depth >= settings.ACCOUNT_MAX_DEPTH:
        return (f"Subaccounts can be nested at most {settings.ACCOUNT_MAX_DEPTH} levels deep; "
                f"{parent.name} is already at level {parent.depth}.")
    return None


@transaction.atomic
def subaccount_create(*, parent: Account, name: str, by, owner=None, invite_email: str = "",
                      invite_role: str = RoleId.OWNER, staff=None, request=None) -> Account:
    """A subaccount of ``parent``, on parent billing, starting from the parent's defaults (access
    categories, never above the parent's own composed categories: rule 7; limits).

    The creator gets no membership of their own: they already reach it through the parent, and their
    access ends with their membership there (R4). ``invite_email`` invites the person who will run it
    (as ``invite_role``, within what the creator may give); ``owner`` (platform only, ``by=None``) makes a
    known person its Owner directly.
    """
    staff_data = staff_acting(by, staff)
    parent = Account.objects.select_for_update().get(pk=parent.pk)
    check_can_nest_under(parent)
    refusal = subaccount_refusal(parent, by)
    if refusal:
        raise ValidationError(refusal, code="refused")
    if owner is not None and by is not None:
        raise ValidationError("Only the platform names an Owner directly; invite the person instead.")
    name = clean_account_name(name, parent=parent)
    categories = compose(clean_matrix(parent.default_access_categories), composed_categories(parent))
    account = Account(
        name=name, parent=parent, created_by=by, access_categories=stored(categories),
        **{f"limit_{n}": getattr(parent, f"default_limit_{n}") for n in LIMIT_NAMES},
    )
    account = Account.objects.add_child(parent, instance=account)
    _clamp_limits(account, parent)
    summary = f"Subaccount “{name}” created"
    audit(account=account, actor=by or staff, request=request, action="subaccount.created", summary=summary,
          **staff_data)
    audit(account=parent, actor=by or staff, request=request, action="subaccount.created",
          summary=f"{summary} under {parent.name}", subaccount=str(account.public_id), **staff_data)
    webhooks.emit(parent, WebhookEvent.SUBACCOUNT_CREATED, {"subaccount_id": str(account.public_id),
                                                            "name": account.name, "level": account.depth})
    if owner is not None:
        membership_add(account=account, user=owner, role=RoleId.OWNER, by=None, staff=staff, request=request)
    if invite_email:
        from members.invitations import invitation_create

        invitation_create(account=account, email=invite_email, role=invite_role, by=by, request=request)
    return account


@transaction.atomic
def account_rename(*, account: Account, name: str, by, staff=None, request=None) -> Account:
    from .access import require

    staff_data = staff_acting(by, staff)
    require(by, account, "manage_settings")
    name = clean_account_name(name, parent=account.parent, exclude=account)
    if name == account.name:
        return account
    old = account.name
    Account.objects.filter(pk=account.pk).update(name=name, name_key=name_key(name))
    account.name = name
    audit(account=account, actor=by or staff, request=request, action="account.renamed",
          summary=f"Renamed “{old}” → “{name}”", old=old, new=name, **staff_data)
    return account


@transaction.atomic
def account_delete(*, account: Account, by, request=None) -> None:
    """Delete an account without subaccounts; refuses (AccountHasSubaccounts) otherwise. Not self-service:
    platform staff (the admin) or the platform itself (``by=None``) only."""
    staff_data = staff_acting(None, by, "Deleting an account is done by platform staff: contact support.")
    account = Account.objects.select_for_update().get(pk=account.pk)
    if account.numchild:
        raise AccountHasSubaccounts(
            f"Cannot delete {account.name} while it has {account.numchild} subaccount(s): "
            "move or delete them first."
        )
    if account.parent_id:
        audit(account=account.parent, actor=by, request=request, action="subaccount.deleted",
              summary=f"Subaccount “{account.name}” deleted", subaccount=str(account.public_id),
              **staff_data)  # (by: platform staff, or None)
        # Its calls go with it: the figures its rollups gave the accounts above (blocked calls; it has no usage,
        # which would protect it) leave them, as when it moves away.
        rollups_follow_move(account_id=account.pk, old_ancestor_ids=ids_by_path(account.ancestor_paths),
                            new_ancestor_ids=[])
    from workspace.models import Conversation

    Conversation.objects.filter(account=account).delete()  # first: they protect its agents and contacts
    account.delete()


def purge_refusal(account: Account) -> str | None:
    """Why the platform may not delete ``account`` outright, or None. Billing history (usage, invoices, billing
    transfers) is never deleted: an account that has some is suspended instead."""
    from billing.models import BillingTransfer, Invoice, UsageRecord

    if account.numchild:
        return f"{account.name} has {account.numchild} subaccount(s): purge or move them first."
    if UsageRecord.objects.filter(account=account).exists() or UsageRecord.objects.filter(
            billing_root=account).exists() or Invoice.objects.filter(account=account).exists():
        return (f"{account.name} has billing history (usage or invoices), which is kept: suspend it instead "
                "(suspend_account).")
    if BillingTransfer.objects.filter(from_root=account).exists() or BillingTransfer.objects.filter(
            from_parent=account).exists() or BillingTransfer.objects.filter(account=account).exists():
        return f"{account.name} is named by a billing transfer, which is kept: suspend it instead."
    return None


def purge_summary(account: Account) -> dict[str, int]:
    """What deleting ``account`` removes with it, counted (for the confirmation)."""
    from agency.models import AgencyGrant
    from members.models import Invitation, Membership
    from workspace.models import Agent, Contact, Conversation

    return {
        "membership(s)": Membership.objects.filter(account=account).count(),
        "invitation(s)": Invitation.objects.filter(account=account).count(),
        "agent(s)": Agent.objects.filter(account=account).count(),
        "contact(s)": Contact.objects.filter(account=account).count(),
        "conversation(s)": Conversation.objects.filter(account=account).count(),
        "agency grant(s)": AgencyGrant.objects.filter(client=account).count()
        + AgencyGrant.objects.filter(agency=account).count(),
        "audit row(s)": account.audit_events.count(),
    }


@transaction.atomic
def account_switched(*, user, to: Account, request=None) -> None:
    """Remember the choice (session and user) and audit it. Only an account the person reaches."""
    from .access import resolve_access

    if resolve_access(user, to) is None:
        raise PermissionDenied("You do not have access to this account.")
    if request is not None:
        request.session["last_account"] = str(to.public_id)
    if user.last_account_id != to.pk:
        user.last_account = to
        user.save(update_fields=["last_account"])
    audit(account=to, actor=user, request=request, action="account.switched",
          summary=f"{user.email} switched to {to.name}")


def _require_parent_manager(by, parent: Account) -> None:
    """Governing a subaccount takes subaccount management in its parent (inherited from above counts)."""
    from .access import require

    require(by, parent, "manage_subaccounts")


@transaction.atomic
def subaccount_set_access(*, account: Account, matrix: dict, by, staff=None, request=None) -> Account:
    """Set the categories a subaccount's own members may use. Never above what the actor holds in the parent
    nor above the parent's own composed categories (R1, R5); the rows of the whole subtree re-sync at once."""
    staff_data = staff_acting(by, staff)
    if not account.is_subaccount:
        raise ValidationError("Only subaccounts have access categories set by a parent.")
    parent = account.parent
    _require_parent_manager(by, parent)
    matrix = clean_matrix(matrix)
    check_grant(by, parent, matrix=matrix, structural=composed_categories(parent))
    old = account.access_categories
    account.access_categories = stored(matrix)
    Account.objects.filter(pk=account.pk).update(access_categories=account.access_categories)
    account_sync_permissions(account, subtree=True)
    audit(account=account, actor=by or staff, request=request, action="subaccount.access_changed",
          summary="Access categories changed", old=old, new=account.access_categories, **staff_data)
    audit(account=parent, actor=by or staff, request=request, action="subaccount.access_changed",
          summary=f"Access categories of {account.name} changed", subaccount=str(account.public_id),
          new=account.access_categories, **staff_data)
    return account


def blank_limits(parent: Account) -> dict[str, int | None]:
    """What a blank limit of a subaccount of ``parent`` becomes: the parent's default, or, with no default, the
    smallest limit of the parent's lineage (None only when the lineage has none: R1, a blank is never "more than
    the parent has")."""
    ceiling = _lineage_ceiling(parent)
    return {name: ceiling[name] if getattr(parent, f"default_limit_{name}") is None
            else getattr(parent, f"default_limit_{name}") for name in LIMIT_NAMES}


@transaction.atomic
def subaccount_set_limits(*, account: Account, limits: dict, by, staff=None, request=None) -> Account:
    """Set a subaccount's limits. ``None`` means "use the parent's default", or the most the parent's lineage
    allows when it has none (``blank_limits``, resolved now). Never above the smallest limit of the parent and
    its ancestors (R1)."""
    staff_data = staff_acting(by, staff)
    if not account.is_subaccount:
        raise ValidationError("Only subaccounts have limits set by a parent.")
    parent = account.parent
    _require_parent_manager(by, parent)
    blank = blank_limits(parent)
    values = {name: blank[name] if limits.get(name) is None else limits[name] for name in LIMIT_NAMES}
    check_grant(by, parent, limits=values)
    old = account.limits()
    Account.objects.filter(pk=account.pk).update(**{f"limit_{n}": v for n, v in values.items()})
    for name, value in values.items():
        setattr(account, f"limit_{name}", value)
    audit(account=account, actor=by or staff, request=request, action="subaccount.limits_changed",
          summary="Limits changed", old=old, new=account.limits(), **staff_data)
    audit(account=parent, actor=by or staff, request=request, action="subaccount.limits_changed",
          summary=f"Limits of {account.name} changed", subaccount=str(account.public_id),
          old=old, new=account.limits(), **staff_data)
    return account


@transaction.atomic
def subaccount_set_defaults(*, account: Account, matrix: dict, limits: dict, by, staff=None,
                            request=None) -> Account:
    """What subaccounts created under ``account`` from now on start with. Existing ones keep theirs.
    The same ceilings as setting a subaccount directly (R1, R5)."""
    staff_data = staff_acting(by, staff)
    _require_parent_manager(by, account)
    matrix = clean_matrix(matrix)
    # (a default left blank is no default: a new subaccount then takes the lineage's smallest limit, _clamp_limits)
    check_grant(by, account, matrix=matrix, structural=composed_categories(account),
                limits={name: value for name, value in limits.items() if value is not None})
    account.default_access_categories = stored(matrix)
    values = {"default_access_categories": account.default_access_categories}
    for name in LIMIT_NAMES:
        values[f"default_limit_{name}"] = limits.get(name)
        setattr(account, f"default_limit_{name}", limits.get(name))
    Account.objects.filter(pk=account.pk).update(**values)
    audit(account=account, actor=by or staff, request=request, action="subaccount.defaults_changed",
          summary="Defaults for new subaccounts changed",
          access=account.default_access_categories, limits=account.default_limits(), **staff_data)
    return account


@transaction.atomic
def subaccount_set_status(*, account: Account, suspended: bool, by, request=None) -> Account:
    """Suspend or reactivate a subaccount (and so everything below it)."""
    if not account.is_subaccount:
        raise ValidationError("Only subaccounts can be suspended by a parent.")
    _require_parent_manager(by, account.parent)
    return _set_status(account, suspended, by=by, request=request)


@transaction.atomic
def account_set_status(*, account: Account, suspended: bool, staff=None, reason: str = "",
                       request=None) -> Account:
    """The platform suspends or reactivates any account, a root included (admin action, command): its people
    can sign in but reach nothing in it or below it until it is reactivated. ``staff`` (a staff user, or None
    for a command) is named in the audit trail; ``reason`` is kept with it."""
    staff_data = staff_acting(None, staff, "Suspending an account is done by platform staff.")
    return _set_status(account, suspended, by=staff, request=request, by_platform=True, reason=reason[:300],
                       **staff_data)


def _set_status(account: Account, suspended: bool, *, by, request=None, by_platform=False, **data) -> Account:
    status = Account.Status.SUSPENDED if suspended else Account.Status.ACTIVE
    if Account.objects.select_for_update().filter(pk=account.pk).values_list("status", flat=True).get() == status:
        account.status = status
        return account
    account.status = status
    Account.objects.filter(pk=account.pk).update(status=status)
    verb = "suspended" if suspended else "reactivated"
    data = {k: v for k, v in data.items() if v}
    for target in filter(None, (account, account.parent)):
        audit(account=target, actor=by, request=request, action=f"subaccount.{verb}" if account.parent_id
              else f"account.{verb}", summary=f"{account.name} {verb}" + (" by the platform" if by_platform else ""),
              subaccount=str(account.public_id), **data)
    return account


def subtree_height(account: Account) -> int:
    """Levels from ``account`` down to its deepest descendant (1: no subaccounts). One query."""
    deepest = account.descendants().aggregate(m=Max("depth"))["m"]
    return (deepest or account.depth) - account.depth + 1


def _free_path(new_parent: Account | None) -> str:
    if new_parent is None:
        last = Account.objects.get_last_root_node()
        return last._inc_path() if last else Account._get_path(None, 1, 1)
    last = Account.objects.filter(parent=new_parent).order_by("-path").first()
    return last._inc_path() if last else Account._get_path(new_parent.path, new_parent.depth + 1, 1)


def subtree_move(account: Account, new_parent: Account | None) -> Account:
    """Move ``account`` and everything below it under ``new_parent`` (None: to the top level).

    One UPDATE rewrites the subtree's paths and depths and the account's parent together, so the
    ``parent IS NULL ⇔ depth = 1`` constraint holds after every statement. No permission check: the
    callers (billing transfer, ``subaccount_move``) decide; they run inside their transaction, with the
    rows locked. Raises ValidationError when the depth limit would be passed or the target is inside
    the subtree.
    """
    if new_parent is not None and new_parent.path.startswith(account.path):
        raise ValidationError("An account cannot be moved below itself.", code="cycle")
    new_depth = 1 if new_parent is None else new_parent.depth + 1
    if new_depth + subtree_height(account) - 1 > settings.ACCOUNT_MAX_DEPTH:
        raise ValidationError(f"Subaccounts can be nested at most {settings.ACCOUNT_MAX_DEPTH} levels deep: "
                              f"{account.name} and the {subtree_height(account) - 1} level(s) below it do not fit "
                              "there.", code="too_deep")
    old_parent_id, old_path, delta = account.parent_id, account.path, new_depth - account.depth
    old_ancestor_ids = ids_by_path(account.ancestor_paths)
    for attempt in range(3):  # another move may take the same free path first
        new_path = _free_path(new_parent)
        try:
            with transaction.atomic():
                Account.objects.filter(path__startswith=old_path).update(
                    path=Concat(Value(new_path), Substr("path", len(old_path) + 1)),
                    depth=F("depth") + delta,
                    parent_id=Case(When(pk=account.pk, then=Value(new_parent.pk if new_parent else None)),
                                   default=F("parent_id"), output_field=IntegerField()),
                )
            break
        except IntegrityError:
            if attempt == 2:
                raise
    if old_parent_id:
        Account.objects.filter(pk=old_parent_id).update(numchild=F("numchild") - 1)
    if new_parent is not None:
        Account.objects.filter(pk=new_parent.pk).update(numchild=F("numchild") + 1)
    account.refresh_from_db()
    rollups_follow_move(account_id=account.pk, old_ancestor_ids=old_ancestor_ids,
                        new_ancestor_ids=ids_by_path(account.ancestor_paths))
    entry_points.refresh_subtree(account.path)  # memberships there may now lie below another, or no longer
    return account


@transaction.atomic
def subaccount_move(*, account: Account, new_parent: Account, by, request=None) -> Account:
    """Move a subaccount and its subtree under another account of the same tree (AWS Organizations'
    "move account"). ``by`` manages subaccounts on the current parent and on the new one; the new
    parent's caps and pools apply at once; usage stays with the same root."""
    from .access import require

    # both rows locked in path order, as recording a call locks a lineage (root first): no deadlock when the
    # account moves up under one of its own ancestors while a call is recorded below it
    locked = {a.pk: a for a in Account.objects.select_for_update().filter(pk__in=[account.pk, new_parent.pk])
              .order_by("path")}
    account, new_parent = locked[account.pk], locked[new_parent.pk]
    if not account.is_subaccount:
        raise ValidationError("Only subaccounts move within a tree; use a billing transfer to make one independent.")
    if account.root_path != new_parent.root_path:
        raise ValidationError("A subaccount moves only within its own tree.", code="other_tree")
    if new_parent.pk == account.parent_id:
        raise ValidationError(f"{account.name} is already directly under {new_parent.name}.", code="same")
    old_parent = account.parent
    require(by, old_parent, "manage_subaccounts")
    require(by, new_parent, "manage_subaccounts")
    if new_parent.is_suspended:
        raise ValidationError(f"{new_parent.name} is suspended.")
    from billing.models import BillingTransfer

    live = BillingTransfer.objects.filter(status__in=BillingTransfer.OPEN)
    # (above it too: the customer accepted that subtree as it was, so nothing moves out of it meanwhile)
    if live.filter(account__path__startswith=account.path).exists() or \
            live.filter(account__path__in=[*new_parent.lineage_paths, *account.ancestor_paths]).exists():
        raise ValidationError("A billing transfer is under way in this subtree, above it or above the new parent: "
                              "finish or cancel it before moving.", code="transfer_open")
    clean_account_name(account.name, parent=new_parent)
    subtree_move(account, new_parent)
    _clamp_limits(account, new_parent, subtree=True)
    account_sync_permissions(account, subtree=True)  # the new parent's caps compose from now on (R5)
    # R6: each side's audit row names only the accounts its readers reach (the other parent may be a
    # sibling they cannot see).
    audit(account=old_parent, actor=by, request=request, action="subaccount.moved",
          summary=f"{account.name} moved to another parent", subaccount=str(account.public_id))
    audit(account=new_parent, actor=by, request=request, action="subaccount.moved",
          summary=f"{account.name} moved here", subaccount=str(account.public_id))
    audit(account=account, actor=by, request=request, action="subaccount.moved", summary="Moved to a new parent")
    return account


def _lineage_ceiling(parent: Account) -> dict[str, int | None]:
    """The smallest limit per resource of ``parent`` and its ancestors (one query)."""
    from members.grants import limit_ceiling

    return limit_ceiling([*Account.objects.filter(path__in=parent.ancestor_paths), parent])


def _clamp_limits(account: Account, parent: Account, *, subtree: bool = False) -> None:
    """R1 for limits: a subaccount never has more than its parent's lineage has itself (at creation, after a
    move). A child with no limit of its own takes the lineage's smallest one. ``subtree`` (after a move): every
    account below it too, one UPDATE per limit the new lineage has (a hostile review found the moved account's
    descendants keeping limits above their new lineage's: agents, members and calls are counted per account)."""
    ceiling = _lineage_ceiling(parent)
    if subtree:
        account.refresh_from_db(fields=["path"])  # (where the move put it)
        for name, cap_value in ceiling.items():
            if cap_value is not None:
                field = f"limit_{name}"
                Account.objects.filter(subtree_q(account.path)).filter(
                    Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__gt": cap_value})).update(**{field: cap_value})
        account.refresh_from_db(fields=[f"limit_{name}" for name in LIMIT_NAMES])
        return
    values = {}
    for name in LIMIT_NAMES:
        own, cap_value = getattr(account, f"limit_{name}"), ceiling[name]
        if cap_value is not None and (own is None or own > cap_value):
            values[f"limit_{name}"] = cap_value
    if values:
        Account.objects.filter(pk=account.pk).update(**values)
        for field, value in values.items():
            setattr(account, field, value)
