from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied

from accounts.admin_base import ReadOnlyAdminMixin

from . import throttle
from .models import SecurityEvent, SecurityPolicy, SupportAccess
from .services import lockout_lift


@admin.register(SecurityEvent)
class SecurityEventAdmin(admin.ModelAdmin):
    """Login activity, read-only; staff lift a sign-in lockout from here (select an attempt of that address
    or IP, then the action)."""

    list_display = ("created_at", "kind", "email", "ip", "user", "locked_for", "detail")
    list_filter = ("kind",)
    search_fields = ("=email", "=ip", "user__email")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    actions = ["lift_lockout"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="locked now")
    def locked_for(self, obj):
        if obj.kind not in (SecurityEvent.Kind.LOGIN_FAILED, SecurityEvent.Kind.LOGIN_THROTTLED):
            return ""
        wait = throttle.locked_for(email=obj.email, ip=obj.ip or "")
        return f"{throttle.human_wait(wait)} left" if wait else "no"

    @admin.action(description="Lift the sign-in lockout of these addresses and IPs")
    def lift_lockout(self, request, queryset):
        pairs = set(queryset.values_list("email", "ip"))
        try:
            for email, ip in pairs:
                lockout_lift(by=request.user, email=email, ip=ip or "", request=request)
        except PermissionDenied as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, f"Lifted the lockout of {len(pairs)} address/IP pair(s); they can sign in now.",
                          messages.SUCCESS)


@admin.register(SecurityPolicy)
class SecurityPolicyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Accounts' own security policies, for staff answering "why am I asked for a second factor?". Read only:
    an account's Owners and Admins set them (Settings → Security), and a subaccount applies the strictest of
    its own and its ancestors'."""

    list_display = ("account", "require_mfa", "mfa_deadline", "idle_timeout_minutes", "session_lifetime_hours",
                    "domains", "updated_at", "updated_by")
    list_filter = ("require_mfa",)
    search_fields = ("account__name", "=account__public_id")
    list_select_related = ("account", "updated_by")
    show_full_result_count = False

    @admin.display(description="invitations only to")
    def domains(self, obj):
        return ", ".join(obj.allowed_email_domains) or "any"


@admin.register(SupportAccess)
class SupportAccessAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Support access requests and grants (read only): staff ask on the Support access page and the account's
    Owner decides in the app; nobody, staff included, approves from here."""

    list_display = ("created_at", "account", "requested_by", "level", "hours", "status", "include_subaccounts",
                    "decided_by", "expires_at", "ended_at")
    list_filter = ("status", "level")
    search_fields = ("account__name", "=account__public_id", "requested_by__email")
    list_select_related = ("account", "requested_by", "decided_by")
    date_hierarchy = "created_at"
    show_full_result_count = False
