import datetime

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.template.response import TemplateResponse

from accounts.admin_base import ReadOnlyAdminMixin
from accounts.models import Account
from members.forms import EmailAddressField
from members.models import User

from . import stripe_sync, transfers
from .models import BillingTransfer, Invoice, InvoiceLine, Plan, Subscription, UsageRecord, period_start
from .services import invoice_close
from .templatetags.billing import cents


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "monthly_price_cents", "included_minutes", "overage_cents_per_minute",
                    "allows_subaccounts", "is_default", "stripe_price_id")
    list_editable = ("allows_subaccounts",)
    prepopulated_fields = {"code": ("name",)}


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("account", "plan", "started_at")
    list_filter = ("plan",)
    list_select_related = ("account", "plan")
    search_fields = ("account__name", "=account__public_id")
    autocomplete_fields = ("account",)
    show_full_result_count = False

    readonly_fields = ("account", "started_at")

    def has_delete_permission(self, request, obj=None):
        return False  # a root account always has a plan; change it instead

    def has_add_permission(self, request):
        return False  # a top-level account gets its subscription when it is created; subaccounts have none

    def save_model(self, request, obj, form, change):
        """A plan change goes through ``billing.plans`` (the rules of Billing → Plans: no plan without subaccounts
        for a tree that has them; upgrades now, downgrades at the next period)."""
        from .plans import plan_change

        current = Subscription.objects.select_related("plan").get(pk=obj.pk).plan
        if current.pk == obj.plan_id:
            return
        try:
            change_ = plan_change(account=obj.account, plan=obj.plan, by=None, staff=request.user,
                                  request=request)
        except ValidationError as exc:
            request._admin_refused = True
            self.message_user(request, f"Nothing was saved: {' '.join(exc.messages)}", messages.ERROR)
            return
        if change_.status == "scheduled":
            self.message_user(request, f"{obj.account.name} moves to {obj.plan.name} on "
                                       f"{change_.effective_at:%d %B %Y} (a downgrade waits for the next period).",
                              messages.INFO)

    def log_change(self, request, obj, message):
        if not getattr(request, "_admin_refused", False):
            return super().log_change(request, obj, message)


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
    readonly_fields = ("kind", "description", "minutes", "amount_cents", "stripe_invoice_item_id")
    fields = readonly_fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Closed invoices are read-only: amounts never change after closing."""

    list_display = ("account", "period", "plan_name", "total_minutes", "total_cents", "payment_status", "closed_at")
    list_filter = ("payment_status", "period")
    list_select_related = ("account",)
    search_fields = ("account__name", "=account__public_id", "stripe_invoice_id")
    inlines = [InvoiceLineInline]
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Invoice._meta.fields]


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The ledger invoices are computed from: read only, for everyone."""

    list_display = ("account", "billing_root", "period", "occurred_on", "minutes", "seconds", "recorded_at")
    list_filter = ("period",)
    search_fields = ("=account__public_id", "=billing_root__public_id")
    search_help_text = "Account ID or billing root ID."
    list_select_related = ("account", "billing_root")
    ordering = ("-pk",)  # the primary key's index: newest first without sorting the ledger
    show_full_result_count = False


@admin.action(description="Close last month's billing period for the selected root accounts")
def close_last_period(modeladmin, request, queryset):
    period = period_start(period_start() - datetime.timedelta(days=1))
    created = skipped = 0
    for account in queryset:
        try:
            _, was_created = invoice_close(root=account, period=period, by=request.user, request=request)
            created += was_created
            skipped += not was_created
        except ValidationError as exc:
            modeladmin.message_user(request, f"{account.name}: {' '.join(exc.messages)}", messages.WARNING)
    modeladmin.message_user(request, f"{period:%B %Y}: {created} invoice(s) closed, {skipped} already closed.")


