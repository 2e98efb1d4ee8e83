from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.commands import describe, find_account
from accounts.services import account_delete, purge_refusal, purge_summary


class Command(BaseCommand):
    help = ("Delete an account that has no subaccounts, with its members, invitations, agents, contacts, "
            "conversations, agency access and audit trail. Asks you to type the account's name unless --yes. "
            "Refused while it has billing history (usage or invoices): suspend it instead.")

    def add_arguments(self, parser):
        parser.add_argument("account", help="The account's id or external ID.")
        parser.add_argument("--dry-run", action="store_true", help="List what would be deleted; delete nothing.")
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation (scripts).")

    def handle(self, *args, **options):
        account = find_account(options["account"])
        refusal = purge_refusal(account)
        if refusal:
            raise CommandError(refusal)
        lines = [f"  {count} {label}" for label, count in purge_summary(account).items() if count]
        self.stdout.write(f"Deleting {describe(account)} removes:\n" + ("\n".join(lines) or "  nothing else"))
        if options["dry_run"]:
            self.stdout.write("Dry run: nothing was deleted.")
            return
        if not options["yes"]:
            if not options.get("interactive", True) or not self.stdin_is_terminal():
                raise CommandError("Not a terminal: pass --yes to confirm deleting without a question.")
            typed = input(f"Type the account's name ({account.name}) to delete it: ")
            if typed.strip() != account.name:
                raise CommandError("The name did not match: nothing was deleted.")
        try:
            account_delete(account=account, by=None)
        except (ValidationError, PermissionDenied) as exc:
            raise CommandError(" ".join(getattr(exc, "messages", None) or [str(exc)])) from exc
        self.stdout.write(self.style.SUCCESS(f"{describe(account)} deleted."))

    @staticmethod
    def stdin_is_terminal() -> bool:
        import sys

        return sys.stdin.isatty()
