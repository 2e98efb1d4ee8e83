"""Invitations: create (one or many), resend, revoke, accept.

The link carries ``public_id:nonce`` signed with a timestamp (django.core.signing): it cannot
be forged, it expires after INVITATION_MAX_AGE_DAYS, it works once (the invitation stops being
pending), and resending rotates the nonce so older links stop working. The invitation names
its account, so a token for account B can only ever join B.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.defaultfilters import pluralize
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.access import require
from accounts.audit import audit
from accounts.links import LinkExpired, LinkInvalid, link_token, link_url, link_value
from accounts.models import Account
from security.policy import domain_problem, effective_policy

from .emails import clean_email
from .grants import check_grant, delegation_of
from .models import Invitation, Membership, User, UserManager, new_nonce
from .roles import RoleId, get_role
from .services import check_member_limit, membership_add

SALT = "members.invitation"


class InvitationInvalid(Exception):
    """A link that cannot be used; the message says why, for the person holding it."""


def invitation_token(invitation: Invitation) -> str:
    return link_token(SALT, invitation)


def invitation_url(invitation: Invitation, request=None) -> str:
    return link_url(reverse("invitation-accept", kwargs={"token": invitation_token(invitation)}), request)


def invitation_from_token(token: str) -> Invitation:
    try:
        public_id, nonce = link_value(SALT, token, max_age=timedelta(days=settings.INVITATION_MAX_AGE_DAYS))
    except LinkExpired as exc:
        raise InvitationInvalid("This invitation link has expired. Ask for a new invitation.") from exc
    except LinkInvalid as exc:
        raise InvitationInvalid("This invitation link is not valid. Check that you copied all of it.") from exc
    invitation = Invitation.objects.select_related("account", "invited_by").filter(public_id=public_id).first()
    if invitation is None:
        raise InvitationInvalid("This invitation no longer exists.")
    if invitation.status == Invitation.Status.ACCEPTED:
        raise InvitationInvalid("This invitation has already been used.")
    if invitation.status == Invitation.Status.REVOKED:
        raise InvitationInvalid("This invitation was withdrawn by the account's team.")
    if nonce != invitation.nonce:
        raise InvitationInvalid("A newer invitation was sent to you: use the link in the latest email.")
    if invitation.is_expired:
        raise InvitationInvalid("This invitation link has expired. Ask for a new invitation.")
    _sender_still_may(invitation)
    _domain_still_allowed(invitation)
    return invitation


def _send(invitation: Invitation, request=None) -> None:
    """Render and send after commit, so no email goes out for a change that rolled back."""
    context = {
        "invitation": invitation,
        "url": invitation_url(invitation, request),
        "inviter": invitation.invited_by.display_name if invitation.invited_by else "The team",
        "days": settings.INVITATION_MAX_AGE_DAYS,
    }
    subject = f"You're invited to join {invitation.account.name} on Agency Console"
    text = render_to_string("members/email/invitation.txt", context)
    html = render_to_string("members/email/invitation.html", context)

    def send():
        message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [invitation.email])
        message.attach_alternative(html, "text/html")
        message.send()

    transaction.on_commit(send)


def _validate_role(account: Account, role: str, is_agency: bool, by) -> None:
    """The role must be one ``by`` may give here (R1: the one grant rule), and agency users come with the
    Agency Admin role only, into independent accounts only."""
    check_grant(by, account, role=role)
    if is_agency != (role == RoleId.AGENCY_ADMIN):
        raise ValidationError("Agency users join with the Agency Admin role, and only agency users have it.")
    if is_agency and account.is_subaccount:
        raise ValidationError("Agency users can only be invited to independent (directly billed) accounts.")


def _email_problem(account: Account, email: str) -> str | None:
    try:
        clean_email(email)
    except ValidationError as exc:
        return f"is not a valid email address: {' '.join(exc.messages)}"
    if Membership.objects.filter(account=account, user__email__iexact=email).exists():
        return f"is already a member of {account.name}."
    if Invitation.objects.filter(account=account, email__iexact=email, status=Invitation.Status.PENDING).exists():
        return "already has a pending invitation. Resend it instead."
    return None


def _pending_count(account: Account) -> int:
    return Invitation.objects.filter(account=account, status=Invitation.Status.PENDING,
                                     expires_at__gt=timezone.now()).count()


@transaction.atomic
def invitation_create(*, account: Account, email: str, role: str, by, is_agency: bool = False,
                      request=None) -> Invitation:
    require(by, account, "manage_members")
    account = Account.objects.select_for_update().get(pk=account.pk)
    email = clean_email(email)  # R9: at most 254 characters, a valid IDNA domain, nothing invisible
    _validate_role(account, role, is_agency, by)
    problem = domain_problem(account, email) or _email_problem(account, email)
    if problem:
        raise ValidationError(f"{email} {problem}", code="email")
    check_member_limit(account, adding=_pending_count(account) + 1)
    via_agency, via_grant = delegation_of(by, account)
    invitation = Invitation.objects.create(account=account, email=email, role=role, is_agency=is_agency,
                                           invited_by=by, sent_by_platform=by is None, via_agency=via_agency,
                                           via_grant_id=via_grant)
    audit(account=account, actor=by, request=request, action="invitation.sent",
          summary=f"Invited {email} as {get_role(role).name}" + (" (agency user)" if is_agency else ""),
          email=email, role=role)
    _send(invitation, request)
    return invitation


@dataclass(frozen=True)
class LineError:
    line: int
    email: str
    message: str


class BulkInviteError(ValidationError):
    def __init__(self, errors: list[LineError]):
        self.line_errors = errors
        super().__init__([f"Line {e.line}: {e.email} {e.message}" for e in errors])


def parse_email_lines(text: str) -> list[tuple[int, str]]:
    """(line number, normalized email) for every non-blank line; commas and semicolons split too."""
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        for part in line.replace(";", ",").split(","):
            if part.strip():
                rows.append((number, UserManager.normalize(part)))
    return rows


MAX_BULK = 200


@transaction.atomic
def invitations_create_bulk(*, account: Account, text: str, role: str, by, request=None) -> list[Invitation]:
    """All or nothing: every line is checked first; any problem raises BulkInviteError listing them all."""
    require(by, account, "manage_members")
    account = Account.objects.select_for_update().get(pk=account.pk)
    _validate_role(account, role, False, by)
    rows = parse_email_lines(text)
    if not rows:
        raise ValidationError("Enter at least one email address, one per line.")
    if len(rows) > MAX_BULK:
        raise ValidationError(f"At most {MAX_BULK} invitations at once; you entered {len(rows)}.")
    errors, seen = [], set()
    policy = effective_policy(account)  # allowed email domains: one query for the whole list
    for line, email in rows:
        problem = ("appears twice in the list." if email in seen
                   else domain_problem(account, email, policy) or _email_problem(account, email))
        seen.add(email)
        if problem:
            errors.append(LineError(line, email, problem))
    if errors:
        raise BulkInviteError(errors)
    check_member_limit(account, adding=_pending_count(account) + len(rows))
    invitations = []
    via_agency, via_grant = delegation_of(by, account)
    for _, email in rows:
        invitation = Invitation.objects.create(account=account, email=email, role=role, invited_by=by,
                                               sent_by_platform=by is None, via_agency=via_agency,
                                               via_grant_id=via_grant)
        _send(invitation, request)
        invitations.append(invitation)
    audit(account=account, actor=by, request=request, action="invitation.sent",
          summary=f"Invited {len(rows)} {pluralize(len(rows), 'person,people')} as {get_role(role).name}",
          emails=[e for _, e in rows], role=role)
    return invitations


def _pending(invitation: Invitation) -> Invitation:
    locked = Invitation.objects.select_for_update(of=("self",)).select_related("account").get(pk=invitation.pk)
    if locked.status != Invitation.Status.PENDING:
        raise ValidationError(f"This invitation is already {locked.get_status_display().lower()}.")
    return locked


# Sending again floods nobody's inbox: at most once a minute, and at most this many emails per invitation (the
# counter is a small integer: without a cap, the 32,768th resend was a server error).
RESEND_INTERVAL = timedelta(minutes=1)
MAX_SENDS = 10


@transaction.atomic
def invitation_resend(*, invitation: Invitation, by, staff=None, request=None) -> Invitation:
    """Send again with a fresh link and a fresh expiry; the previous link stops working. ``by=None`` is the
    platform; ``staff`` then names the staff member in the audit trail. Not within ``RESEND_INTERVAL`` of the
    last email, nor after ``MAX_SENDS`` of them (whoever asks: the limit protects the invitee)."""
    invitation = _pending(invitation)
    require(by, invitation.account, "manage_members")
    _validate_role(invitation.account, invitation.role, invitation.is_agency, by)
    if invitation.send_count >= MAX_SENDS:
        raise ValidationError(f"The invitation to {invitation.email} has been sent {invitation.send_count} times "
                              "already. Check the address; withdraw it and invite again if it is right.")
    if timezone.now() - invitation.last_sent_at < RESEND_INTERVAL:
        raise ValidationError(f"The invitation to {invitation.email} was sent less than a minute ago: give it a "
                              "moment to arrive (check the spam folder) before sending it again.")
    invitation.nonce = new_nonce()
    invitation.last_sent_at = timezone.now()
    invitation.expires_at = invitation.last_sent_at + timedelta(days=settings.INVITATION_MAX_AGE_DAYS)
    invitation.send_count += 1
    invitation.save(update_fields=["nonce", "last_sent_at", "expires_at", "send_count"])
    audit(account=invitation.account, actor=by or staff, request=request, action="invitation.resent",
          summary=f"Invitation to {invitation.email} sent again", email=invitation.email)
    _send(invitation, request)
    return invitation


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, by, staff=None, request=None) -> Invitation:
    invitation = _pending(invitation)
    require(by, invitation.account, "manage_members")
    _validate_role(invitation.account, invitation.role, invitation.is_agency, by)
    invitation.status = Invitation.Status.REVOKED
    invitation.save(update_fields=["status"])
    audit(account=invitation.account, actor=by or staff, request=request, action="invitation.revoked",
          summary=f"Invitation to {invitation.email} withdrawn", email=invitation.email)
    return invitation


def agency_accounts_of(user: User) -> list[Account]:
    """Independent accounts the person may represent as an agency (they manage members there)."""
    from accounts.access import resolve_access

    candidates = Account.objects.filter(depth=1, memberships__user=user, memberships__is_agency=False).distinct()
    return [a for a in candidates.order_by("name") if (acc := resolve_access(user, a)) and acc.has("manage_members")]


def _sender_still_may(invitation: Invitation) -> None:
    """R3: an invitation is only as good as its sender's right to give that role now (a demoted or removed
    sender, or an agency whose access ended, takes the invitation's power with them)."""
    if invitation.sent_by_platform:
        return  # sent by the platform (admin, commands)
    sender = invitation.invited_by
    if sender is None:
        raise InvitationInvalid("This invitation can no longer be used: the person who sent it no longer has an "
                                "account here. Ask the account's team for a new invitation.")
    sender = User.objects.get(pk=sender.pk)  # fresh: access is cached per user object
    try:
        check_grant(sender, invitation.account, role=invitation.role)
    except PermissionDenied as exc:
        raise InvitationInvalid(
            f"This invitation can no longer be used: the person who sent it can no longer add people to "
            f"{invitation.account.name} as {get_role(invitation.role).name}. Ask the account's team for a new "
            "invitation.") from exc


