import re
from functools import partial

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views import View
from django.views.generic import ListView, TemplateView

from accounts.baked import Baked
from accounts.downloads import csv_download, money
from accounts.mixins import AccountViewMixin
from accounts.models import subtree_bounds
from accounts.paging import Paginator
from accounts.params import search_text
from accounts.sorting import Column, Sorting

from . import stripe_sync
from .charts import account_bars, account_marks, daily_bars, daily_marks
from .models import BillingTransfer, Invoice, Plan, UsageRollup, period_start
from .selectors import minutes_used_in_subtrees, plan_for
from .statements import (
    SEP,
    Line,
    compute_statement,
    daily_minutes,
    live_statement,
    statement_from_invoice,
    statement_lines,
    statement_rows,
)
from .templatetags.billing import cents

CHECKOUT_SESSION_ID = re.compile(r"cs_[A-Za-z0-9_]{1,255}")  # what Stripe sends back in ?session_id=


def sees_prices(access) -> bool:
    """A root's billing readers see amounts. A subaccount on parent billing sees its own usage but
    not the parent's prices, unless the parent allowed billing explicitly in its access categories."""
    if not access.has("view_billing"):
        return False
    account = access.account
    if not account.is_subaccount or access.is_inherited:
        return True
    return account.access_categories.get("billing") in ("read", "full")


_failed_invoice = Baked(lambda account_id: Invoice.objects.filter(
    account_id=account_id, payment_status=Invoice.PaymentStatus.FAILED).order_by("-period")[:1])

# A subaccount's Billing and Usage tabs (every account page's queries are compiled once: ``accounts.baked``).
_open_transfer = Baked(lambda account_id: BillingTransfer.objects.filter(
    account_id=account_id, status__in=BillingTransfer.OPEN).select_related("plan").order_by("pk")[:1])


def _own_minutes_query(low, high, period, text, *, search):
    """The subtree's accounts that used minutes this period, largest first: (account id, name, own minutes)."""
    usage = (UsageRollup.objects.filter(account__path__gte=low, account__path__lte=high, period=period)
             .exclude(own_minutes=0).order_by("-own_minutes", "account_id"))
    if search:
        usage = usage.filter(account__name__icontains=text)
    return usage.values_list("account_id", "account__name", "own_minutes")


_own_minutes = Baked(_own_minutes_query)

# The Invoices page's count and page, by the sort asked for (``INVOICE_SORTS``)
_invoices = Baked(lambda account_id, *, sort: Invoice.objects.filter(account_id=account_id).order_by(
    *INVOICE_SORTS.parse({INVOICE_SORTS.param: sort}).order_by))

LINES_PER_PAGE = 25
TOP_ACCOUNTS = 10


