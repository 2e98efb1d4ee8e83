import time

from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.management.commands.seed_demo import Command as SeedDemo


class Command(BaseCommand):
    help = ("Print the current authenticator code of the demo's owner@contoso.example (its TOTP secret comes from "
            "seed_demo), so a reviewer can sign in without an authenticator app.")

    def handle(self, *args, **options):
        period = settings.MFA_TOTP_PERIOD if hasattr(settings, "MFA_TOTP_PERIOD") else 30
        now = int(time.time())
        code = format_hotp_value(hotp_value(SeedDemo.demo_totp_secret(), now // period))
        self.stdout.write(f"{code}  (owner@contoso.example; valid for {period - now % period} more seconds)")
