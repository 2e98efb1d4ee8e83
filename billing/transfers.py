"""Billing transfer: a subaccount (with its subtree) becomes an independent, directly billed account.

- ``transfer_start``: someone holding billing and subaccount management on the parent proposes it
  (billing owner, plan, cut-over, whether the agency keeps access). Nothing changes yet.
- The billing owner gets a signed, single-use, expiring link (like invitations) and accepts
  (``transfer_accept``) or declines; the parent can cancel while it is open.
- ``transfer_apply`` is the switch: one transaction with the lineage rows locked root first, so two
  transfers in one tree (or metering in it) are serialized; it re-checks that the tree is as it was.
  Idempotent: applying a completed transfer returns it unchanged. Any failure (Stripe included)
  rolls everything back and the transfer stays open for a retry.

Usage is attributed to whoever pays at the moment it is recorded: up to the cut-over the old root,
after it the new one (``UsageRecord.billing_root``), so the two invoices together hold exactly the
usage there was.
"""

import datetime
import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from accounts.access import resolve_access
from accounts.audit import audit, staff_acting
from accounts.baked import Baked
from accounts.links import LinkExpired, LinkInvalid, link_token, link_url, link_value
from accounts.models import LIMIT_NAMES, Account, subtree_bounds, subtree_q
from accounts.services import subtree_move
from developers import webhooks
from developers.models import WebhookEvent
from members.emails import clean_email
from members.grants import check_grant
from members.models import Membership, User, new_nonce
from members.roles import ROLES, RoleId
from members.rows import account_sync_permissions
from members.services import membership_add, membership_end

from .models import BillingTransfer, Plan, period_start
from .services import subscription_start
from .stripe_sync import BillingProviderError

log = logging.getLogger(__name__)
SALT = "billing.transfer"
AGENCY_ADMIN_PRIORITY = ROLES[RoleId.AGENCY_ADMIN].priority


class TransferInvalid(Exception):
    """A link that cannot be used; the message says why, for the person holding it."""


# ---- who may, and what ------------------------------------------------------------------------

def transfer_permission_refusal(account: Account, by) -> str | None:
    """Why ``by`` may not start (or cancel) a billing transfer of ``account``, or None. ``by=None``: the platform."""
    if by is None or not account.is_subaccount:
        return None
    access = resolve_access(by, account.parent)
    if access is None or not access.has("manage_billing", "manage_subaccounts"):
        return (f"Starting a billing transfer takes billing and subaccount management in {account.parent.name}; "
                "your access there does not include both.")
    return None


def _transfer_under_way_query(lineage_paths, low, high, now):
    live = Q(status=BillingTransfer.Status.SCHEDULED) | Q(status=BillingTransfer.Status.PENDING, expires_at__gt=now)
    return (BillingTransfer.objects.filter(live)
            .filter(Q(account__path__in=lineage_paths) | Q(account__path__gte=low, account__path__lte=high))
            .order_by("-created_at")[:1])  # (as the model orders them: the latest)


# A live transfer above, here or below (the subaccount tabs and the wizard ask): compiled once.
_transfer_under_way = Baked(_transfer_under_way_query)


def transfer_refusal(account: Account, by) -> str | None:
    """Why a billing transfer of ``account`` cannot start now (the person's rights included), or None."""
    if not account.is_subaccount:
        return f"{account.name} is already independent and billed directly."
    permission = transfer_permission_refusal(account, by)
    if permission:
        return permission
    if account.is_suspended:
        return f"{account.name} is suspended: reactivate it first."
    busy = next(iter(_transfer_under_way([*account.ancestor_paths, account.path], *subtree_bounds(account.path),
                                         timezone.now())), None)
    if busy is not None:
        if busy.account_id == account.pk:
            return f"{account.name} already has a billing transfer under way."
        return "An account above or below this one has a billing transfer under way: finish or cancel it first."
    return None


