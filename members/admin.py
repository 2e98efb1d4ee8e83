from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.utils import timezone

from accounts.admin_base import ActionsOnlyAdminMixin, ReadOnlyAdminMixin, refusal_text

from .invitations import invitation_resend, invitation_revoke
from .models import Invitation, Membership, User
from .services import membership_add, membership_change_role, membership_remove


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ("email",)
    list_display = ("email", "name", "is_staff", "is_active", "date_joined", "last_login")
    search_fields = ("email", "name")
    readonly_fields = ("last_login", "date_joined", "last_account")
    show_full_result_count = False
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("name", "last_account")}),
        ("Platform access", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "name", "password1", "password2")}),)


class MembershipInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The Account change page's people (read only: changes go through the Memberships pages)."""

    model = Membership
    fk_name = "account"
    fields = ("user", "role", "is_agency", "agency_account", "via_agency", "created_at")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    verbose_name_plural = "memberships (change or add them under Memberships)"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user", "agency_account").order_by("created_at", "pk")



@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    """Every change goes through members.services: the last Owner stays, nobody gets a role the rules refuse,
    permission rows follow. Agency memberships come and go with their agency grant, not here."""

    list_display = ("user", "account", "role", "is_agency", "agency_account", "via_agency", "created_at")
    list_filter = ("role", "is_agency", "via_agency")
    search_fields = ("user__email", "account__name", "=account__public_id")
    search_help_text = "Email, account name or account ID."
    list_select_related = ("user", "account", "agency_account")
    autocomplete_fields = ("user", "account")
    fields = ("user", "account", "role", "is_agency", "agency_account", "via_agency", "via_grant", "created_by",
              "created_at", "last_active_at")
    readonly_fields = ("is_agency", "agency_account", "via_agency", "via_grant", "created_at", "created_by",
                       "last_active_at")
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "user", "account") if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        try:
            member = obj.user if not change else Membership.objects.select_related("user").get(pk=obj.pk).user
            if member.is_staff and not request.user.is_superuser:
                # Staff never give themselves (or another staff member) a customer's role: that would bypass the
                # Support group's "nothing about billing" and the customer's own say over its people.
                raise PermissionDenied("Only a superuser gives a staff member a role in a customer's account.")
            if change:
                membership_change_role(membership=Membership.objects.get(pk=obj.pk), role=obj.role, by=None,
                                       staff=request.user, request=request)
            else:
                created = membership_add(account=obj.account, user=obj.user, role=obj.role, by=None,
                                         staff=request.user, request=request)
                obj.pk = created.pk
        except (ValidationError, PermissionDenied) as exc:
            request._admin_refused = True
            self.message_user(request, f"Nothing was saved: {refusal_text(exc)}", messages.ERROR)

    def log_addition(self, request, obj, message):
        if not getattr(request, "_admin_refused", False):
            return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        if not getattr(request, "_admin_refused", False):
            return super().log_change(request, obj, message)

    def response_add(self, request, obj, post_url_continue=None):
        if getattr(request, "_admin_refused", False):
            return HttpResponseRedirect(request.get_full_path())
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        if getattr(request, "_admin_refused", False):
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)

    def delete_model(self, request, obj):
        try:
            membership_remove(membership=obj, by=None, staff=request.user, request=request)
        except ValidationError as exc:
            self.message_user(request, exc.messages[0], messages.ERROR)

    def delete_queryset(self, request, queryset):
        for membership in queryset.select_related("user", "account"):
            self.delete_model(request, membership)


@admin.register(Invitation)
class InvitationAdmin(ActionsOnlyAdminMixin, admin.ModelAdmin):
    """Invitations are sent from the dashboard (or by provisioning); staff resend or revoke them through
    ``members.invitations`` as the platform. The page itself is read only, and the link's nonce is never shown."""

    list_display = ("email", "account", "role", "state", "sent_by", "send_count", "last_sent_at", "expires_at")
    list_filter = ("status", "role", "is_agency", "sent_by_platform")
    search_fields = ("email", "account__name", "=account__public_id")
    search_help_text = "Email, account name or account ID."
    list_select_related = ("account", "invited_by")
    exclude = ("nonce",)  # half of the invitation's link
    show_full_result_count = False
    actions = ["resend_selected", "revoke_selected"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Invitation._meta.fields if f.name != "nonce"]


    @admin.display(description="status")
    def state(self, obj):
        if obj.status == Invitation.Status.PENDING and obj.expires_at <= timezone.now():
            return "Expired"
        return obj.get_status_display()

    @admin.display(description="sent by")
    def sent_by(self, obj):
        return "the platform" if obj.sent_by_platform else (obj.invited_by or "a deleted user")

    @admin.action(description="Resend selected invitations (new links; older links stop working)",
                  permissions=["change"])
    def resend_selected(self, request, queryset):
        self._each(request, queryset, invitation_resend, "sent again with a new link")

    @admin.action(description="Revoke selected invitations", permissions=["change"])
    def revoke_selected(self, request, queryset):
        self._each(request, queryset, invitation_revoke, "revoked: their links no longer work")

    def _each(self, request, queryset, service, done_text):
        done = 0
        for invitation in queryset:
            try:
                service(invitation=invitation, by=None, staff=request.user, request=request)
            except (ValidationError, PermissionDenied) as exc:
                self.message_user(request, f"{invitation.email}: {refusal_text(exc)}", messages.WARNING)
            else:
                done += 1
        self.message_user(request, f"{done} invitation(s) {done_text}.", messages.SUCCESS if done else messages.INFO)
