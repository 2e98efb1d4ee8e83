from django.core.management.base import BaseCommand

from trust.requests import purge_expired


class Command(BaseCommand):
    help = ("Delete the files of data requests older than their 7 days (the requests stay in the history). Each "
            "request that runs purges too; run this daily so files go even when no request runs.")

    def handle(self, *args, **options):
        deleted = purge_expired()
        self.stdout.write(self.style.SUCCESS(f"Deleted {deleted} expired data request file(s)."))
