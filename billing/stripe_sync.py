"""Stripe, behind one small interface. Our ledger (usage, statements, invoices) is the source of
truth; Stripe is the payment rail when keys are configured."""

from django.conf import settings


def is_configured() -> bool:
    return bool(getattr(settings, "STRIPE_SECRET_KEY", ""))


def push_invoice_safely(invoice_pk: int) -> None:
    """Filled in with the dj-stripe integration."""
    raise NotImplementedError
