"""dj-stripe webhook receivers. dj-stripe checks the signature and syncs the object (re-fetched
from Stripe by id); these only record the outcome on our invoice, idempotently."""

from djstripe.signals import WEBHOOK_SIGNALS

from .stripe_sync import record_payment


def _invoice_id(event) -> str | None:
    obj = (event.data or {}).get("object") or {}
    return obj.get("id") if obj.get("object") == "invoice" else None


def on_invoice_paid(sender, event, **kwargs):
    if invoice_id := _invoice_id(event):
        record_payment(stripe_invoice_id=invoice_id, paid=True)


def on_invoice_payment_failed(sender, event, **kwargs):
    if invoice_id := _invoice_id(event):
        record_payment(stripe_invoice_id=invoice_id, paid=False)


def connect():
    WEBHOOK_SIGNALS["invoice.paid"].connect(on_invoice_paid, dispatch_uid="billing.invoice.paid")
    WEBHOOK_SIGNALS["invoice.payment_succeeded"].connect(on_invoice_paid, dispatch_uid="billing.invoice.succeeded")
    WEBHOOK_SIGNALS["invoice.payment_failed"].connect(on_invoice_payment_failed, dispatch_uid="billing.invoice.failed")
