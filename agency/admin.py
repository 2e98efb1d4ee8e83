from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError

from accounts.admin_base import ActionsOnlyAdminMixin, ReadOnlyAdminMixin, refusal_text

from .models import AgencyBaseline, AgencyGrant, AgencySettings
from .services import access_revoke


class AgencyGrantInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The Account change page's agencies with access to it (the client side)."""

    model = AgencyGrant
    fk_name = "client"
    fields = ("agency", "status", "expires_at", "matrix", "created_at", "decided_at")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    verbose_name_plural = "agency access to this account (revoke under Agency grants)"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("agency")


class AgencySettingsInline(ReadOnlyAdminMixin, admin.StackedInline):
    """What the client's non-agency members may do while agency access is on: the client's own decision."""

    model = AgencySettings
    fields = ("enabled", "matrix", "updated_at")
    readonly_fields = fields
    extra = 0


@admin.register(AgencyGrant)
class AgencyGrantAdmin(ActionsOnlyAdminMixin, admin.ModelAdmin):
    """Agency access, read only; staff revoke it as the platform (``access_revoke(by=None)``): the agency's
    people lose access on their next request."""

    list_display = ("client", "agency", "state", "expires_at", "created_at", "decided_at")
    list_filter = ("status",)
    search_fields = ("client__name", "agency__name", "=client__public_id", "=agency__public_id", "=public_id")
    search_help_text = "Client or agency name or ID."
    list_select_related = ("client", "agency")
    show_full_result_count = False
    actions = ["revoke_selected"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in AgencyGrant._meta.fields]


    @admin.display(description="status")
    def state(self, obj):
        return obj.state_label

    @admin.action(description="Revoke selected agency access (the agency's people lose it at once)",
                  permissions=["change"])
    def revoke_selected(self, request, queryset):
        done = 0
        for grant in queryset.select_related("client", "agency"):
            try:
                access_revoke(grant=grant, by=None, staff=request.user, request=request)
            except (ValidationError, PermissionDenied) as exc:
                self.message_user(request, f"{grant.agency.name} → {grant.client.name}: {refusal_text(exc)}",
                                  messages.WARNING)
            else:
                done += 1
        self.message_user(request, f"{done} agency access grant(s) revoked. Members the agencies added stay: "
                                   "remove them under Memberships if they should go too.",
                          messages.SUCCESS if done else messages.INFO)


@admin.register(AgencySettings)
class AgencySettingsAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """A client's agency settings are the client's to set (R2): staff read them."""

    list_display = ("account", "enabled", "updated_at")
    list_filter = ("enabled",)
    search_fields = ("account__name", "=account__public_id")
    list_select_related = ("account",)
    show_full_result_count = False


@admin.register(AgencyBaseline)
class AgencyBaselineAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """An agency's baseline is the agency's to set: staff read it."""

    list_display = ("account", "updated_at")
    search_fields = ("account__name", "=account__public_id")
    list_select_related = ("account",)
    show_full_result_count = False
