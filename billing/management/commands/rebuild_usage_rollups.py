from django.core.management.base import BaseCommand

from billing.rollups import rollups_rebuild


class Command(BaseCommand):
    help = ("Rebuild the usage rollups (per account and period, per account and day, per payer) from the usage "
            "ledger and the current tree, keeping the minutes that left each pool with a move (a record, not a "
            "cache). Atomic; safe to run at any time.")

    def handle(self, *args, **options):
        counts = rollups_rebuild()
        self.stdout.write(self.style.SUCCESS(
            f"Usage rollups rebuilt: {counts['period']} account-period rows, {counts['day']} account-day rows, "
            f"{counts['payer']} statement rows."))
