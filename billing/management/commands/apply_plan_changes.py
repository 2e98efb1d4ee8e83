from django.core.management.base import BaseCommand

from billing.plans import apply_due_plan_changes


class Command(BaseCommand):
    help = ("Apply scheduled plan downgrades whose time has come (run every 15 minutes; statements already count a "
            "due change). A downgrade the account no longer qualifies for (it has subaccounts again) is cancelled "
            "and audited.")

    def handle(self, *args, **options):
        applied, cancelled = apply_due_plan_changes()
        self.stdout.write(f"{applied} plan change(s) applied, {cancelled} cancelled.")
