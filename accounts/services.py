"""Writes about the account tree. Atomic, with ``by`` named and an audit row in the same transaction."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from members.roles import RoleId
from members.services import membership_add

from .audit import audit
from .models import NAME_MAX_LENGTH, NAME_MIN_LENGTH, Account, AccountHasSubaccounts


def clean_account_name(name: str, *, parent: Account | None, exclude: Account | None = None) -> str:
    """Trimmed name of at least two characters, unique (case-insensitively) among its siblings."""
    name = " ".join((name or "").split())
    if len(name) < NAME_MIN_LENGTH:
        raise ValidationError(f"Account names need at least {NAME_MIN_LENGTH} characters.", code="too_short")
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError(f"Account names can be at most {NAME_MAX_LENGTH} characters.", code="too_long")
    if parent is not None:
        siblings = Account.objects.filter(parent=parent, name__iexact=name)
        if exclude is not None:
            siblings = siblings.exclude(pk=exclude.pk)
        if siblings.exists():
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
    audit(account=account, actor=by or owner, request=request, action="account.created",
          summary=f"Account “{name}” created")
    membership_add(account=account, user=owner, role=RoleId.OWNER, by=None, request=request)
    return account


@transaction.atomic
def subaccount_create(*, parent: Account, name: str, by, owner=None, request=None) -> Account:
    """A subaccount of ``parent``; its creator (or ``owner``) becomes its Owner."""
    parent = Account.objects.select_for_update().get(pk=parent.pk)
    check_can_nest_under(parent)
    name = clean_account_name(name, parent=parent)
    account = Account.objects.add_child(parent, instance=Account(name=name, parent=parent, created_by=by))
    owner = owner or by
    if owner is not None:
        membership_add(account=account, user=owner, role=RoleId.OWNER, by=None, request=request)
    summary = f"Subaccount “{name}” created under {parent.name}"
    audit(account=account, actor=by, request=request, action="subaccount.created", summary=summary)
    audit(account=parent, actor=by, request=request, action="subaccount.created", summary=summary,
          subaccount=str(account.public_id))
    return account


@transaction.atomic
def account_rename(*, account: Account, name: str, by, request=None) -> Account:
    name = clean_account_name(name, parent=account.parent, exclude=account)
    if name == account.name:
        return account
    old = account.name
    Account.objects.filter(pk=account.pk).update(name=name)
    account.name = name
    audit(account=account, actor=by, request=request, action="account.renamed",
          summary=f"Renamed “{old}” → “{name}”", old=old, new=name)
    return account


@transaction.atomic
def account_delete(*, account: Account, by, request=None) -> None:
    """Delete an account without subaccounts; refuses (AccountHasSubaccounts) otherwise."""
    account = Account.objects.select_for_update().get(pk=account.pk)
    if account.numchild:
        raise AccountHasSubaccounts(
            f"Cannot delete {account.name} while it has {account.numchild} subaccount(s): "
            "move or delete them first."
        )
    if account.parent_id:
        audit(account=account.parent, actor=by, request=request, action="subaccount.deleted",
              summary=f"Subaccount “{account.name}” deleted", subaccount=str(account.public_id))
    account.delete()


@transaction.atomic
def account_switched(*, user, to: Account, request=None) -> None:
    """Remember the choice (session and user) and audit it."""
    if request is not None:
        request.session["last_account"] = str(to.public_id)
    if user.last_account_id != to.pk:
        user.last_account = to
        user.save(update_fields=["last_account"])
    audit(account=to, actor=user, request=request, action="account.switched",
          summary=f"{user.email} switched to {to.name}")
