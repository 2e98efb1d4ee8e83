import datetime

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Account
from billing.models import period_start
from billing.services import invoice_close, roots_to_close
from billing.transfers import apply_due_transfers


def parse_period(value: str) -> datetime.date:
    try:
        return datetime.datetime.strptime(value, "%Y-%m").date()
    except ValueError as exc:
        raise CommandError(f"--period takes a month as YYYY-MM, not {value!r}.") from exc


class Command(BaseCommand):
    help = ("Close a billing period: freeze one invoice per directly billed account (plan fee plus one line per "
            "account of its tree). Safe to run again: closed invoices are never changed.")

    def add_arguments(self, parser):
        last_month = (period_start() - datetime.timedelta(days=1)).strftime("%Y-%m")
        parser.add_argument("--period", default=last_month, help=f"YYYY-MM (default: last month, {last_month}).")
        parser.add_argument("--account", help="Only this root account (its account ID).")

    def handle(self, *args, **options):
        period = parse_period(options["period"])
        if options["account"]:
            roots = Account.objects.filter(public_id=options["account"])
            if not roots.exists():
                raise CommandError(f"No account with ID {options['account']}.")
        else:
            roots = roots_to_close(period)
        applied = apply_due_transfers()  # transfers due at the period's end switch payer before closing
        if applied:
            self.stdout.write(f"Applied {applied} billing transfer(s) due at the cut-over.")
        total, created, failed = roots.count(), 0, 0
        self.stdout.write(f"Closing {period:%B %Y} for {total} account(s)…")
        for done, root in enumerate(roots.iterator(), start=1):
            try:
                _, was_created = invoice_close(root=root, period=period)
                created += was_created
            except ValidationError as exc:
                failed += 1
                self.stderr.write(f"\n{root.name}: {' '.join(exc.messages)}")
            if done == total or done % 25 == 0:
                width = 30
                filled = int(width * done / total) if total else width
                self.stdout.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", ending="")
                self.stdout.flush()
        self.stdout.write("")
        summary = f"{created} invoice(s) closed, {total - created - failed} already closed"
        if failed:
            raise CommandError(f"{summary}, {failed} failed (see above).")
        self.stdout.write(self.style.SUCCESS(summary + "."))
