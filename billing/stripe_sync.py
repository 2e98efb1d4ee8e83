"""Stripe, behind one small interface (through dj-stripe, ``Account`` as its subscriber).

Our ledger (usage, statements, invoices) is the source of truth and works without Stripe. When a
key is configured, a closed invoice is pushed: one invoice item per usage line (metadata: account
id, period), then a Stripe invoice that includes them, finalized and synced back into dj-stripe.
Every call carries an idempotency key, and the id Stripe returns is stored at once, so a retry
after any failure continues where it stopped and never charges twice. Stripe errors are turned
into ``BillingProviderError`` with a message for people, and leave our rows consistent.
"""

import logging

import stripe
from django.conf import settings
from django.db import transaction

from .models import Invoice, InvoiceLine, Subscription

log = logging.getLogger(__name__)


class BillingProviderError(Exception):
    """Stripe said no or could not be reached; the message is for the person at the screen."""


def is_configured() -> bool:
    return bool(getattr(settings, "STRIPE_SECRET_KEY", ""))


def _client_setup() -> None:
    stripe.api_key = settings.STRIPE_SECRET_KEY
    if getattr(settings, "STRIPE_API_HOST", ""):
        stripe.api_base = settings.STRIPE_API_HOST


def _human(exc: stripe.StripeError) -> str:
    if isinstance(exc, stripe.CardError):
        return f"The card was declined: {exc.user_message or 'ask the bank, or use another card'}."
    if isinstance(exc, (stripe.APIConnectionError, stripe.RateLimitError)):
        return "Stripe could not be reached just now. Nothing was charged; try again in a few minutes."
    if isinstance(exc, stripe.AuthenticationError):
        return "The Stripe keys are not valid. An administrator must check the configuration."
    return f"Stripe refused the request ({exc.user_message or exc.__class__.__name__}). Nothing was charged."


def _call(fn, *args, **kwargs):
    _client_setup()
    try:
        return fn(*args, **kwargs)
    except stripe.StripeError as exc:
        log.warning("Stripe call %s failed: %s", getattr(fn, "__qualname__", fn), exc)
        raise BillingProviderError(_human(exc)) from exc


def customer_for(root):
    """The dj-stripe Customer of a directly billed account (created at Stripe on first use)."""
    from djstripe.models import Customer

    if not root.is_root():
        raise BillingProviderError(f"{root.name} is on parent billing and has no Stripe customer.")
    _client_setup()
    try:
        customer, _ = Customer.get_or_create(subscriber=root)
    except stripe.StripeError as exc:
        raise BillingProviderError(_human(exc)) from exc
    return customer


def subscribe(root, plan):
    """Subscribe the root's Stripe customer to its plan's price; synced into dj-stripe."""
    from djstripe.models import Subscription as DjSubscription

    if not plan.stripe_price_id:
        raise BillingProviderError(f"The {plan.name} plan has no Stripe price yet (set it in the admin).")
    customer = customer_for(root)
    data = _call(stripe.Subscription.create, customer=customer.id, items=[{"plan": plan.stripe_price_id}],
                 metadata={"account": str(root.public_id), "plan": plan.code},
                 idempotency_key=f"subscribe-{root.public_id}-{plan.code}")
    DjSubscription.sync_from_stripe_data(data)
    Subscription.objects.update_or_create(account=root, defaults={"plan": plan})
    return data


def subscription_switch(root, plan):
    """Point the root's Stripe subscription at ``plan``'s price (a plan change). No proration at Stripe: the
    prorated line of an upgrade is ours, pushed with the period's invoice like every other line. Without a
    Stripe subscription yet, subscribes. Raises BillingProviderError (nothing changed at Stripe) when refused."""
    from djstripe.models import Subscription as DjSubscription

    if not plan.stripe_price_id:
        raise BillingProviderError(f"The {plan.name} plan has no Stripe price yet (set it in the admin).")
    customer = customer_for(root)
    current = next((sub for sub in DjSubscription.objects.filter(customer=customer).order_by("-created")
                    if (sub.stripe_data or {}).get("status") in ("active", "trialing", "past_due")), None)
    if current is None:
        return subscribe(root, plan)
    item = _call(stripe.Subscription.retrieve, current.id)["items"]["data"][0]["id"]
    data = _call(stripe.Subscription.modify, current.id, items=[{"id": item, "plan": plan.stripe_price_id}],
                 proration_behavior="none", metadata={"account": str(root.public_id), "plan": plan.code})
    DjSubscription.sync_from_stripe_data(data)
    return data


def payment_method_attach(root, payment_method_id: str):
    """Attach a payment method (from a SetupIntent or Stripe Checkout) and make it the default."""
    customer = customer_for(root)
    _call(stripe.PaymentMethod.attach, payment_method_id, customer=customer.id)
    _call(stripe.Customer.modify, customer.id, invoice_settings={"default_payment_method": payment_method_id})
    from djstripe.models import PaymentMethod

    PaymentMethod.sync_from_stripe_data(_call(stripe.PaymentMethod.retrieve, payment_method_id))


