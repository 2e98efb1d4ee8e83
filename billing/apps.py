from django.apps import AppConfig


class BillingConfig(AppConfig):
    """Plans, usage metering, parent billing and the consolidated invoice."""

    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        from . import receivers

        receivers.connect()
