"""The Stripe path against localstripe (see tests/stripe_fake.py): customer, payment method,
subscription, invoice items, invoice, webhooks with valid and invalid signatures."""

import datetime
import hashlib
import hmac
import json
import time

import pytest
import stripe
from django.urls import reverse

from billing import stripe_sync
from billing.models import Invoice, period_start
from billing.services import invoice_close
from members.roles import RoleId
from tests.factories import AccountFactory, plan, usage

# Time is an input: LAST is the month before the frozen clock's, whatever the real date.
NOW = datetime.datetime(2026, 3, 15, 12, 0, tzinfo=datetime.UTC)
LAST = period_start(period_start(NOW) - datetime.timedelta(days=1))

pytestmark = [pytest.mark.django_db, pytest.mark.stripe, pytest.mark.time_machine(NOW, tick=False)]


@pytest.fixture
def root(make_member):
    account = AccountFactory(name="Northwind", plan_code="pro")
    make_member(account, RoleId.OWNER)
    return account


def lines_of(stripe_invoice_id):
    return stripe.Invoice.retrieve(stripe_invoice_id).lines.data


def test_customer_is_created_once_and_linked_to_the_account(fake_stripe, root):
    from djstripe.models import Customer

    first = stripe_sync.customer_for(root)
    again = stripe_sync.customer_for(root)
    assert first.id == again.id and first.id.startswith("cus_")
    assert Customer.objects.get(subscriber=root).id == first.id
    assert stripe.Customer.retrieve(first.id).email == root.email


def test_payment_method_through_a_setup_intent(fake_stripe, root):
    intent = stripe_sync.setup_intent_create(root)
    card = stripe.PaymentMethod.create(type="card", card={"number": "4242424242424242", "exp_month": 12,
                                                          "exp_year": 2031, "cvc": "123"})
    stripe.SetupIntent.confirm(intent.id, payment_method=card.id)
    stripe_sync.payment_method_attach(root, card.id)  # localstripe's confirm does not attach; ours does
    customer = stripe.Customer.retrieve(stripe_sync.customer_for(root).id)
    assert customer.invoice_settings.default_payment_method == card.id


def add_card(root):
    card = stripe.PaymentMethod.create(type="card", card={"number": "4242424242424242", "exp_month": 12,
                                                          "exp_year": 2031, "cvc": "123"})
    stripe_sync.payment_method_attach(root, card.id)
    return card


def test_subscription_to_the_plans_price_is_synced_into_djstripe(fake_stripe, root):
    from djstripe.models import Subscription as DjSubscription

    add_card(root)
    pro = plan("pro")
    stripe.Product.create(id="prod_pro", name="Pro")
    stripe.Plan.create(id="price_pro", product="prod_pro", amount=pro.monthly_price_cents, currency="usd",
                       interval="month")
    pro.stripe_price_id = "price_pro"
    pro.save()
    data = stripe_sync.subscribe(root, pro)
    assert DjSubscription.objects.get(id=data.id).status == "active"


def priced(code):
    """The plan with a price at the fake Stripe."""
    found = plan(code)
    stripe.Product.create(id=f"prod_{code}", name=found.name)
    stripe.Plan.create(id=f"price_{code}", product=f"prod_{code}", amount=found.monthly_price_cents, currency="usd",
                       interval="month")
    found.stripe_price_id = f"price_{code}"
    found.save()
    return found


def test_plan_changes_switch_the_stripe_subscription(fake_stripe, root):
    """An upgrade switches the subscription's price at once (no proration at Stripe: ours is an invoice line);
    a scheduled downgrade switches it when it applies."""
    from billing.plans import apply_due_plan_changes, plan_change
    from members.models import Membership

    owner = Membership.objects.get(account=root, role=RoleId.OWNER).user
    add_card(root)
    pro, agency = priced("pro"), priced("agency")
    sub_id = stripe_sync.subscribe(root, pro).id
    change = plan_change(account=root, plan=agency, by=owner)
    assert change.status == "applied" and change.prorated_cents > 0
    at_stripe = stripe.Subscription.retrieve(sub_id)
    assert at_stripe["items"]["data"][0]["plan"]["id"] == "price_agency"
    scheduled = plan_change(account=root, plan=pro, by=owner)
    assert stripe.Subscription.retrieve(sub_id)["items"]["data"][0]["plan"]["id"] == "price_agency"
    assert apply_due_plan_changes(now=scheduled.effective_at) == (1, 0)
    assert stripe.Subscription.retrieve(sub_id)["items"]["data"][0]["plan"]["id"] == "price_pro"