@admin.register(BillingTransfer)
class BillingTransferAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: transfers start and move on through ``billing.transfers`` only (the parent's wizard, the
    customer's link, ``start_billing_transfer`` and the Account admin's action). Staff may cancel open ones."""

    list_display = ("account", "from_root", "billing_owner_email", "plan", "status", "cutover", "created_at",
                    "decided_at")
    list_filter = ("status", "cutover")
    search_fields = ("account__name", "=account__public_id", "=public_id", "billing_owner_email")
    list_select_related = ("account", "from_root", "plan")
    exclude = ("nonce",)  # half of the customer's link
    date_hierarchy = "created_at"
    show_full_result_count = False
    actions = ["cancel_selected"]

    def has_cancel_permission(self, request):
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    @admin.action(description="Cancel selected transfers", permissions=["cancel"])
    def cancel_selected(self, request, queryset):
        cancelled = 0
        for transfer in queryset.select_related("account"):
            try:
                transfers.transfer_cancel(transfer=transfer, by=None, staff=request.user, request=request)
            except ValidationError as exc:
                self.message_user(request, f"{transfer.account.name}: {' '.join(exc.messages)}", messages.WARNING)
            else:
                cancelled += 1
        self.message_user(request, f"{cancelled} billing transfer(s) cancelled; their links no longer work.",
                          messages.SUCCESS if cancelled else messages.INFO)


class TransferStartForm(forms.Form):
    """The platform's billing transfer of one subaccount (the service checks everything again)."""

    billing_owner_email = EmailAddressField(label="Billing owner's email")
    plan = forms.ModelChoiceField(queryset=Plan.objects.all(), empty_label=None, label="Plan after the transfer")
    cutover = forms.ChoiceField(label="When it takes effect", choices=BillingTransfer.Cutover.choices,
                                initial=BillingTransfer.Cutover.NOW, widget=forms.RadioSelect)
    keep_agency_access = forms.ChoiceField(label="Keep agency access", initial="no", widget=forms.RadioSelect,
                                           choices=[("no", "No: only the account's own people reach it afterwards"),
                                                    ("yes", "Yes: its former top account keeps agency access")])
    agency_people = forms.ModelMultipleChoiceField(
        label="Who stays in as agency members", queryset=User.objects.none(), required=False,
        widget=forms.CheckboxSelectMultiple, help_text="Only with agency access kept: Owners and Admins above.")

    def __init__(self, *args, account, **kwargs):
        super().__init__(*args, **kwargs)
        self.account = account
        self.fields["plan"].label_from_instance = lambda p: (
            f"{p.name}: {cents(p.monthly_price_cents)} a month, {p.included_minutes} minutes included"
            + (", subaccounts" if p.allows_subaccounts else ""))
        self.fields["agency_people"].queryset = transfers.agency_candidates(account)
        own = [u.email for u in transfers.billing_owner_candidates(account)[:10]]
        self.fields["billing_owner_email"].help_text = (
            (f"{account.name}'s own people: {', '.join(own)}. " if own else "")
            + "Anyone else gets a link to sign up; they become its Owner when they accept.")

    def clean_plan(self):
        plan = self.cleaned_data["plan"]
        refusal = transfers.plan_refusal(self.account, plan)
        if refusal:
            raise ValidationError(refusal)
        return plan

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("keep_agency_access") != "yes" and cleaned.get("agency_people"):
            self.add_error("agency_people", "Choose people only when the agency keeps access.")
        return cleaned


def start_transfer_action(modeladmin, request, queryset):
    """The Account changelist's "Start a billing transfer…": an intermediate page for one subaccount,
    then ``transfer_start`` as the platform (the customer still accepts through the emailed link)."""
    selected = list(queryset[:2])
    if len(selected) != 1:
        modeladmin.message_user(request, "Select exactly one subaccount to start a billing transfer.",
                                messages.ERROR)
        return None
    account = selected[0]
    refusal = transfers.transfer_refusal(account, None)
    if refusal:
        modeladmin.message_user(request, refusal, messages.ERROR)
        return None
    form = TransferStartForm(request.POST if "apply" in request.POST else None, account=account)
    if form.is_valid():
        data = form.cleaned_data
        keep = data["keep_agency_access"] == "yes"
        try:
            transfer = transfers.transfer_start(
                account=account, by=None, billing_owner_email=data["billing_owner_email"], plan=data["plan"],
                cutover=data["cutover"], keep_agency_access=keep, agency_people=list(data["agency_people"]),
                staff=request.user, request=request)
        except (ValidationError, PermissionDenied) as exc:
            form.add_error(None, " ".join(getattr(exc, "messages", None) or [str(exc)]))
        else:
            link = transfers.transfer_url(transfer, request)
            modeladmin.message_user(request, (
                f"Billing transfer of {account.name} started: {transfer.billing_owner_email} was emailed a link to "
                f"accept it ({link}). Nothing changes until they do."), messages.SUCCESS)
            return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": f"Start a billing transfer of {account.name}",
        "opts": modeladmin.opts,
        "account": account,
        "root": Account.objects.get(path=account.root_path),
        "below": account.descendants().count(),
        "form": form,
        "media": modeladmin.media + form.media,
        "action_name": "start_billing_transfer",
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "admin/billing/transfer_start.html", context)


def hide_stripe_models_unless_configured(site=admin.site) -> list:
    """dj-stripe registers about 40 models. Without Stripe keys (``STRIPE_SECRET_KEY``) they hold nothing and
    only crowd the index, so they are unregistered; with keys they stay in their own "Stripe" section. Runs
    when this module is imported, after dj-stripe's admin (``djstripe`` comes first in ``INSTALLED_APPS``).
    Returns the models it unregistered."""
    if stripe_sync.is_configured() or not apps.is_installed("djstripe"):
        return []
    hidden = [m for m in apps.get_app_config("djstripe").get_models() if site.is_registered(m)]
    for model in hidden:
        site.unregister(model)
    return hidden


hide_stripe_models_unless_configured()
