from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.models import BillingTransfer
from billing.transfers import apply_due_transfers, expire_transfers


class Command(BaseCommand):
    help = ("Apply accepted billing transfers whose cut-over has come, and expire pending ones whose link has "
            "expired. Run it from cron every 15 minutes (metering and the period close apply due transfers too). "
            "Safe to run again: an applied transfer is never applied twice.")

    def handle(self, *args, **options):
        now = timezone.now()
        expired = expire_transfers(now)
        applied = apply_due_transfers(now=now)  # a stale transfer is cancelled, a Stripe failure waits
        summary = f"{applied} billing transfer(s) applied, {expired} expired (the customer did not accept in time)"
        stuck = list(BillingTransfer.objects.filter(status=BillingTransfer.Status.SCHEDULED, cutover_at__lte=now)
                     .select_related("account"))
        if stuck:
            for transfer in stuck:
                self.stderr.write(f"{transfer.account.name} ({transfer.public_id}): due since "
                                  f"{transfer.cutover_at:%Y-%m-%d %H:%M} UTC, not applied (see the log).")
            raise CommandError(f"{summary}; {len(stuck)} due but not applied (see above and the log for why): cancel "
                               "those that can no longer apply under Billing transfers in the admin.")
        self.stdout.write(self.style.SUCCESS(summary + "."))