def test_a_plan_change_stripe_refuses_changes_nothing(fake_stripe, root):
    from django.core.exceptions import ValidationError

    from billing.models import PlanChange
    from billing.plans import current_plan, plan_change
    from members.models import Membership

    owner = Membership.objects.get(account=root, role=RoleId.OWNER).user
    with pytest.raises(ValidationError, match="no Stripe price"):  # the Agency plan has no price at Stripe
        plan_change(account=root, plan=plan("agency"), by=owner)
    assert current_plan(root).code == "pro" and not PlanChange.objects.exists()


def test_subscribing_without_a_stripe_price_is_explained(fake_stripe, root):
    with pytest.raises(stripe_sync.BillingProviderError, match="no Stripe price"):
        stripe_sync.subscribe(root, plan("pro"))


def test_closing_a_period_pushes_one_item_per_line_and_a_finalized_invoice(fake_stripe, root,
                                                                           django_capture_on_commit_callbacks):
    from djstripe.models import Invoice as DjInvoice

    sub = AccountFactory(parent=root, name="Acme")
    usage(root, 700, period=LAST)
    usage(sub, 500, period=LAST)  # 200 over the Pro plan's 1000
    with django_capture_on_commit_callbacks(execute=True):
        invoice, _ = invoice_close(root=root, period=LAST)
    invoice.refresh_from_db()
    assert invoice.stripe_invoice_id and invoice.payment_status == Invoice.PaymentStatus.OPEN
    remote = stripe.Invoice.retrieve(invoice.stripe_invoice_id)
    assert remote.status == "open" and remote.total == invoice.total_cents
    metas = sorted(line.metadata["account"] for line in lines_of(remote.id))
    assert metas == sorted([str(root.public_id), str(root.public_id), str(sub.public_id)])
    assert {line.metadata["period"] for line in lines_of(remote.id)} == {LAST.strftime("%Y-%m")}
    assert DjInvoice.objects.get(id=invoice.stripe_invoice_id).total == remote.total


def test_sending_again_never_duplicates_charges(fake_stripe, root):
    usage(root, 1500, period=LAST)
    invoice, _ = invoice_close(root=root, period=LAST)
    stripe_sync.push_invoice(invoice)
    stripe_sync.push_invoice(Invoice.objects.get(pk=invoice.pk))
    customer = stripe_sync.customer_for(root).id
    invoices = stripe.Invoice.list(customer=customer).data
    assert len(invoices) == 1
    assert len(lines_of(invoices[0].id)) == 2  # plan fee and one usage line, once each


def test_stripe_down_gives_a_clear_message_and_keeps_the_invoice_for_later(fake_stripe, root, settings, client):
    usage(root, 10, period=LAST)
    invoice, _ = invoice_close(root=root, period=LAST)
    settings.STRIPE_API_HOST = "http://127.0.0.1:9"  # nothing listens there
    with pytest.raises(stripe_sync.BillingProviderError, match="could not be reached"):
        stripe_sync.push_invoice(invoice)
    invoice.refresh_from_db()
    assert invoice.payment_status == Invoice.PaymentStatus.LOCAL and not invoice.stripe_invoice_id
    client.force_login(root.memberships.get().user)
    url = reverse("billing:invoice-send", kwargs={"account_id": root.public_id, "invoice_id": invoice.public_id})
    assert "could not be reached" in client.post(url, follow=True).content.decode()
    settings.STRIPE_API_HOST = fake_stripe.url  # Stripe is back: the retry completes
    assert "sent to Stripe" in client.post(url, follow=True).content.decode()
    assert Invoice.objects.get(pk=invoice.pk).payment_status == Invoice.PaymentStatus.OPEN


def test_card_declined_and_auth_errors_read_well():
    declined = stripe.CardError("Your card was declined.", param=None, code="card_declined")
    assert "The card was declined" in stripe_sync._human(declined)
    assert "keys are not valid" in stripe_sync._human(stripe.AuthenticationError("bad key"))


