from django.core.management.base import BaseCommand

from agency.services import record_expiries


class Command(BaseCommand):
    help = ("Write audit rows for agency access that has expired. Access itself ends at the expiry "
            "instant without this command; run it from cron (e.g. every 15 minutes) for the trail.")

    def handle(self, *args, **options):
        count = record_expiries()
        self.stdout.write(self.style.SUCCESS(f"Recorded {count} expired agency grant(s)."))
