from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.commands import describe, find_account, parse_day
from agency.models import AgencyGrant
from agency.services import OPEN, access_grant_by_platform, access_revoke, added_through
from members.emails import clean_email
from members.models import Membership, User


def _text(exc) -> str:
    return " ".join(getattr(exc, "messages", None) or [str(exc)])


class Command(BaseCommand):
    help = ("Grant or revoke agency access between two top-level accounts as the platform (at the client's "
            "written request: the client owns its account). grant: the agency's people named with --people join "
            "the client as Agency Admins. revoke: their access ends at once; --remove-added also removes the members "
            "agency users added. Both are audited on both sides.")

    def add_arguments(self, parser):
        parser.add_argument("action", choices=("grant", "revoke"))
        parser.add_argument("--agency", required=True, metavar="ID_OR_EXTERNAL_ID")
        parser.add_argument("--client", required=True, metavar="ID_OR_EXTERNAL_ID")
        parser.add_argument("--expires", metavar="YYYY-MM-DD", help="grant: the day the access ends (00:00 UTC).")
        parser.add_argument("--people", default="", metavar="EMAIL,EMAIL",
                            help="grant: members of the agency account who get agency access now.")
        parser.add_argument("--remove-added", action="store_true",
                            help="revoke: also remove the client's members that agency users added (R3).")
        parser.add_argument("--reason", default="", help="grant: kept in both audit trails.")
        parser.add_argument("--dry-run", action="store_true", help="Say what would change; write nothing.")

    def handle(self, *args, **options):
        agency = find_account(options["agency"], option="agency")
        client = find_account(options["client"], option="client")
        if options["action"] == "grant":
            self._grant(agency, client, options)
        else:
            if options["expires"] or options["people"]:
                raise CommandError("--expires and --people go with grant.")
            self._revoke(agency, client, options)

    def _grant(self, agency, client, options):
        expires = parse_day(options["expires"], option="expires")
        people = []
        for raw in filter(None, (e.strip() for e in options["people"].split(","))):
            try:
                email = clean_email(raw)
            except ValidationError as exc:
                raise CommandError(f"--people: {raw}: {_text(exc)}") from exc
            user = User.objects.filter(email__iexact=email).first()
            if user is None or not Membership.objects.filter(account=agency, user=user, is_agency=False).exists():
                raise CommandError(f"--people: {email} is not a member of {agency.name}.")
            people.append(user)
        what = (f"give {describe(agency)} agency access to {describe(client)}"
                + (f" until {expires:%Y-%m-%d}" if expires else "")
                + (f", with {', '.join(u.email for u in people)}" if people else ""))
        self._run(lambda: access_grant_by_platform(client=client, agency=agency, expires_at=expires, people=people,
                                                   reason=options["reason"]), what, options["dry_run"])

    def _run(self, act, what: str, dry_run: bool) -> None:
        """The service itself, also for a dry run (rolled back, its emails with it): the dry run refuses
        exactly what the real run would."""
        try:
            with transaction.atomic():
                act()
                if dry_run:
                    transaction.set_rollback(True)
        except (ValidationError, PermissionDenied) as exc:
            raise CommandError(_text(exc)) from exc
        if dry_run:
            self.stdout.write(f"Would {what}. Dry run: nothing was written.")
        else:
            self.stdout.write(self.style.SUCCESS(f"Done: {what}."))

    def _revoke(self, agency, client, options):
        grant = AgencyGrant.objects.filter(client=client, agency=agency, status__in=OPEN).first()
        if grant is None:
            raise CommandError(f"{agency.name} has no agency access to {client.name} nor a request waiting.")
        remove = list(added_through(grant)) if options["remove_added"] else []
        what = (f"end {describe(agency)}'s agency access to {describe(client)}"
                + (f" and remove {len(remove)} member(s) its people added: {', '.join(m.user.email for m in remove)}"
                   if remove else ""))
        self._run(lambda: access_revoke(grant=grant, by=None, remove=remove), what, options["dry_run"])