def test_hosted_card_page_failure_is_explained(fake_stripe, root, client):
    client.force_login(root.memberships.get().user)
    response = client.post(reverse("billing:payment-method", kwargs={"account_id": root.public_id}), follow=True)
    assert "Stripe refused the request" in response.content.decode()  # localstripe has no Checkout


def test_billing_actions_need_manage_billing_and_a_root(fake_stripe, root, make_member, client):
    client.force_login(make_member(root, RoleId.AGENCY_ADMIN))
    assert client.post(reverse("billing:stripe-setup", kwargs={"account_id": root.public_id})).status_code == 403
    sub = AccountFactory(parent=root)
    client.force_login(make_member(sub, RoleId.OWNER))
    assert client.post(reverse("billing:stripe-setup", kwargs={"account_id": sub.public_id})).status_code == 403


def test_without_keys_pages_say_stripe_is_not_configured(client, root):
    client.force_login(root.memberships.get().user)
    html = client.get(reverse("billing:overview", kwargs={"account_id": root.public_id})).content.decode()
    assert "Stripe is not configured" in html


class TestWebhooks:
    SECRET = "whsec_localtest"

    @pytest.fixture
    def endpoint(self, fake_stripe):
        from djstripe.models import WebhookEndpoint

        return WebhookEndpoint.objects.create(id="we_local", url="http://testserver/", secret=self.SECRET,
                                              status="enabled", enabled_events=["*"], livemode=False,
                                              api_version="2020-08-27")

    def post_event(self, client, endpoint, event, secret=None):
        payload = json.dumps(event)
        ts = int(time.time())
        sig = hmac.new((secret or self.SECRET).encode(), f"{ts}.{payload}".encode(), hashlib.sha256).hexdigest()
        url = reverse("djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": endpoint.djstripe_uuid})
        return client.post(url, payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=f"t={ts},v1={sig}")

    def paid_invoice_event(self, root):
        add_card(root)
        usage(root, 1200, period=LAST)
        invoice, _ = invoice_close(root=root, period=LAST)
        stripe_sync.push_invoice(invoice)
        invoice.refresh_from_db()
        remote = stripe.Invoice.pay(invoice.stripe_invoice_id)
        event = {"id": "evt_paid_1", "object": "event", "type": "invoice.paid", "api_version": "2020-08-27",
                 "created": int(time.time()), "livemode": False, "pending_webhooks": 0,
                 "request": {"id": None, "idempotency_key": None}, "data": {"object": remote.to_dict()}}
        return invoice, event

    def test_valid_signature_marks_our_invoice_paid_once(self, client, endpoint, root):
        invoice, event = self.paid_invoice_event(root)
        assert self.post_event(client, endpoint, event).status_code == 200
        invoice.refresh_from_db()
        assert invoice.payment_status == Invoice.PaymentStatus.PAID
        assert root.audit_events.filter(action="billing.payment_succeeded").count() == 1
        self.post_event(client, endpoint, {**event, "id": "evt_paid_2"})  # a duplicate delivery
        assert root.audit_events.filter(action="billing.payment_succeeded").count() == 1

    def test_invalid_signature_is_refused_and_changes_nothing(self, client, endpoint, root):
        invoice, event = self.paid_invoice_event(root)
        response = self.post_event(client, endpoint, event, secret="whsec_wrong")
        assert response.status_code == 400
        invoice.refresh_from_db()
        assert invoice.payment_status == Invoice.PaymentStatus.OPEN

    def test_payment_failed_is_recorded(self, client, endpoint, root):
        invoice, event = self.paid_invoice_event(root)
        Invoice.objects.filter(pk=invoice.pk).update(payment_status=Invoice.PaymentStatus.OPEN)
        failed = {**event, "id": "evt_failed_1", "type": "invoice.payment_failed"}
        assert self.post_event(client, endpoint, failed).status_code == 200
        invoice.refresh_from_db()
        assert invoice.payment_status == Invoice.PaymentStatus.FAILED
        client.force_login(root.memberships.get().user)
        html = client.get(reverse("billing:overview", kwargs={"account_id": root.public_id})).content.decode()
        assert f"The payment for {invoice.period:%B %Y} failed" in html