def setup_intent_create(root):
    customer = customer_for(root)
    return _call(stripe.SetupIntent.create, customer=customer.id, payment_method_types=["card"],
                 metadata={"account": str(root.public_id)})


def checkout_setup_url(root, *, success_url: str, cancel_url: str) -> str:
    """Stripe's hosted page to add a card (no Stripe.js on our pages, nothing from a CDN)."""
    customer = customer_for(root)
    session = _call(stripe.checkout.Session.create, mode="setup", customer=customer.id,
                    payment_method_types=["card"], success_url=success_url, cancel_url=cancel_url,
                    metadata={"account": str(root.public_id)})
    return session.url


def payment_method_from_checkout(root, session_id: str) -> None:
    """Back from Stripe's hosted page: attach the card its SetupIntent collected."""
    session = _call(stripe.checkout.Session.retrieve, session_id, expand=["setup_intent"])
    if (session.metadata or {}).get("account") != str(root.public_id):
        raise BillingProviderError("That Stripe session belongs to another account.")
    payment_method_attach(root, session.setup_intent.payment_method)


def push_invoice(invoice: Invoice) -> Invoice:
    """Send a closed invoice to Stripe. Idempotent: lines already sent and the invoice already
    created are skipped, so calling it again after a failure finishes the job without duplicates."""
    from djstripe.models import Invoice as DjInvoice

    customer = customer_for(invoice.account)
    has_subscription = Subscription.objects.filter(account=invoice.account, plan__stripe_price_id__gt="").exists()
    period = f"{invoice.period:%Y-%m}"
    for line in invoice.lines.all():
        if line.stripe_invoice_item_id or not line.amount_cents:
            continue
        if line.kind == InvoiceLine.Kind.PLAN and has_subscription:
            continue  # the Stripe subscription charges the plan fee itself
        item = _call(stripe.InvoiceItem.create, customer=customer.id, amount=line.amount_cents,
                     currency=settings.STRIPE_CURRENCY, description=line.description[:500],
                     metadata={"account": str(line.account.public_id) if line.account_id else "", "period": period,
                               "invoice": str(invoice.public_id)},
                     idempotency_key=f"line-{invoice.public_id}-{line.pk}")
        InvoiceLine.objects.filter(pk=line.pk).update(stripe_invoice_item_id=item.id)
    if not invoice.stripe_invoice_id:
        created = _call(stripe.Invoice.create, customer=customer.id, pending_invoice_items_behavior="include",
                        auto_advance=False, collection_method="charge_automatically",
                        metadata={"invoice": str(invoice.public_id), "period": period},
                        idempotency_key=f"invoice-{invoice.public_id}")
        Invoice.objects.filter(pk=invoice.pk).update(stripe_invoice_id=created.id)
        invoice.stripe_invoice_id = created.id
    data = _call(stripe.Invoice.retrieve, invoice.stripe_invoice_id)
    if data.status == "draft":
        data = _call(stripe.Invoice.finalize_invoice, invoice.stripe_invoice_id,
                     idempotency_key=f"finalize-{invoice.public_id}")
    DjInvoice.sync_from_stripe_data(data)
    status = {"paid": Invoice.PaymentStatus.PAID}.get(data.status, Invoice.PaymentStatus.OPEN)
    Invoice.objects.filter(pk=invoice.pk).update(payment_status=status)
    invoice.payment_status = status
    return invoice


def push_invoice_safely(invoice_pk: int) -> None:
    """After a period closes: push, and if Stripe fails, leave the invoice for a retry (logged)."""
    try:
        push_invoice(Invoice.objects.select_related("account").get(pk=invoice_pk))
    except BillingProviderError:
        log.exception("Invoice %s stays local until it is sent again", invoice_pk)


@transaction.atomic
def record_payment(*, stripe_invoice_id: str, paid: bool) -> int:
    """Webhook outcome: our invoice with that Stripe id is paid, or its payment failed. Idempotent."""
    from accounts.audit import audit

    status = Invoice.PaymentStatus.PAID if paid else Invoice.PaymentStatus.FAILED
    invoices = list(Invoice.objects.select_related("account").filter(stripe_invoice_id=stripe_invoice_id)
                    .exclude(payment_status=status).exclude(payment_status=Invoice.PaymentStatus.PAID))
    for invoice in invoices:
        Invoice.objects.filter(pk=invoice.pk).update(payment_status=status)
        audit(account=invoice.account, actor=None, action="billing.payment_" + ("succeeded" if paid else "failed"),
              summary=f"Payment for {invoice.period:%B %Y} " + ("received" if paid else "failed"),
              invoice=str(invoice.public_id), stripe_invoice=stripe_invoice_id)
    return len(invoices)
