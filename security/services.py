"""Writes about sign-in security. Each names who acts (``by``) and records it."""

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction

from accounts.access import require, resolve_access
from accounts.audit import audit
from accounts.models import Account
from members.models import Membership, User
from members.roles import RoleId, get_role

from . import throttle
from .activity import event_record
from .models import SecurityEvent, SecurityPolicy


@transaction.atomic
def lockout_lift(*, by, email: str = "", ip: str = "", request=None) -> None:
    """Platform staff let an address and/or an IP sign in again at once (forgets the failures counted);
    recorded in the person's login activity (or the address's, when it belongs to no one)."""
    if not (by is not None and by.is_active and by.is_staff):
        raise PermissionDenied("Only platform staff lift sign-in lockouts.")
    throttle.clear(email=email, ip=ip)
    user = User.objects.filter(email__iexact=throttle.email_key(email)).first() if email else None
    event_record(kind=SecurityEvent.Kind.LOCKOUT_LIFTED, request=request, user=user, email=email, by=by,
                 detail=", ".join(filter(None, [email and f"address {email}", ip and f"IP {ip}"])))


POLICY_FIELDS = ("require_mfa", "mfa_deadline", "idle_timeout_minutes", "session_lifetime_hours",
                 "allowed_email_domains")


def _describe(field: str, value) -> str:
    if field == "require_mfa":
        return SecurityPolicy.MfaScope(value).label
    if field == "allowed_email_domains":
        return ", ".join(value) or "any"
    if value in (None, ""):
        return "none"
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


@transaction.atomic
def policy_update(*, account: Account, by, request=None, **values) -> SecurityPolicy:
    """Set the account's own security policy (the strictest of it and its ancestors' applies). Needs settings
    management and access of one's own (an agency user meets a client's policy, never sets it); every change
    is audited with its old and new values. Idempotent when nothing changes."""
    require(by, account, "manage_settings")
    if by is not None and resolve_access(by, account).is_delegated:
        raise PermissionDenied("The account's own Owners and Admins set its security policy; access given "
                               "through an agency meets it like everyone else's.")
    unknown = set(values) - set(POLICY_FIELDS)
    if unknown:
        raise TypeError(f"Unknown policy fields: {', '.join(sorted(unknown))}")
    policy, _ = SecurityPolicy.objects.select_for_update().get_or_create(account=account)
    if values.get("require_mfa", policy.require_mfa) == SecurityPolicy.MfaScope.NOBODY:
        values["mfa_deadline"] = None  # a deadline means nothing without a requirement
    if "allowed_email_domains" in values:
        values["allowed_email_domains"] = sorted(set(values["allowed_email_domains"] or []))
    changes = {f: (getattr(policy, f), v) for f, v in values.items() if getattr(policy, f) != v}
    if not changes:
        return policy
    for f, (_, new) in changes.items():
        setattr(policy, f, new)
    policy.updated_by = by
    policy.full_clean(exclude=["account", "updated_by"])
    policy.save()
    labels = {f: SecurityPolicy._meta.get_field(f).verbose_name for f in changes}
    audit(account=account, actor=by, request=request, action="security.policy_changed",
          summary="Security policy: " + "; ".join(
              f"{labels[f]} {_describe(f, old)} → {_describe(f, new)}" for f, (old, new) in changes.items()),
          changes={f: [_describe(f, old), _describe(f, new)] for f, (old, new) in changes.items()})
    return policy


def _refuse_mfa_reset(by, membership: Membership):
    """Why ``by`` may not reset the second factor of ``membership``'s person, or None.

    Only an Owner (with member management here), only someone they outrank, and never across tenants: the
    person's second factor guards every account they belong to, so each of their memberships must be in a
    tree the Owner owns (an agency user, or a person who also belongs elsewhere, is for platform staff)."""
    access = resolve_access(by, membership.account)
    if access is None:
        return PermissionDenied("You do not have access to this account.")
    access.require("manage_members")
    if access.role.id != RoleId.OWNER or access.is_delegated:
        return PermissionDenied("Only an Owner of this account can reset someone's second factor.")
    if membership.user_id == by.pk:
        return ValidationError("You cannot reset your own second factor here: use your profile.")
    owned = [m.account.path for m in access.memberships if m.role == RoleId.OWNER and not m.is_agency]
    owner = get_role(RoleId.OWNER)
    for m in Membership.objects.filter(user_id=membership.user_id).select_related("account"):
        if m.is_agency or not any(m.account.path.startswith(p) for p in owned):
            return PermissionDenied(f"{membership.user.email} also belongs to accounts outside yours, so their "
                                    "second factor can only be reset by platform support.")
        if get_role(m.role).priority >= owner.priority:
            return PermissionDenied(f"{membership.user.email} is an Owner: you can only reset the second factor "
                                    "of people you outrank.")
    return None


@transaction.atomic
def mfa_reset(*, membership: Membership, by, request=None) -> int:
    """An Owner removes a member's second factors (authenticator app, recovery codes, passkeys) after the
    member lost them: audited in the account, recorded in the member's login activity, the member told by
    email after commit. Returns how many authenticators were removed."""
    if by is None:
        raise PermissionDenied("Platform staff reset second factors in the admin (MFA → Authenticators).")
    refusal = _refuse_mfa_reset(by, membership)
    if refusal is not None:
        raise refusal
    target = membership.user
    removed, _ = Authenticator.objects.filter(user=target).delete()
    account = membership.account
    event_record(kind=SecurityEvent.Kind.MFA_RESET_BY_OWNER, request=request, user=target, by=by,
                 detail=f"by {by.email} in {account.name}")
    audit(account=account, actor=by, request=request, action="security.mfa_reset",
          summary=f"Second factor of {target.email} reset", user=target.email, removed=removed)
    subject = "Your two-factor authentication was reset"
    body = (f"Hello {target.display_name},\n\n{by.email}, an Owner of {account.name}, reset your two-factor "
            "authentication. Your authenticator app, recovery codes and passkeys no longer work: sign in with "
            "your password and set up a second factor again from your profile.\n\nIf you did not ask for this, "
            f"contact {by.email} or the account's other Owners.\n")
    transaction.on_commit(lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [target.email]))
    return removed