def plan_refusal(account: Account, plan: Plan) -> str | None:
    """A plan the account can stand on alone: one that allows subaccounts if it has any."""
    if account.numchild and not plan.allows_subaccounts:
        return (f"{account.name} has subaccounts, which the {plan.name} plan does not include: choose a plan "
                "with subaccount management.")
    return None


def agency_candidates(account: Account):
    """People who may keep access as agency members: direct Owners and Admins of the tree's root (the agency
    account the new grant joins them to; an agency membership counts only while its person belongs to the
    agency) who hold every permission of Agency Admin on the account now, so Agency Admin gives none of them more
    (R1): a root that is itself a client under agency access caps its own people by its agency settings."""
    people = (User.objects.filter(memberships__account__path=account.root_path,
                                  memberships__role__in=[RoleId.OWNER, RoleId.ADMIN], memberships__is_agency=False,
                                  memberships__via_agency=False, is_active=True)
              .distinct().order_by("email"))
    needed = ROLES[RoleId.AGENCY_ADMIN].permissions
    holding = [u.pk for u in people if (found := resolve_access(u, account)) and needed <= found.permissions]
    return people.filter(pk__in=holding)


def provider_memberships(account: Account, billing_owner_email: str = ""):
    """Memberships inside ``account``'s subtree held by people of the tree above it (a membership on one of its
    ancestors: its provider's people, who reached it from above), but the billing owner's. They end at the switch,
    whatever is kept: a kept person's access is the agency membership on the account itself, and agency access is
    not inherited below it, so a direct membership below would outlive the agency's revocation (rule 8)."""
    above = Membership.objects.filter(account__path__in=account.ancestor_paths).values("user_id")
    found = Membership.objects.filter(subtree_q(account.path, "account__path"), user_id__in=above)
    if billing_owner_email:
        found = found.exclude(user__email__iexact=billing_owner_email)
    return found.select_related("user", "account").order_by("user__email", "account__path")


def departed_names(root_id: int, ids) -> dict[int, str]:
    """The names that accounts of ``ids`` had when a billing transfer took them out of ``root_id``'s tree (the
    latest transfer's), for the former payer's statement lines; the current name of any it does not hold (a
    transfer completed before names were kept). One query, two with the latter."""
    ids, found = set(ids), {}
    for names in (BillingTransfer.objects.filter(from_root_id=root_id, status=BillingTransfer.Status.COMPLETED)
                  .order_by("completed_at").values_list("subtree_names", flat=True)):
        found.update((int(pk), name) for pk, name in names.items() if int(pk) in ids)
    if ids - set(found):
        found.update(Account.objects.filter(pk__in=ids - set(found)).values_list("pk", "name"))
    return found


def billing_owner_candidates(account: Account):
    """The subaccount's own people (not agency users): one of them may become its billing owner."""
    return (User.objects.filter(memberships__account=account, memberships__is_agency=False, is_active=True)
            .order_by("email"))


# ---- the link ---------------------------------------------------------------------------------------

def transfer_token(transfer: BillingTransfer) -> str:
    return link_token(SALT, transfer)


def transfer_url(transfer: BillingTransfer, request=None) -> str:
    return link_url(reverse("billing:transfer-accept", kwargs={"token": transfer_token(transfer)}), request)


def transfer_from_token(token: str) -> BillingTransfer:
    max_age = datetime.timedelta(days=settings.BILLING_TRANSFER_MAX_AGE_DAYS)
    try:
        public_id, nonce = link_value(SALT, token, max_age=max_age)
    except LinkExpired as exc:
        raise TransferInvalid("This link has expired. Ask the account's provider to start the transfer again.") from exc
    except LinkInvalid as exc:
        raise TransferInvalid("This link is not valid. Check that you copied all of it.") from exc
    transfer = (BillingTransfer.objects.select_related("account", "from_parent", "from_root", "plan", "created_by")
                .filter(public_id=public_id).first())
    if transfer is None or nonce != transfer.nonce:
        raise TransferInvalid("This billing transfer no longer exists.")
    if transfer.is_expired:
        raise TransferInvalid("This billing transfer has expired. Ask the account's provider to start it again.")
    if transfer.status != BillingTransfer.Status.PENDING:
        raise TransferInvalid(f"This billing transfer is already {transfer.get_status_display().lower()}.")
    return transfer


