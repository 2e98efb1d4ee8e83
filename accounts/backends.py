from django.contrib.auth.backends import BaseBackend

from .models import Account


class AccountPermissionBackend(BaseBackend):
    """``user.has_perm("accounts.manage_agents", account)`` with inheritance down the tree.

    Answers only for Account objects; global permissions stay with ModelBackend.
    """

    def get_all_permissions(self, user_obj, obj=None):
        if not isinstance(obj, Account):
            return set()
        from .access import resolve_access

        access = resolve_access(user_obj, obj)
        return {f"accounts.{c}" for c in access.permissions} if access else set()

    def has_perm(self, user_obj, perm, obj=None):
        return perm in self.get_all_permissions(user_obj, obj)