class BillingOverviewView(AccountViewMixin, TemplateView):
    """Settings → Billing: this period's minutes per day and per account, and (for those who may see
    prices) the running statement. ``usage_only`` is the Usage tab: minutes, never prices.

    Everything comes from the rollups, and only the lines shown are built: the totals and the overage split
    in aggregate queries (``live_statement``), the chart's top accounts and one page of lines (largest first,
    searchable by account name with ``?q=``), whatever the size of the tree. The CSV has every line."""

    permission_required = "view_billing"
    template_name = "billing/overview.html"
    usage_only = False

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        account = self.account
        period = period_start()
        search = " ".join(search_text(self.request.GET).split())
        ctx.update(period=period, prices=not self.usage_only and sees_prices(self.access), q=search,
                   usage_only=self.usage_only, stripe_configured=stripe_sync.is_configured())
        if account.is_root():
            if not self.usage_only:  # the Usage tab does not show payments
                ctx["failed_invoice"] = next(iter(_failed_invoice(account.pk)), None)
            plan = self.access.plan  # loaded with the lineage
            statement = live_statement(account, period, plan=plan, priced=ctx["prices"])
            ctx.update(statement=statement, plan=plan, minutes_used=statement.total_minutes,
                       line_count=statement.line_count)
            rows, to_lines = statement_rows(statement, search=search), partial(statement_lines, statement)
            all_rows = statement_rows(statement)
        else:
            ctx["open_transfer"] = next(iter(_open_transfer(account.pk)), None)
            payer = self.access.ancestors[0]  # the root: loaded with the lineage when access was resolved
            ctx.update(payer=payer, payer_visible=self.access.reaches(payer),  # R6
                       minutes_used=minutes_used_in_subtrees([account], period)[account.pk])
            if ctx["prices"]:
                # the payer's statement lines of this subtree, with their amounts
                payer_statement = live_statement(payer, period)
                rows = statement_rows(payer_statement, within=account.path, search=search)
                all_rows = statement_rows(payer_statement, within=account.path)
                # R6: the root's labels run from the root; start them at the first account the reader reaches
                hidden = [a.name for a in self.access.ancestors if not self.access.reaches(a)]
                prefix = SEP.join(hidden) + SEP if hidden else ""

                def to_lines(*row_lists):
                    line_lists = statement_lines(payer_statement, *row_lists)
                    for ln in (ln for lines in line_lists for ln in lines):
                        if prefix and ln.description.startswith(prefix):
                            ln.description = ln.description[len(prefix):]
                    return line_lists
            else:
                all_rows = _own_minutes.pages(*subtree_bounds(account.path), period, "", search=False)
                rows = _own_minutes.pages(*subtree_bounds(account.path), period, search, search=bool(search))

                def to_lines(*row_lists):
                    return [[Line(pk, name, minutes) for pk, name, minutes in rows] for rows in row_lists]
        ctx["daily"] = daily_bars(daily_minutes(period=period, account=account))
        # the table shows LINES_PER_PAGE lines at a time, largest first (a tree of 10,000 accounts is not one
        # page); the totals and the CSV cover them all
        paginator = Paginator(rows, LINES_PER_PAGE)
        if not search and ctx.get("line_count") is not None:
            paginator.count = ctx["line_count"]  # known from the statement's totals: no COUNT query
        ctx["page_obj"] = paginator.get_page(self.request.GET.get("page"))
        shown = list(ctx["page_obj"].object_list)
        if not search and ctx["page_obj"].number == 1:
            top = shown[:TOP_ACCOUNTS]  # the first page starts with the largest lines
        else:
            top = all_rows[:TOP_ACCOUNTS]
        ctx["lines"], top_lines = to_lines(shown, top)
        ctx.setdefault("line_count", paginator.count)
        ctx["by_account"] = account_bars(top_lines, count=ctx["line_count"])
        ctx["daily_marks"], ctx["account_marks"] = daily_marks(ctx["daily"]), account_marks(ctx["by_account"])
        return ctx


class UsageView(BillingOverviewView):
    permission_required = "view_usage"
    usage_only = True


class InvoiceAccessMixin(AccountViewMixin):
    permission_required = "view_billing"

    def check_root(self):
        if not self.account.is_root():
            raise PermissionDenied(f"{self.account.name} is on parent billing: its invoices go to the account above.")


INVOICE_SORTS = Sorting(
    Column("period", descending_first=True),
    Column("minutes", "total_minutes", "-period", descending_first=True),
    Column("total", "total_cents", "-period", descending_first=True),
    default="-period",
)


class InvoiceListView(InvoiceAccessMixin, ListView):
    template_name = "billing/invoice_list.html"
    paginate_by = 24

    def get_queryset(self):
        self.check_root()
        self.sort = INVOICE_SORTS.parse(self.request.GET)
        return _invoices.pages(self.account.pk, sort=self.sort.value)

    def get_context_data(self, **kwargs):
        return super().get_context_data(sort=self.sort, extra_query=self.sort.extra_query, **kwargs)


class InvoiceDetailView(InvoiceAccessMixin, TemplateView):
    template_name = "billing/invoice_detail.html"

    def get(self, request, *args, **kwargs):
        self.check_root()
        invoice = get_object_or_404(Invoice.objects.prefetch_related("lines"), account=self.account,
                                    public_id=kwargs["invoice_id"])
        statement = statement_from_invoice(invoice)
        if request.GET.get("format") == "csv":
            return invoice_csv(statement)
        return self.render_to_response(self.get_context_data(invoice=invoice, statement=statement,
                                                             stripe_configured=stripe_sync.is_configured()))


