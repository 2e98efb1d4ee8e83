from django.contrib import admin

from accounts.admin import CappedCountPaginator
from accounts.admin_base import ReadOnlyAdminMixin

from .models import Agent, Contact, Conversation


class ReadOnlyTenantDataAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """A customer's own data, for staff to look at while helping: it changes only in the account's dashboard
    (``workspace.services``, with the account's limits and permissions), and conversations are history."""

    list_select_related = ("account",)
    show_full_result_count = False
    ordering = ("-pk",)  # the primary key's index
    paginator = CappedCountPaginator  # every call on the platform is a row: the count stops at 10,000


@admin.register(Agent)
class AgentAdmin(ReadOnlyTenantDataAdmin):
    list_display = ("name", "account", "language", "status", "created_at")
    list_filter = ("status", "language")
    search_fields = ("name", "=account__public_id", "=public_id")
    search_help_text = "Agent name, account ID or agent ID."


@admin.register(Contact)
class ContactAdmin(ReadOnlyTenantDataAdmin):
    list_display = ("name", "account", "phone", "email", "created_at")
    search_fields = ("name", "phone", "email", "=account__public_id")
    search_help_text = "Name, phone, email or account ID."


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyTenantDataAdmin):
    list_display = ("started_at", "account", "agent", "contact", "direction", "duration_seconds", "status")
    list_filter = ("status", "direction")
    search_fields = ("=account__public_id", "=public_id")
    search_help_text = "Account ID or conversation ID."
    list_select_related = ("account", "agent", "contact")
