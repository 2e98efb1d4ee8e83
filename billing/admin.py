import datetime

from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from .models import Invoice, InvoiceLine, Plan, Subscription, period_start
from .services import invoice_close


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


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
    readonly_fields = ("kind", "description", "minutes", "amount_cents", "stripe_invoice_item_id")
    fields = readonly_fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    """Closed invoices are read-only: amounts never change after closing."""

    list_display = ("account", "period", "plan_name", "total_minutes", "total_cents", "payment_status", "closed_at")
    list_filter = ("payment_status", "period")
    list_select_related = ("account",)
    search_fields = ("account__name", "=account__public_id", "stripe_invoice_id")
    inlines = [InvoiceLineInline]
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Invoice._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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