class CurrentStatementCsvView(InvoiceAccessMixin, TemplateView):
    def get(self, request, *args, **kwargs):
        self.check_root()
        return invoice_csv(compute_statement(self.account, period_start(), from_rollups=True))


def invoice_csv(statement) -> HttpResponse:
    """The statement as CSV. Account and plan names are tenant text: ``csv_download`` neutralises
    formula-like cells and sends an RFC 6266 filename; minutes and amounts are passed as numbers."""
    name = "-".join(f"{statement.account.name} {statement.period:%Y-%m}".split())
    rows = [
        ["line", "account", "minutes", "amount"],
        ["plan", f"{statement.plan_name} plan", "", money(statement.plan_price_cents)],
        *(["usage", line.description, line.minutes, money(line.amount_cents)] for line in statement.lines),
        ["total", "", statement.total_minutes, money(statement.total_cents)],
    ]
    return csv_download(f"{name}.csv", rows)


class StripeActionView(AccountViewMixin, View):
    """POST-only actions of a directly billed account's billing admins, each a clear message."""

    permission_required = "manage_billing"
    http_method_names = ["post", "get"]

    def overview(self):
        return redirect("billing:overview", account_id=self.account.public_id)

    def guard(self):
        if not self.account.is_root():
            raise PermissionDenied(f"{self.account.name} is on parent billing: payments are handled above it.")
        if not stripe_sync.is_configured():
            messages.error(self.request, "Stripe is not configured on this installation.")
            return self.overview()
        return None


class StripeSetupView(StripeActionView):
    def post(self, request, *args, **kwargs):
        if (stop := self.guard()) is not None:
            return stop
        plan = plan_for(self.account)
        try:
            if plan and plan.stripe_price_id:
                stripe_sync.subscribe(self.account, plan)
                messages.success(request, f"{self.account.name} is subscribed to {plan.name} on Stripe.")
            else:
                stripe_sync.customer_for(self.account)
                messages.success(request, f"{self.account.name} is set up on Stripe.")
        except stripe_sync.BillingProviderError as exc:
            messages.error(request, str(exc))
        return self.overview()


class PaymentMethodView(StripeActionView):
    """Add a card on Stripe's hosted page (setup mode), then come back here."""

    def post(self, request, *args, **kwargs):
        if (stop := self.guard()) is not None:
            return stop
        back = request.build_absolute_uri(reverse("billing:payment-method", kwargs={"account_id":
                                                                                    self.account.public_id}))
        try:
            url = stripe_sync.checkout_setup_url(self.account, success_url=back + "?session_id={CHECKOUT_SESSION_ID}",
                                                 cancel_url=back + "?cancelled=1")
        except stripe_sync.BillingProviderError as exc:
            messages.error(request, str(exc))
            return self.overview()
        return redirect(url)

    def get(self, request, *args, **kwargs):
        if (stop := self.guard()) is not None:
            return stop
        if request.GET.get("cancelled"):
            messages.info(request, "No card was added.")
        elif session_id := request.GET.get("session_id"):
            try:
                if not CHECKOUT_SESSION_ID.fullmatch(session_id):
                    raise stripe_sync.BillingProviderError("The link back from Stripe is not valid; no card added.")
                stripe_sync.payment_method_from_checkout(self.account, session_id)
            except stripe_sync.BillingProviderError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, "Card saved. It is used for the next invoices.")
        return self.overview()


class InvoiceSendView(StripeActionView):
    """Send (or finish sending) a closed invoice to Stripe; safe to repeat."""

    def post(self, request, *args, **kwargs):
        if (stop := self.guard()) is not None:
            return stop
        invoice = get_object_or_404(Invoice.objects.select_related("account"), account=self.account,
                                    public_id=kwargs["invoice_id"])
        try:
            stripe_sync.push_invoice(invoice)
        except stripe_sync.BillingProviderError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Invoice for {invoice.period:%B %Y} sent to Stripe.")
        return redirect("billing:invoice-detail", account_id=self.account.public_id, invoice_id=invoice.public_id)


