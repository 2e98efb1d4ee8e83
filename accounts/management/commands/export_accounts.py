import io
import sys

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from accounts.commands import find_account
from accounts.models import Account
from accounts.provisioning import export_rows, write_export


class Command(BaseCommand):
    help = ("Write account trees in provision_accounts' format (CSV or JSON), so export → edit → provision "
            "round-trips. Without --account: every account on the platform.")

    def add_arguments(self, parser):
        parser.add_argument("--account", action="append", default=[], metavar="ID_OR_EXTERNAL_ID",
                            help="Export this account and everything below it (repeatable).")
        parser.add_argument("--format", choices=("csv", "json"), default="csv", dest="output_format")
        parser.add_argument("--output", "-o", default="-", help="A file to write (default: standard output).")

    def handle(self, *args, **options):
        accounts = Account.objects.all()
        if options["account"]:
            tops = [find_account(ref) for ref in options["account"]]
            subtree = Q()
            for top in tops:
                subtree |= Q(path__startswith=top.path)
            accounts = accounts.filter(subtree)
        rows = export_rows(accounts)
        if options["output"] == "-":
            buffer = io.StringIO()
            write_export(rows, options["output_format"], buffer)
            self.stdout.write(buffer.getvalue(), ending="")
        else:
            try:
                with open(options["output"], "w", encoding="utf-8", newline="") as out:
                    write_export(rows, options["output_format"], out)
            except OSError as exc:
                raise CommandError(f"Cannot write {options['output']}: {exc.strerror}.") from exc
            print(f"{len(rows)} account(s) written to {options['output']}.", file=sys.stderr)