def _email(subject: str, body: str, to: list[str]) -> None:
    recipients = [t for t in to if t]
    if recipients:
        transaction.on_commit(lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients))


def _managers_emails(account: Account) -> list[str]:
    return list(Membership.objects.filter(account=account, role__in=[RoleId.OWNER, RoleId.ADMIN], is_agency=False)
                .values_list("user__email", flat=True))


# ---- start, cancel, decline, accept ------------------------------------------------------------

def _lock_lineage(account: Account) -> list[Account]:
    """Lock the account's lineage rows, root first: the one order metering, starts and switches all use, so
    two of them in one tree run one after the other."""
    return list(Account.objects.select_for_update().filter(path__in=account.lineage_paths).order_by("path"))


@transaction.atomic
def transfer_start(*, account: Account, by, billing_owner_email: str, plan: Plan,
                   cutover: str = BillingTransfer.Cutover.NOW, keep_agency_access: bool = False, agency_people=(),
                   agency_expires_at=None, staff=None, notify: bool = True, request=None) -> BillingTransfer:
    """Propose the transfer; the billing owner is emailed a link (unless ``notify`` is off: staff accepting
    for them at once). Nothing else changes until they accept. ``staff``: the platform staff member acting
    for the platform (``by=None``), named in the audit trail."""
    staff_data = staff_acting(by, staff)
    lineage = _lock_lineage(account)
    account = next((a for a in lineage if a.pk == account.pk), None) or Account.objects.get(pk=account.pk)
    permission = transfer_permission_refusal(account, by)
    if permission:
        raise PermissionDenied(permission)
    refusal = transfer_refusal(account, by) or plan_refusal(account, plan)
    if refusal:
        raise ValidationError(refusal)
    email = clean_email(billing_owner_email)
    _check_may_name_owner(by, account, email)
    for stale in BillingTransfer.objects.filter(account=account, status=BillingTransfer.Status.PENDING,
                                                expires_at__lte=timezone.now()):
        _end(stale, BillingTransfer.Status.EXPIRED, request=request,
             summary=f"Billing transfer of {account.name} expired: the customer did not answer")
    if cutover not in BillingTransfer.Cutover.values:
        raise ValidationError("Choose when the transfer takes effect.")
    people = list(agency_people) if keep_agency_access else []
    if people:
        if by is not None and not resolve_access(by, account.parent).has("manage_members"):
            raise PermissionDenied("Choosing who keeps access takes member management in the parent account.")
        allowed = set(agency_candidates(account).values_list("pk", flat=True))
        if any(u.pk not in allowed for u in people):
            raise ValidationError("Only Owners and Admins of the agency's own account who hold every permission of "
                                  "Agency Admin here can keep access as agency members.")
    if agency_expires_at is not None and agency_expires_at <= timezone.now():
        raise ValidationError("The agency access expiry must be in the future.")
    transfer = BillingTransfer.objects.create(
        account=account, from_root=lineage[0] if lineage else Account.objects.get(path=account.root_path),
        from_parent=account.parent, billing_owner_email=email, plan=plan, cutover=cutover,
        keep_agency_access=keep_agency_access, agency_people=[u.pk for u in people],
        agency_expires_at=agency_expires_at, nonce=new_nonce(), created_by=by,
    )
    summary = f"Billing transfer started: {account.name} to become independent, waiting for {email}"
    for target in (account, account.parent):
        audit(account=target, actor=by or staff, request=request, action="billing.transfer_started",
              summary=summary, transfer=str(transfer.public_id), **staff_data)
    if notify:
        _email(f"{account.name} can become an independent account",
               f"You are asked to take over billing for {account.name} on the {plan.name} plan.\n\n"
               f"Review and accept (or decline) here: {transfer_url(transfer, request)}\n\n"
               f"The link works once and expires on {transfer.expires_at:%Y-%m-%d}.", [email])
    return transfer


