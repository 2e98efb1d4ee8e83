from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied

from . import throttle
from .models import SecurityEvent
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
