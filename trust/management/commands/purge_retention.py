from django.core.management.base import BaseCommand, CommandError

from accounts.commands import describe, find_account
from accounts.progress import ProgressBar
from trust import purge
from trust.models import DataType


def _counts(counts: dict) -> str:
    parts = [f"{DataType(t).label.lower()} {counts[t]}" for t in DataType.values if counts.get(t)]
    return ", ".join(parts) if parts else "nothing had expired"


class Command(BaseCommand):
    help = ("Apply the data retention policies now: clear (or anonymise) customer data past its retention period, in "
            "batches, with an audit row per account. Idempotent; an interrupted run resumes where it stopped. The "
            "daily task (manage.py run_daily) runs the same purge.")

    def add_arguments(self, parser):
        parser.add_argument("--account", help="Only this account (id or external ID) and its subaccounts.")
        parser.add_argument("--dry-run", action="store_true", help="Count what would be removed; change nothing.")
        parser.add_argument("--batch-size", type=int, default=None, help="Rows per batch (default 1,000).")

    def handle(self, *args, **options):
        account = find_account(options["account"]) if options["account"] else None
        bar = ProgressBar(self.stderr)  # drawn on a terminal only
        verbose = options["verbosity"] > 1

        def on_account(result):
            if verbose or any(result.counts.values()):
                bar.close()
                self.stdout.write(f"{describe(result.account)}: {_counts(result.counts)}")

        def on_progress(done, total):
            bar("Accounts", done, total)

        if options["dry_run"]:
            totals = purge.dry_run(account=account, on_progress=on_progress, on_account=on_account)
            bar.close()
            what = _counts(totals)
            self.stdout.write(f"{'Would remove: ' + what if any(totals.values()) else what.capitalize()}. "
                              "Dry run: nothing was changed.")
            return
        try:
            run = purge.purge(account=account, batch_size=options["batch_size"], on_progress=on_progress,
                              on_account=on_account)
        except purge.PurgeBusy as exc:
            raise CommandError(str(exc)) from exc
        finally:
            bar.close()
        self.stdout.write(self.style.SUCCESS(
            f"Purge run #{run.pk} finished: {run.accounts_done} account(s) with a retention policy; "
            + (f"removed {_counts(run.totals)}." if any(run.totals.values()) else "nothing had expired.")))
