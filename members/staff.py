"""Platform staff roles: the two Django groups the admin is run with, defined here and kept in sync.

- **Support** views everything in the admin and changes what is not billing: account status, memberships,
  invitations, agency grants. Billing (plans, subscriptions, usage, invoices, billing transfers, Stripe) is
  view only.
- **Billing** is Support plus every billing permission.

Superusers hold everything, as Django gives them. The groups are data derived from this module: a
``post_migrate`` receiver sets each group's permissions to exactly the lists below (idempotent; a permission
added by hand is removed on the next migrate). The tenant permissions of ``Account.Meta.permissions``
(``view_agents``, ``manage_billing``, ...) are never given to a group: they are object permissions of
members inside accounts, and a model-wide grant would read as "in every account".
"""

from django.contrib.auth.models import Group, Permission

SUPPORT = "Support"
BILLING = "Billing"

# Apps whose every model is about money: Support views them, Billing changes them.
BILLING_APPS = ("billing", "djstripe")
# Where Support changes things (and adds or deletes, when listed): the accounts' status and people.
SUPPORT_CHANGES = {
    "accounts.account": ("change",),
    "members.membership": ("add", "change", "delete"),
    "members.invitation": ("change",),
    "agency.agencygrant": ("change",),
}
# Default model permissions only: the Account's tenant codenames stay out of groups (see above).
ACTIONS = ("add", "change", "delete", "view")


def _is_default(permission: Permission, actions=ACTIONS) -> bool:
    action, _, model = permission.codename.partition("_")
    return action in actions and model == permission.content_type.model


def staff_permissions(using="default") -> dict[str, list[Permission]]:
    """What each group holds, from the permissions that exist now (one query)."""
    every = [p for p in Permission.objects.using(using).select_related("content_type") if _is_default(p)]
    support, billing = [], []
    for permission in every:
        action = permission.codename.partition("_")[0]
        label = f"{permission.content_type.app_label}.{permission.content_type.model}"
        is_billing = permission.content_type.app_label in BILLING_APPS
        if action == "view" or action in SUPPORT_CHANGES.get(label, ()):
            support.append(permission)
            billing.append(permission)
        elif is_billing:
            billing.append(permission)
    return {SUPPORT: support, BILLING: billing}


def sync_staff_groups(*, using="default", **kwargs) -> None:
    """``post_migrate`` receiver: create or update the Support and Billing groups. Idempotent; runs after
    each app's permissions are created (every app sends the signal), so the last run sees them all."""
    for name, permissions in staff_permissions(using).items():
        group, _ = Group.objects.using(using).get_or_create(name=name)
        group.permissions.set(permissions)
