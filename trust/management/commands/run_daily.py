import datetime

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import IntegrityError, transaction
from django.utils import timezone

from trust.models import ScheduledRun
from trust.tasks import housekeeping, purge_retention

# job name -> task; each is enqueued at most once per UTC day, from RETENTION_PURGE_HOUR_UTC.
DAILY = {"purge_retention": purge_retention, "housekeeping": housekeeping}


class Command(BaseCommand):
    help = ("Enqueue today's daily tasks (the retention purge; housekeeping: old login activity, expired data "
            "request files, API idempotency records) for the task worker, once per UTC day whatever the "
            "number of machines or calls: run it from cron (e.g. hourly, or at 03:00 UTC) on any machine.")

    def add_arguments(self, parser):
        parser.add_argument("--now", action="store_true", help="Do not wait for the configured hour today.")

    def handle(self, *args, **options):
        def say(text):
            if options["verbosity"] > 0:
                self.stdout.write(text)

        now = timezone.now()
        if not options["now"] and now.hour < settings.RETENTION_PURGE_HOUR_UTC:
            say(f"Not yet: daily tasks run from {settings.RETENTION_PURGE_HOUR_UTC:02d}:00 UTC.")
            return
        day = now.astimezone(datetime.UTC).date()
        for job, task in DAILY.items():
            try:
                with transaction.atomic():
                    ScheduledRun.objects.create(job=job, day=day)
                    task.enqueue()  # the database backend writes it in this transaction: both or neither
            except IntegrityError:
                say(f"{job}: already enqueued for {day}.")
                continue
            say(self.style.SUCCESS(f"{job}: enqueued for {day}."))
