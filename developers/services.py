"""Writes about API keys: atomic, audited, permission checked here (views and commands call these)."""

import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.access import require
from accounts.audit import audit
from accounts.models import Account
from accounts.permissions import CATEGORIES, Level, Matrix, clean_matrix, stored
from members.grants import check_grant

from . import keys
from .models import ApiKey

LABEL_MAX_LENGTH = 100


def scope_matrix(scopes: dict) -> Matrix:
    """The cap a key's stored scopes put on its creator's access: the listed categories at their level,
    every other category at None. No scopes: no cap (an empty matrix)."""
    if not scopes:
        return {}
    listed = clean_matrix(scopes)
    return {c.key: listed.get(c.key, Level.NONE) for c in CATEGORIES}


def _clean_scopes(scopes: dict | None) -> dict:
    try:
        matrix = clean_matrix(scopes or {})
    except ValueError as exc:
        raise ValidationError({"scopes": str(exc)}) from exc
    return stored({k: v for k, v in matrix.items() if v > Level.NONE})


def _clean_label(label: str) -> str:
    label = " ".join((label or "").split())
    if not label:
        raise ValidationError({"label": "Give the key a label, e.g. “Production server”."})
    if len(label) > LABEL_MAX_LENGTH:
        raise ValidationError({"label": f"At most {LABEL_MAX_LENGTH} characters."})
    return label


def _clean_expiry(expires_at: datetime.datetime | None) -> datetime.datetime | None:
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "Choose an expiry in the future."})
    return expires_at


@transaction.atomic
def apikey_create(*, account: Account, by, label: str, expires_at=None, scopes: dict | None = None,
                  request=None) -> tuple[ApiKey, str]:
    """A new key of ``account`` acting as ``by``; returns it with the full key, which is never shown again.
    Scopes never above what ``by`` holds there (R1, ``check_grant``)."""
    require(by, account, "manage_developer_tools")
    label = _clean_label(label)
    expires_at = _clean_expiry(expires_at)
    scopes = _clean_scopes(scopes)
    if scopes:
        check_grant(by, account, matrix=scope_matrix(scopes))
    prefix = keys.new_prefix()
    while ApiKey.objects.filter(prefix=prefix).exists():
        prefix = keys.new_prefix()
    secret = keys.new_secret()
    key = ApiKey.objects.create(account=account, prefix=prefix, secret_hash=keys.secret_hash(prefix, secret),
                                label=label, scopes=scopes, created_by=by, expires_at=expires_at)
    audit(account=account, actor=by, request=request, action="api_key.created",
          summary=f"API key “{label}” ({key.partial}) created", key=prefix, scopes=scopes,
          expires_at=expires_at.isoformat() if expires_at else None)
    return key, keys.full_key(prefix, secret)


def _extends(key: ApiKey, expires_at: datetime.datetime | None) -> bool:
    """Whether ``expires_at`` gives the key time it does not have: no expiry where it had one, or a later one."""
    return key.expires_at is not None and (expires_at is None or expires_at > key.expires_at)


def _only_the_creator(key: ApiKey, by, doing: str) -> None:
    """A key acts with its creator's access (DESIGN, "Developers' access"). Bringing one back into force
    (reactivating it, giving it more time) hands that access on again, so only its creator may, or the platform
    (``by=None``): another manager of developer tools, an agency user say, would otherwise revive an Owner's
    revoked key and act as that Owner. Anyone who manages developer tools can still revoke it or shorten it."""
    if by is not None and by.pk != key.created_by_id:
        creator = key.created_by.email if key.created_by else "a deleted user"
        raise PermissionDenied(f"Only its creator ({creator}) can {doing} API key “{key.label}”: it acts with "
                               "their access. Create a key of your own instead.")


@transaction.atomic
def apikey_update(*, key: ApiKey, by, label: str, expires_at=None, request=None) -> ApiKey:
    """Change a key's label and expiry (the key itself and its account never change). A later expiry, or none
    where it had one, only by the key's creator (``_only_the_creator``)."""
    require(by, key.account, "manage_developer_tools")
    label = _clean_label(label)
    if expires_at != key.expires_at:
        expires_at = _clean_expiry(expires_at)
        if _extends(key, expires_at):
            _only_the_creator(key, by, "extend")
    changed = {k: v for k, v in (("label", label), ("expires_at", expires_at)) if getattr(key, k) != v}
    if changed:
        ApiKey.objects.filter(pk=key.pk).update(**changed)
        for k, v in changed.items():
            setattr(key, k, v)
        audit(account=key.account, actor=by, request=request, action="api_key.updated",
              summary=f"API key “{key.label}” ({key.partial}) updated", key=key.prefix, fields=sorted(changed))
    return key


@transaction.atomic
def apikey_set_revoked(*, key: ApiKey, revoked: bool, by, request=None) -> ApiKey:
    """Revoke a key (it stops working at once, and stays listed) or reactivate a revoked one (its creator only:
    ``_only_the_creator``)."""
    require(by, key.account, "manage_developer_tools")
    key = ApiKey.objects.select_for_update(of=("self",)).select_related("created_by").get(pk=key.pk)
    if (key.revoked_at is not None) == revoked:
        return key
    if not revoked:
        _only_the_creator(key, by, "reactivate")
    key.revoked_at = timezone.now() if revoked else None
    key.save(update_fields=["revoked_at"])
    verb = "revoked" if revoked else "reactivated"
    audit(account=key.account, actor=by, request=request, action=f"api_key.{verb}",
          summary=f"API key “{key.label}” ({key.partial}) {verb}", key=key.prefix)
    return key