def _check_may_name_owner(by, account: Account, email: str) -> None:
    """R1: the billing owner becomes the account's Owner, so whoever starts (or, re-checked later, still
    stands behind) the transfer must be able to give the Owner role there, unless that person already is
    one of its Owners."""
    if by is None:
        return
    if Membership.objects.filter(account=account, user__email__iexact=email, role=RoleId.OWNER,
                                 is_agency=False, via_agency=False).exists():
        return
    try:
        check_grant(by, account, role=RoleId.OWNER)
    except PermissionDenied as exc:
        raise PermissionDenied(f"The billing owner becomes Owner of {account.name}, a role you cannot give: "
                               "choose one of its current Owners, or ask an Owner above to start the transfer.") \
            from exc


def _starter_refusal(transfer: BillingTransfer) -> str | None:
    """R3 for transfers: the transfer is only as good as its starter's rights now (removed, demoted, or the
    account suspended above since), re-checked at acceptance and at the switch."""
    if transfer.account.is_suspended or Account.objects.filter(path__in=transfer.account.ancestor_paths,
                                                                  status=Account.Status.SUSPENDED).exists():
        return f"{transfer.account.name} or an account above it is suspended."
    if transfer.created_by_id is None:
        return None  # started by the platform (staff, commands)
    starter = User.objects.get(pk=transfer.created_by_id)  # fresh: access is cached per user object
    refusal = transfer_permission_refusal(transfer.account, starter)
    if refusal is None:
        try:
            _check_may_name_owner(starter, transfer.account, transfer.billing_owner_email)
        except PermissionDenied as exc:
            refusal = str(exc)
    if refusal:
        return ("The person who started this transfer no longer has the rights to do so: ask the account's "
                "provider to start it again.")
    return None


def _locked(transfer: BillingTransfer) -> BillingTransfer:
    return (BillingTransfer.objects.select_for_update(of=("self",))
            .select_related("account", "from_parent", "from_root", "plan").get(pk=transfer.pk))


@transaction.atomic
def transfer_cancel(*, transfer: BillingTransfer, by, staff=None, request=None) -> BillingTransfer:
    """The parent withdraws an open transfer (billing and subaccount management there); the billing owner
    is told their link no longer works. ``by=None`` is the platform; ``staff``, the staff member acting for it,
    is named in the audit trail."""
    staff_data = staff_acting(by, staff)
    transfer = _locked(transfer)
    if by is not None:
        access = resolve_access(by, transfer.from_parent)
        if access is None or not access.has("manage_billing", "manage_subaccounts"):
            raise PermissionDenied("Cancelling a billing transfer takes billing and subaccount management in "
                                   f"{transfer.from_parent.name}.")
    if not transfer.is_open:
        raise ValidationError(f"This transfer is already {transfer.get_status_display().lower()}.")
    _end(transfer, BillingTransfer.Status.CANCELLED, by=by, actor=by or staff, request=request,
         summary=f"Billing transfer of {transfer.account.name} cancelled", **staff_data)
    _email(f"The billing transfer of {transfer.account.name} was withdrawn",
           f"The billing transfer of {transfer.account.name} was cancelled by its provider: the link you received "
           "no longer works. Nothing changed.", [transfer.billing_owner_email])
    return transfer


def _end(transfer: BillingTransfer, status: str, *, by=None, actor=None, request=None, summary: str,
         **data) -> None:
    """Close an open transfer (cancelled, expired) with an audit row on both sides."""
    transfer.status, transfer.decided_by, transfer.decided_at = status, by, timezone.now()
    transfer.save(update_fields=["status", "decided_by", "decided_at"])
    for target in (transfer.account, transfer.from_parent):
        audit(account=target, actor=actor, request=request, action=f"billing.transfer_{status}", summary=summary,
              transfer=str(transfer.public_id), **data)