class PlansView(InvoiceAccessMixin, TemplateView):
    """Billing → Plans: compare the plans and change (billing admins of a root account)."""

    template_name = "billing/plans.html"

    def get(self, request, *args, **kwargs):
        self.check_root()
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        from .models import PlanChange
        from .plans import current_plan, plan_change_refusal

        ctx = super().get_context_data(**kwargs)
        current = current_plan(self.account)
        plans = list(Plan.objects.all())
        for p in plans:
            p.is_current = current is not None and p.pk == current.pk
            p.is_upgrade = current is None or p.monthly_price_cents > current.monthly_price_cents
            p.refusal = None if p.is_current else plan_change_refusal(self.account, p, current)
        ctx.update(plans=plans, current=current, may_change=self.access.has("manage_billing"),
                   scheduled=PlanChange.objects.filter(account=self.account, status="scheduled")
                   .select_related("to_plan").first())
        return ctx


class PlanChangeView(InvoiceAccessMixin, TemplateView):
    """Confirm, then change: an upgrade now (with its prorated amount shown), a downgrade at the period's end."""

    permission_required = ("view_billing", "manage_billing")
    template_name = "billing/plan_change.html"

    def get(self, request, *args, **kwargs):
        self.check_root()
        if not request.GET.get("plan"):  # nothing chosen yet: choose on the plans page
            return redirect("billing:plans", account_id=self.account.public_id)
        return super().get(request, *args, **kwargs)

    def get_plan(self):
        """The plan named by ``?plan=<code>`` (the form posts it too); an unknown code is a 404."""
        self.check_root()
        code = self.request.POST.get("plan") or self.request.GET.get("plan") or ""
        if not re.fullmatch(r"[-a-zA-Z0-9_]{1,50}", code):  # a slug, or nothing to look up (NUL breaks PostgreSQL)
            raise Http404("No such plan.")
        return get_object_or_404(Plan, code=code)

    def get_context_data(self, **kwargs):
        from .plans import current_plan, plan_change_refusal, quote

        ctx = super().get_context_data(**kwargs)
        plan = self.get_plan()
        current = current_plan(self.account)
        q = quote(plan, current)  # the figures the service will charge
        ctx.update(plan=plan, current=current, upgrade=q.upgrade, prorated=q.prorated_cents, days_left=q.days_left,
                   days=q.period_days, refusal=plan_change_refusal(self.account, plan, current),
                   next_period=q.next_period)
        return ctx

    def post(self, request, *args, **kwargs):
        from .plans import plan_change

        plan = self.get_plan()
        try:
            change = plan_change(account=self.account, plan=plan, by=request.user, request=request)
        except (ValidationError, PermissionDenied) as exc:
            messages.error(request, " ".join(getattr(exc, "messages", None) or [str(exc)]))
            return redirect("billing:plans", account_id=self.account.public_id)
        if change.status == "applied":
            messages.success(request, f"You are on the {plan.name} plan now. This month's statement has a prorated "
                                      f"line of {cents(change.prorated_cents)}.")
        else:
            messages.success(request, f"You move to the {plan.name} plan on {change.effective_at:%d %B %Y}; until "
                                      "then nothing changes. You can cancel it on this page.")
        return redirect("billing:plans", account_id=self.account.public_id)


class PlanChangeCancelView(InvoiceAccessMixin, View):
    permission_required = ("view_billing", "manage_billing")
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        from .models import PlanChange
        from .plans import plan_change_cancel

        self.check_root()
        change = get_object_or_404(PlanChange, account=self.account, status=PlanChange.Status.SCHEDULED)
        try:
            plan_change_cancel(change=change, by=request.user, request=request)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, "The scheduled plan change is cancelled.")
        return redirect("billing:plans", account_id=self.account.public_id)
