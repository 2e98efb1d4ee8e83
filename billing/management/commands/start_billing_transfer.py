import datetime
import uuid

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Sum

from accounts.models import Account
from billing import transfers
from billing.models import BillingTransfer, Plan, UsageRecord, period_start
from billing.stripe_sync import BillingProviderError
from billing.templatetags.billing import cents
from members.emails import clean_email
from members.models import Membership, User


def _text(exc) -> str:
    return " ".join(getattr(exc, "messages", None) or [str(exc)])


class Command(BaseCommand):
    help = ("Start a billing transfer as the platform: a subaccount (with everything below it) becomes an "
            "independent account, billed directly. The billing owner is emailed a link to accept it; nothing "
            "changes until they do, unless --accepted-by names them (they accepted with staff). --dry-run checks "
            "everything and prints what would change, writing nothing.")

    def add_arguments(self, parser):
        parser.add_argument("--account", required=True, metavar="ACCOUNT_ID",
                            help="The subaccount's account ID (a UUID).")
        parser.add_argument("--owner-email", required=True, metavar="EMAIL",
                            help="Who becomes the account's Owner and pays for it.")
        parser.add_argument("--plan", required=True, metavar="CODE", help="The plan code after the transfer.")
        parser.add_argument("--cutover", choices=BillingTransfer.Cutover.values, default=BillingTransfer.Cutover.NOW,
                            help="now: as soon as it is accepted; period_end: at the end of the billing period.")
        parser.add_argument("--keep-agency", action="store_true",
                            help="The former top account keeps agency access to the new one.")
        parser.add_argument("--agency-people", default="", metavar="EMAIL,EMAIL",
                            help="With --keep-agency: Owners or Admins above who stay in as agency members.")
        parser.add_argument("--agency-expires", metavar="YYYY-MM-DD",
                            help="With --keep-agency: the day the agency access ends (00:00 UTC).")
        parser.add_argument("--accepted-by", metavar="EMAIL",
                            help="The billing owner accepted already (same as --owner-email, an existing user): "
                                 "accept on their behalf at once.")
        parser.add_argument("--dry-run", action="store_true", help="Check and print the plan; write nothing.")

    def handle(self, *args, **options):
        account = self._account(options["account"])
        refusal = transfers.transfer_refusal(account, None)
        if refusal:
            raise CommandError(refusal)
        plan = self._plan(account, options["plan"])
        email = self._email("--owner-email", options["owner_email"])
        keep = options["keep_agency"]
        if not keep and (options["agency_people"] or options["agency_expires"]):
            raise CommandError("--agency-people and --agency-expires go with --keep-agency.")
        people = self._people(account, options["agency_people"]) if keep else []
        expires = self._expiry(options["agency_expires"])
        acceptor = self._acceptor(options["accepted_by"], email)
        dry_run = options["dry_run"]
        try:
            with transaction.atomic():
                # The service checks everything again, under the account's row lock; a dry run rolls it all
                # back (the transfer, its audit rows and the email, which only goes out on commit).
                transfer = transfers.transfer_start(
                    account=account, by=None, billing_owner_email=email, plan=plan, cutover=options["cutover"],
                    keep_agency_access=keep, agency_people=people, agency_expires_at=expires,
                    notify=acceptor is None)  # accepted here at once: no link to send
                lines = self._plan_lines(transfer, people, acceptor)
                if dry_run:
                    transaction.set_rollback(True)
                elif acceptor is not None:
                    transfer = transfers.transfer_accept(transfer=transfer, user=acceptor)
        except (ValidationError, PermissionDenied, BillingProviderError) as exc:
            raise CommandError(_text(exc)) from exc
        for line in lines:
            self.stdout.write(line)
        if dry_run:
            self.stdout.write(self.style.WARNING("Dry run: nothing was written and nobody was emailed."))
        elif transfer.status == BillingTransfer.Status.COMPLETED:
            self.stdout.write(self.style.SUCCESS(
                f"Done: {transfer.account.name} is now independent and billed directly on the {plan.name} plan "
                f"(transfer {transfer.public_id})."))
        elif transfer.status == BillingTransfer.Status.SCHEDULED:
            self.stdout.write(self.style.SUCCESS(
                f"Accepted: {transfer.account.name} becomes independent at {transfer.cutover_at:%Y-%m-%d %H:%M} UTC "
                f"(transfer {transfer.public_id}; apply_billing_transfers switches it then)."))
        else:
            self.stdout.write(self.style.SUCCESS(
                f"Transfer {transfer.public_id} started: {email} was emailed this link to review and accept it "
                f"(it expires on {transfer.expires_at:%Y-%m-%d}):"))
            self.stdout.write(transfers.transfer_url(transfer))

    # ---- the arguments ---------------------------------------------------------------------------

    def _account(self, value: str) -> Account:
        try:
            public_id = uuid.UUID(value)
        except ValueError as exc:
            raise CommandError(f"--account takes an account ID (a UUID), not {value!r}.") from exc
        account = Account.objects.filter(public_id=public_id).first()
        if account is None:
            raise CommandError(f"No account with ID {public_id}.")
        return account

    def _plan(self, account: Account, code: str) -> Plan:
        plan = Plan.objects.filter(code=code).first()
        if plan is None:
            codes = ", ".join(Plan.objects.values_list("code", flat=True))
            raise CommandError(f"No plan with code {code!r} (the plans are: {codes}).")
        refusal = transfers.plan_refusal(account, plan)
        if refusal:
            raise CommandError(refusal)
        return plan

    def _email(self, option: str, value: str) -> str:
        try:
            return clean_email(value)
        except ValidationError as exc:
            raise CommandError(f"{option} {value!r}: {_text(exc)}") from exc

    def _people(self, account: Account, value: str) -> list:
        emails = [self._email("--agency-people", e) for e in value.split(",") if e.strip()]
        people = []
        for email in emails:
            user = User.objects.filter(email__iexact=email).first()
            if user is None:
                raise CommandError(f"--agency-people: nobody has an account with the email {email}.")
            people.append(user)
        allowed = set(transfers.agency_candidates(account).values_list("pk", flat=True))
        refused = [u.email for u in people if u.pk not in allowed]
        if refused:
            raise CommandError(f"{', '.join(refused)} cannot keep access: only people who reach {account.name} as "
                               "Owner or Admin from above can keep access as agency members.")
        return people

    def _expiry(self, value: str | None) -> datetime.datetime | None:
        if not value:
            return None
        try:
            day = datetime.date.fromisoformat(value)
        except ValueError as exc:
            raise CommandError(f"--agency-expires takes a day as YYYY-MM-DD, not {value!r}.") from exc
        return datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.UTC)

    def _acceptor(self, value: str | None, owner_email: str) -> User | None:
        if not value:
            return None
        email = self._email("--accepted-by", value)
        if email != owner_email:
            raise CommandError(f"--accepted-by must be the billing owner ({owner_email}): only they can accept.")
        user = User.objects.filter(email__iexact=email).first()
        if user is None or not user.is_active:
            raise CommandError(f"--accepted-by: {email} has no active user account, so they cannot have accepted; "
                               "leave --accepted-by out and they accept through the emailed link.")
        return user

    # ---- what changes ----------------------------------------------------------------------------

    def _plan_lines(self, transfer: BillingTransfer, people: list, acceptor) -> list[str]:
        account, root, plan = transfer.account, transfer.from_root, transfer.plan
        names = list(Account.objects.filter(path__in=account.ancestor_paths).order_by("depth")
                     .values_list("name", flat=True))
        below = account.descendants().count()
        what = (f"{account.name} and its {below} subaccount(s) leave {root.name}'s tree and become" if below
                else f"{account.name} leaves {root.name}'s tree and becomes")
        lines = [
            f"Billing transfer of {account.name} ({account.public_id}), now under {' › '.join(names)}:",
            f"  Top level: {what} an independent account; the limits and access "
            "categories set from above stop applying.",
            f"  Plan: {plan.name} ({cents(plan.monthly_price_cents)} a month, {plan.included_minutes} minutes "
            f"included), billed directly.",
            f"  Owner: {self._owner_line(transfer, acceptor)}",
        ]
        if transfer.keep_agency_access:
            until = f" until {transfer.agency_expires_at:%Y-%m-%d}" if transfer.agency_expires_at else ""
            who = (", ".join(u.email for u in people) + " stay(s) in as agency members" if people
                   else f"nobody stays in as an agency member yet ({root.name} can add its people later)")
            lines.append(f"  Agency access: {root.name} keeps agency access{until}; {who}.")
        else:
            lines.append(f"  Agency access: none kept; after the switch only {account.name}'s own people reach it.")
        period = period_start()
        so_far = (UsageRecord.objects.filter(period=period, billing_root=root, account__path__startswith=account.path)
                  .aggregate(m=Sum("minutes"))["m"] or 0)
        when = ("the moment it is accepted" if transfer.cutover == BillingTransfer.Cutover.NOW
                else "the end of the billing period in which it is accepted")
        lines.append(f"  Usage: up to the cut-over ({when}) it stays on {root.name}'s invoice ({so_far} minute(s) "
                     f"of this tree so far in {period:%B %Y}); after it, {account.name} is billed for it.")
        if acceptor is not None:
            lines.append(f"  Acceptance: accepted at once on behalf of {acceptor.email} (--accepted-by).")
        else:
            lines.append(f"  Acceptance: waiting for {transfer.billing_owner_email}, who is emailed a link "
                         f"(valid until {transfer.expires_at:%Y-%m-%d}); nothing changes until they accept.")
        return lines

    def _owner_line(self, transfer: BillingTransfer, acceptor) -> str:
        email, account = transfer.billing_owner_email, transfer.account
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            return f"{email} (no user yet: they sign up through the link) becomes its Owner and pays for it."
        membership = Membership.objects.filter(account=account, user=user).first()
        if membership is None:
            now = f"an existing user, not yet in {account.name}"
        else:
            now = f"{membership.get_role_display()} of {account.name} now"
        when = "at once" if acceptor is not None else "when they accept"
        return f"{email} ({now}) becomes its Owner {when}, and pays for it."