def _check_acceptor(transfer: BillingTransfer, user) -> None:
    if transfer.status != BillingTransfer.Status.PENDING:
        raise ValidationError(f"This billing transfer is already {transfer.get_status_display().lower()}.")
    if transfer.is_expired:
        raise ValidationError("This billing transfer has expired.")
    if user.email.lower() != transfer.billing_owner_email:
        raise ValidationError(f"This transfer is for {transfer.billing_owner_email}, but you are signed in as "
                              f"{user.email}.")


@transaction.atomic
def transfer_decline(*, transfer: BillingTransfer, user=None, request=None) -> BillingTransfer:
    """The billing owner declines. ``user=None``: the holder of the signed link, not signed in (declining
    needs no login of its own)."""
    transfer = _locked(transfer)
    if user is not None:
        _check_acceptor(transfer, user)
    elif transfer.status != BillingTransfer.Status.PENDING or transfer.is_expired:
        raise ValidationError(f"This billing transfer is already {transfer.get_status_display().lower()}.")
    transfer.status, transfer.decided_by, transfer.decided_at = BillingTransfer.Status.DECLINED, user, timezone.now()
    transfer.save(update_fields=["status", "decided_by", "decided_at"])
    who = transfer.billing_owner_email
    for target in (transfer.account, transfer.from_parent):
        audit(account=target, actor=user, request=request, action="billing.transfer_declined",
              summary=f"{who} declined the billing transfer of {transfer.account.name}",
              transfer=str(transfer.public_id))
    _email(f"Billing transfer of {transfer.account.name} declined",
           f"{who} declined to take over billing for {transfer.account.name}. Nothing changed.",
           _managers_emails(transfer.from_parent))
    return transfer


@transaction.atomic
def transfer_accept(*, transfer: BillingTransfer, user, contact_name: str = "", contact_email: str = "",
                    request=None) -> BillingTransfer:
    """The billing owner accepts: they become the account's Owner, and at the cut-over (now, or the start
    of the next period) the switch applies. Of two acceptances, the second is told it is already done."""
    transfer = _locked(transfer)
    _check_acceptor(transfer, user)
    refusal = _starter_refusal(transfer)
    if refusal:
        raise ValidationError(refusal)
    now = timezone.now()
    transfer.decided_by, transfer.decided_at = user, now
    transfer.billing_contact_name = (contact_name or user.display_name)[:150]
    transfer.billing_contact_email = clean_email(contact_email) if contact_email else user.email
    if transfer.cutover == BillingTransfer.Cutover.NOW:
        transfer.cutover_at = now
    else:
        next_period = period_start(now) + datetime.timedelta(days=32)
        transfer.cutover_at = datetime.datetime.combine(period_start(next_period), datetime.time(), tzinfo=datetime.UTC)
    transfer.status = BillingTransfer.Status.SCHEDULED
    transfer.save()
    for target in (transfer.account, transfer.from_parent):
        audit(account=target, actor=user, request=request, action="billing.transfer_accepted",
              summary=f"{user.email} accepted the billing transfer of {transfer.account.name}",
              transfer=str(transfer.public_id), cutover_at=transfer.cutover_at.isoformat())
    if transfer.cutover_at <= now:
        transfer = transfer_apply(transfer=transfer, request=request)
    return transfer


# ---- the switch -------------------------------------------------------------------------------------

def _move_to_top(transfer: BillingTransfer, account: Account) -> Account:
    account = subtree_move(account, None)
    values = {"access_categories": {}, **{f"limit_{n}": None for n in LIMIT_NAMES}}
    Account.objects.filter(pk=account.pk).update(**values)  # the former parent's caps and limits end here
    for field, value in values.items():
        setattr(account, field, value)
    return account


