"""A local fake Stripe (localstripe, GPL-3, test-only) on 127.0.0.1, patched in memory so that
dj-stripe's syncs and our calls work against it. A contract test of our Stripe calls, not proof of
Stripe's semantics: see ../shared/stripe-notes.md. Never imported by application code."""

import asyncio
import socket
import threading
import time

from aiohttp import web


def _patch(resources, server):
    store = resources.store
    type(store).dump_to_disk = lambda self: None  # no /tmp file, no cross-run state

    # Fields dj-stripe expects (and expands) on the objects it syncs: present before expansion runs.
    for cls in (resources.Invoice, resources.Subscription, resources.InvoiceLineItem, resources.SubscriptionItem):
        cls.discounts = []
    resources.InvoiceLineItem.discount_amounts = []

    # Today's API says proration_behavior="none" on a subscription update; localstripe knows only the older
    # prorate=False, which meant the same.
    old_sub_update = resources.Subscription._update

    def subscription_update(self, proration_behavior=None, **data):
        if proration_behavior is not None:
            data.setdefault("prorate", proration_behavior != "none")
        return old_sub_update(self, **data)

    resources.Subscription._update = subscription_update

    # More fields dj-stripe expects, filled in after export.
    old_invoice_export = resources.Invoice._export

    def invoice_export(self, *args, **kwargs):
        data = old_invoice_export(self, *args, **kwargs)
        data.setdefault("discounts", [])
        data["default_tax_rates"] = data.get("default_tax_rates") or []
        data.setdefault("auto_advance", False)
        data.setdefault("account_country", "US")
        data.setdefault("account_name", "Agency Console")
        for line in (data.get("lines") or {}).get("data", []):
            line.setdefault("discounts", [])
            line.setdefault("discount_amounts", [])
        return data

    resources.Invoice._export = invoice_export

    old_sub_export = resources.Subscription._export

    def subscription_export(self, *args, **kwargs):
        data = old_sub_export(self, *args, **kwargs)
        data.setdefault("discounts", [])
        data["default_tax_rates"] = data.get("default_tax_rates") or []
        for item in (data.get("items") or {}).get("data", []):
            item.setdefault("subscription", data["id"])
            item.setdefault("discounts", [])
            plan = item.get("plan") or {}
            item.setdefault("price", {**plan, "object": "price", "type": "recurring", "unit_amount": plan.get("amount"),
                                      "recurring": {"interval": plan.get("interval", "month"),
                                                    "interval_count": plan.get("interval_count", 1),
                                                    "usage_type": "licensed"}})
        return data

    resources.Subscription._export = subscription_export

    # Parameters our calls send that localstripe does not know: accept and ignore them.
    old_invoice_create = resources.Invoice._api_create.__func__

    def invoice_create(cls, customer=None, metadata=None, auto_advance=None, collection_method=None,
                       days_until_due=None, **kwargs):
        # Real Stripe invoices pending items for a customer without a subscription; localstripe does not.
        if not resources.Customer._api_retrieve(customer).subscriptions._list:
            invoice = resources.Invoice(customer=customer, metadata=metadata,
                                        description=kwargs.get("description"))
        else:
            invoice = old_invoice_create(cls, customer=customer, metadata=metadata, **kwargs)
            invoice.metadata = metadata or {}
        return invoice

    resources.Invoice._api_create = classmethod(invoice_create)

    def finalize(id, **kwargs):
        invoice = resources.Invoice._api_retrieve(id)
        invoice._draft = False
        invoice.status_transitions["finalized_at"] = int(time.time())
        return invoice

    def account(**kwargs):
        return {"id": "acct_localstripe", "object": "account", "type": "standard", "country": "US",
                "email": "billing@agency-console.local", "default_currency": "usd",
                "settings": {"dashboard": {"display_name": "Agency Console"}}, "charges_enabled": True,
                "payouts_enabled": True, "details_submitted": True, "business_profile": {"name": "Agency Console"}}

    async def finalize_route(request):
        return server.json_response(finalize(request.match_info["id"])._export())

    async def account_route(request):
        return server.json_response(account())

    server.app.router.add_post("/v1/invoices/{id}/finalize", finalize_route)
    server.app.router.add_get("/v1/account", account_route)


class FakeStripe:
    """Starts the patched localstripe app on a free 127.0.0.1 port in a background thread."""

    def __init__(self):
        from localstripe import resources, server

        _patch(resources, server)
        self.resources, self.app = resources, server.app
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("localstripe did not start")

    def _run(self):
        asyncio.set_event_loop(self.loop)
        runner = web.AppRunner(self.app)
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self.loop.run_forever()

    def reset(self):
        self.resources.store.clear()

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
