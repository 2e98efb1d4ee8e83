from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied, ValidationError

from .models import Membership, User
from .services import membership_add, membership_change_role, membership_remove


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ("email",)
    list_display = ("email", "name", "is_staff", "is_active", "date_joined", "last_login")
    search_fields = ("email", "name")
    readonly_fields = ("last_login", "date_joined", "last_account")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("name", "last_account")}),
        ("Platform access", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "name", "password1", "password2")}),)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    """Every change goes through members.services: the last Owner stays, permission rows follow."""

    list_display = ("user", "account", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("user__email", "account__name", "=account__public_id")
    list_select_related = ("user", "account")
    autocomplete_fields = ("user", "account")
    readonly_fields = ("created_at", "created_by")
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "user", "account") if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        try:
            if change:
                membership_change_role(membership=Membership.objects.get(pk=obj.pk), role=obj.role, by=None,
                                       request=request)
            else:
                created = membership_add(account=obj.account, user=obj.user, role=obj.role, by=None,
                                         request=request)
                obj.pk = created.pk
        except (ValidationError, PermissionDenied) as exc:
            self.message_user(request, " ".join(getattr(exc, "messages", [str(exc)])), messages.ERROR)

    def delete_model(self, request, obj):
        try:
            membership_remove(membership=obj, by=None, request=request)
        except ValidationError as exc:
            self.message_user(request, exc.messages[0], messages.ERROR)

    def delete_queryset(self, request, queryset):
        for membership in queryset.select_related("user", "account"):
            self.delete_model(request, membership)