def _make_owner(transfer: BillingTransfer, account: Account, request=None) -> None:
    """The billing owner becomes the account's Owner at the switch (never earlier: a transfer cancelled
    after acceptance leaves no Owner behind)."""
    user = transfer.decided_by or User.objects.filter(email__iexact=transfer.billing_owner_email).first()
    if user is None:
        raise ValidationError(f"{transfer.billing_owner_email} has no login: they accept through the link first.",
                              code="stale")
    membership = Membership.objects.filter(account=account, user=user).first()
    if membership is None:
        membership_add(account=account, user=user, role=RoleId.OWNER, by=None, request=request)
    elif membership.role != RoleId.OWNER or membership.via_agency:
        # The parent's billing managers chose this person to own the account: Owner, and no longer delegated.
        Membership.objects.filter(pk=membership.pk).update(role=RoleId.OWNER, via_agency=False, via_grant=None)


def _become_root(transfer: BillingTransfer, account: Account) -> None:
    subscription_start(account=account, plan=transfer.plan)
    from . import stripe_sync

    if stripe_sync.is_configured() and transfer.plan.stripe_price_id:
        stripe_sync.subscribe(account, transfer.plan)  # BillingProviderError rolls the whole switch back


def _keep_agency(transfer: BillingTransfer, account: Account, people, request=None) -> None:
    if not transfer.keep_agency_access:
        return
    from agency.services import access_keep_after_transfer

    transfer.account = account  # the switched (root) row
    access_keep_after_transfer(transfer=transfer, people=people, request=request)


@transaction.atomic
def transfer_apply(*, transfer: BillingTransfer, request=None) -> BillingTransfer:
    """The switch. Atomic; idempotent on the transfer; safe under concurrent attempts (the lineage rows
    are locked root first, the same order metering uses)."""
    transfer = _locked(transfer)
    if transfer.status == BillingTransfer.Status.COMPLETED:
        return transfer
    if transfer.status != BillingTransfer.Status.SCHEDULED:
        raise ValidationError(f"This transfer is {transfer.get_status_display().lower()}; it cannot be applied.")
    account = transfer.account
    lineage = list(Account.objects.select_for_update().filter(path__in=account.lineage_paths).order_by("path"))
    account = lineage[-1] if lineage and lineage[-1].pk == account.pk else Account.objects.get(pk=account.pk)
    if not account.is_subaccount or account.root_path != transfer.from_root.path:
        raise ValidationError(f"{account.name} is no longer below {transfer.from_root.name} (another transfer "
                              "moved its tree): start again from its new parent.", code="stale")
    refusal = plan_refusal(account, transfer.plan) or _starter_refusal(transfer)
    if refusal:
        raise ValidationError(refusal, code="stale")
    # What the customer accepted was this account with its subtree: if a subaccount below has left through a
    # transfer of its own since, this one no longer describes it (of an account and its ancestor, one applies).
    if BillingTransfer.objects.filter(status=BillingTransfer.Status.COMPLETED, completed_at__gte=transfer.created_at,
                                      from_parent__path__startswith=account.path).exists():
        raise ValidationError(f"A subaccount below {account.name} became independent after this transfer was "
                              "proposed: start it again so the customer accepts what is there now.", code="stale")
    from_parent = account.parent
    kept = list(agency_candidates(account).filter(pk__in=transfer.agency_people))  # re-checked now (before the move)
    leaving = list(provider_memberships(account, transfer.billing_owner_email))  # (before the move, too)
    transfer.subtree_names = {str(pk): name for pk, name in Account.objects.filter(
        subtree_q(account.path)).values_list("pk", "name")}
    account = _move_to_top(transfer, account)
    _make_owner(transfer, account, request)
    for membership in leaving:
        membership_end(membership, by=None, request=request, summary=f"{membership.user.email} removed: "
                       f"{account.name} became independent of {transfer.from_root.name}")
    _become_root(transfer, account)
    account_sync_permissions(account, subtree=True)  # former caps end; its own members' rows re-sync
    _keep_agency(transfer, account, kept, request)
    transfer.status, transfer.completed_at = BillingTransfer.Status.COMPLETED, timezone.now()
    transfer.save(update_fields=["status", "completed_at", "subtree_names"])
    kept = " The agency keeps access." if transfer.keep_agency_access else ""
    audit(account=account, actor=transfer.decided_by, request=request, action="billing.transfer_completed",
          summary=f"{account.name} is now independent and billed directly on the {transfer.plan.name} plan.{kept}",
          transfer=str(transfer.public_id))
    audit(account=from_parent, actor=transfer.decided_by, request=request, action="billing.transfer_completed",
          summary=f"{account.name} became independent (billed directly).{kept}", transfer=str(transfer.public_id))
    for side in (account, from_parent):
        webhooks.emit(side, WebhookEvent.BILLING_TRANSFER_COMPLETED, {
            "transfer_id": str(transfer.public_id), "account_id": str(account.public_id),
            "plan": transfer.plan.name, "cutover_at": transfer.cutover_at})
    subject = f"{account.name} is now independent"
    _email(subject, f"{account.name} is now billed directly on the {transfer.plan.name} plan. Usage up to "
                    f"{transfer.cutover_at:%Y-%m-%d %H:%M} UTC stays on the previous invoice.",
           [transfer.billing_owner_email, *_managers_emails(from_parent)])
    return transfer


