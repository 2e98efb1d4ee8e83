"""The role registry: every role once, with its priority and permissions.

In the spirit of Sentry's ``roles/manager.py``: views, services, the admin and the API
ask this module what a role may do and which roles a person may hand out, so the rule
"an Admin assigns lower or equal roles" lives in one place.
"""

from dataclasses import dataclass

from django.db import models

from accounts.permissions import ALL_CODENAMES


class RoleId(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    AGENCY_ADMIN = "agency_admin", "Agency Admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


@dataclass(frozen=True)
class Role:
    id: str
    name: str
    priority: int
    description: str
    permissions: frozenset[str]

    def can_assign(self, other: "Role") -> bool:
        """May a holder of this role give ``other`` to someone (or change someone who holds it)?"""
        if other.id == RoleId.OWNER:
            return self.id == RoleId.OWNER
        return self.priority >= other.priority

    def __str__(self) -> str:
        return self.name


_MEMBER = frozenset({
    "view_agents", "manage_agents",
    "view_conversations", "export_conversations", "manage_conversations",
    "view_contacts", "manage_contacts",
    "view_settings", "view_members", "view_subaccounts",
    "view_developer_tools", "view_usage",
})
_VIEWER = frozenset({
    "view_agents", "view_conversations", "export_conversations", "view_contacts",
    "view_settings", "view_members", "view_subaccounts", "view_usage",
})

ROLES: dict[str, Role] = {
    r.id: r
    for r in (
        Role(RoleId.OWNER, "Owner", 100,
             "Full control, including billing and ownership. Cannot be changed by lower roles.",
             ALL_CODENAMES),
        Role(RoleId.ADMIN, "Admin", 80,
             "Manages members, invitations, settings and subaccounts. Assigns lower or equal roles.",
             ALL_CODENAMES),
        Role(RoleId.AGENCY_ADMIN, "Agency Admin", 80,
             "Elevated access for an agency's user: everything except managing billing.",
             ALL_CODENAMES - {"manage_billing"}),
        Role(RoleId.MEMBER, "Member", 50,
             "Day-to-day work on agents, contacts and conversations; no account administration.",
             _MEMBER),
        Role(RoleId.VIEWER, "Viewer", 10, "Read-only access for visibility and monitoring.", _VIEWER),
    )
}


def get_role(role_id: str) -> Role:
    try:
        return ROLES[role_id]
    except KeyError as exc:
        raise ValueError(f"Unknown role {role_id!r}.") from exc


def assignable_roles(actor_role_id: str) -> list[Role]:
    """Roles a holder of ``actor_role_id`` may hand out, highest first."""
    actor = get_role(actor_role_id)
    return [r for r in ROLES.values() if actor.can_assign(r)]