def _domain_still_allowed(invitation: Invitation) -> None:
    """An invitation sent before the account (or one above it) limited invitations to some email domains stops
    working for an address outside them. The platform's own invitations (provisioning) are not re-checked."""
    if invitation.sent_by_platform:
        return
    if domain_problem(invitation.account, invitation.email):
        raise InvitationInvalid(f"This invitation can no longer be used: {invitation.account.name} now accepts "
                                f"invitations only for addresses at some email domains, and {invitation.email} is "
                                "not at one of them. Ask the account's team.")


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User, agency_account: Account | None = None,
                      request=None) -> Membership:
    """Join the invitation's account as ``user`` (whose email must be the invited one). An agency
    user names their agency's own account, which gets (or keeps) an active grant on the client."""
    invitation = _pending(invitation)
    if invitation.is_expired:
        raise ValidationError("This invitation link has expired. Ask for a new invitation.")
    if UserManager.normalize(user.email) != invitation.email:
        raise ValidationError(f"This invitation is for {invitation.email}, but you are signed in as {user.email}.")
    try:
        _sender_still_may(invitation)
        _domain_still_allowed(invitation)
    except InvitationInvalid as exc:
        raise ValidationError(str(exc)) from exc
    grant = None
    if invitation.is_agency:
        if agency_account is None or agency_account not in agency_accounts_of(user):
            raise ValidationError("Choose the agency account you work for (one where you manage members).")
        from agency.services import access_activate_for_invitation

        grant = access_activate_for_invitation(client=invitation.account, agency=agency_account, by=user,
                                               granted_by=invitation.invited_by,
                                               by_platform=invitation.sent_by_platform, request=request)
    membership = membership_add(account=invitation.account, user=user, role=invitation.role, by=None,
                                is_agency=invitation.is_agency, agency_account=agency_account,
                                via_agency=invitation.via_agency and not invitation.is_agency,
                                via_grant=grant or invitation.via_grant_id, request=request)
    Membership.objects.filter(pk=membership.pk).update(created_by=invitation.invited_by)  # who brought them in
    membership.created_by = invitation.invited_by
    if invitation.is_agency:
        from members.services import account_sync_permissions

        account_sync_permissions(invitation.account)  # agency access is on: the agency settings now apply
    invitation.status = Invitation.Status.ACCEPTED
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["status", "accepted_at", "accepted_by"])
    audit(account=invitation.account, actor=user, request=request, action="invitation.accepted",
          summary=f"{user.email} accepted the invitation and joined as {get_role(invitation.role).name}",
          email=user.email)
    return membership


@transaction.atomic
def invitation_accept_signup(*, invitation: Invitation, name: str, password: str, agency_name: str = "",
                             request=None) -> Membership:
    """R8: a new person accepts: their user (and, for an agency user, their agency's account) and the
    membership are created together or not at all. Of concurrent acceptances of one link, the first wins
    and the others get ``ValidationError`` (the invitation row is locked first), never an orphan user."""
    invitation = _pending(invitation)
    if User.objects.filter(email__iexact=invitation.email).exists():
        raise ValidationError("An account with this email already exists: sign in to accept the invitation.")
    if invitation.is_agency:
        from .services import user_signup

        user, agency_account = user_signup(email=invitation.email, name=name, password=password,
                                           account_name=agency_name, request=request, email_verified=True)
    else:
        user, agency_account = User.objects.create_user(email=invitation.email, password=password, name=name,
                                                            email_verified=True), None
    return invitation_accept(invitation=invitation, user=user, agency_account=agency_account, request=request)
