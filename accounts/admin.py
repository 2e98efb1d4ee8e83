from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from guardian.admin import GuardedModelAdmin

from .models import Account, AccountHasSubaccounts, AuditEvent
from .services import account_delete, subaccount_create


@admin.register(Account)
class AccountAdmin(GuardedModelAdmin):
    """Platform staff's view of every account. Creation and deletion go through the services,
    so the depth limit, sibling-unique names and "never orphan subaccounts" hold here too."""

    list_display = ("name", "public_id", "parent", "depth", "numchild", "status", "created_at")
    list_filter = ("depth", "status")
    search_fields = ("name", "=public_id")
    list_select_related = ("parent",)
    readonly_fields = ("public_id", "path", "depth", "numchild", "created_by", "created_at")
    autocomplete_fields = ("parent",)
    show_full_result_count = False  # COUNT(*) over every account on every page view is wasted work
    list_per_page = 50
    actions = ["close_last_period", "start_billing_transfer"]

    @admin.action(description="Close last month's billing period for the selected root accounts")
    def close_last_period(self, request, queryset):
        from billing.admin import close_last_period

        close_last_period(self, request, queryset)

    @admin.action(description="Start a billing transfer…", permissions=["start_billing_transfer"])
    def start_billing_transfer(self, request, queryset):
        from billing.admin import start_transfer_action

        return start_transfer_action(self, request, queryset)

    def has_start_billing_transfer_permission(self, request):
        return request.user.has_perm("billing.add_billingtransfer")

    def get_readonly_fields(self, request, obj=None):
        # The position in the tree changes only through services (billing transfer), never by editing.
        return (*self.readonly_fields, "parent") if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            obj.save()
            return
        try:
            if obj.parent_id:
                created = subaccount_create(parent=obj.parent, name=obj.name, by=None, request=request)
            else:
                # A root account created by staff has no owner yet; staff add one under Memberships.
                from django.db import transaction

                from .audit import audit

                with transaction.atomic():
                    created = Account.objects.add_root(instance=Account(name=obj.name, created_by=request.user))
                    audit(account=created, actor=request.user, request=request, action="account.created",
                          summary=f"Account “{obj.name}” created in the admin")
        except ValidationError as exc:
            raise ValidationError(exc.messages) from exc
        obj.pk, obj.path, obj.depth, obj.public_id = created.pk, created.path, created.depth, created.public_id

    def get_deleted_objects(self, objs, request):
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        for account in objs:
            if account.numchild:
                protected.append(f"{account.name}: still has {account.numchild} subaccount(s)")
        return deleted, model_count, perms_needed, protected

    def delete_model(self, request, obj):
        account_delete(account=obj, by=request.user, request=request)

    def delete_queryset(self, request, queryset):
        for account in queryset.order_by("-depth"):
            try:
                account_delete(account=account, by=request.user, request=request)
            except AccountHasSubaccounts as exc:
                self.message_user(request, exc.messages[0], messages.ERROR)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "account", "actor_email", "action", "summary", "ip_address")
    list_filter = ("action",)
    search_fields = ("actor_email", "summary", "=account__public_id")
    list_select_related = ("account",)
    date_hierarchy = "created_at"
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


