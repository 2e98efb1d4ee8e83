from django.conf import settings
from django.core.management.base import BaseCommand

from security.housekeeping import security_events_purge


class Command(BaseCommand):
    help = "Delete login activity older than SECURITY_ACTIVITY_DAYS (90 by default), in batches. Run daily."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count what would go; delete nothing.")

    def handle(self, *args, dry_run=False, **options):
        removed = security_events_purge(dry_run=dry_run)
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(f"{verb} {removed} login activity event{'s' if removed != 1 else ''} older than "
                          f"{settings.SECURITY_ACTIVITY_DAYS} days.")
