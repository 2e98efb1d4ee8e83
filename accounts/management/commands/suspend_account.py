from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.commands import describe, find_account
from accounts.services import account_set_status


class Command(BaseCommand):
    help = ("Suspend an account (a top-level account or a subaccount) as the platform: its people can sign in but "
            "reach nothing in it or below it until it is reactivated (--reactivate). Audited with --reason.")

    def add_arguments(self, parser):
        parser.add_argument("account", help="The account's id or external ID.")
        parser.add_argument("--reactivate", action="store_true", help="Reactivate a suspended account instead.")
        parser.add_argument("--reason", default="", help="Kept in the account's audit trail.")
        parser.add_argument("--dry-run", action="store_true", help="Say what would change; write nothing.")

    def handle(self, *args, **options):
        account = find_account(options["account"])
        suspend = not options["reactivate"]
        verb = "suspend" if suspend else "reactivate"
        if account.is_suspended == suspend:
            self.stdout.write(f"{describe(account)} is already {'suspended' if suspend else 'active'}: nothing to do.")
            return
        below = account.descendants().count()
        what = f"{verb} {describe(account)}" + (f" and so the {below} subaccount(s) below it" if below else "")
        if options["dry_run"]:
            self.stdout.write(f"Would {what}. Dry run: nothing was written.")
            return
        try:
            account_set_status(account=account, suspended=suspend, reason=options["reason"])
        except (ValidationError, PermissionDenied) as exc:
            raise CommandError(" ".join(getattr(exc, "messages", None) or [str(exc)])) from exc
        done = "suspended: its people reach nothing in it" if suspend else "reactivated"
        self.stdout.write(self.style.SUCCESS(f"{describe(account)} {done}"
                                             + (f" ({below} subaccount(s) below it)." if below else ".")))
