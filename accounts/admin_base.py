"""What every app's admin shares (a module of its own: ``accounts.admin`` imports the other apps' admins)."""


def refusal_text(exc: Exception) -> str:
    """A service's refusal (ValidationError or PermissionDenied) as one line for ``message_user``."""
    return " ".join(getattr(exc, "messages", None) or [str(exc)])


class ReadOnlyAdminMixin:
    """Seen by staff, never added, changed or deleted in the admin (money, history, or data that changes only
    through its services). For model admins and inlines alike."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ActionsOnlyAdminMixin(ReadOnlyAdminMixin):
    """Read only, except that the list's actions (which go through the services) need "change" on the model:
    granted on the changelist only, never on one object's page, which has nothing to edit."""

    def has_change_permission(self, request, obj=None):
        return obj is None and super(ReadOnlyAdminMixin, self).has_change_permission(request)