def _give_up(transfer: BillingTransfer, exc: ValidationError) -> None:
    """A due transfer that can no longer apply (its tree or the account changed) ends, audited, instead of
    being retried forever."""
    transfer = _locked(transfer)
    if transfer.status == BillingTransfer.Status.SCHEDULED:
        _end(transfer, BillingTransfer.Status.CANCELLED, summary=f"Billing transfer of {transfer.account.name} "
             f"cancelled: {' '.join(exc.messages)}")


def _apply_due(transfer: BillingTransfer) -> bool:
    """Apply one due transfer; a stale one is cancelled, a Stripe failure waits for the next run. Never raises
    for those, so neither the cron run nor metering stops on one transfer."""
    try:
        with transaction.atomic():
            transfer_apply(transfer=transfer)
        return True
    except ValidationError as exc:
        log.warning("Billing transfer %s not applied: %s", transfer.public_id, exc)
        if getattr(exc, "code", None) == "stale":
            _give_up(transfer, exc)
    except BillingProviderError as exc:
        log.warning("Billing transfer %s waits for Stripe: %s", transfer.public_id, exc)
    return False


def expire_transfers(now=None) -> int:
    """End pending transfers whose link has expired, with an audit row on both sides. Returns how many."""
    now = now or timezone.now()
    count = 0
    for transfer in BillingTransfer.objects.filter(status=BillingTransfer.Status.PENDING, expires_at__lte=now):
        with transaction.atomic():
            transfer = _locked(transfer)
            if transfer.status == BillingTransfer.Status.PENDING:
                _end(transfer, BillingTransfer.Status.EXPIRED,
                     summary=f"Billing transfer of {transfer.account.name} expired: the customer did not answer")
                count += 1
    return count


def apply_due_transfers(now=None) -> int:
    """Apply accepted transfers whose cut-over has come (cron, ``close_billing_period`` and metering call it)
    and expire pending ones past their link's expiry. Each in its own transaction; one failure never stops
    the others. Returns how many were applied."""
    now = now or timezone.now()
    expire_transfers(now)
    due = BillingTransfer.objects.filter(status=BillingTransfer.Status.SCHEDULED, cutover_at__lte=now)
    return sum(_apply_due(transfer) for transfer in due)


def apply_due_for(account: Account) -> None:
    """Before metering in ``account``: a transfer of it or an ancestor whose cut-over has passed applies
    first, so usage after the cut-over is never booked to the old payer. One indexed query; a transfer that
    cannot apply never stops the metering."""
    due = BillingTransfer.objects.filter(status=BillingTransfer.Status.SCHEDULED, cutover_at__lte=timezone.now(),
                                         account__path__in=account.lineage_paths)
    for transfer in due:
        _apply_due(transfer)
