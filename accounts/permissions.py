"""The permission catalogue: access categories, their levels and the codenames behind them.

Pure data, imported by the Account model (for ``Meta.permissions``), by the role
registry in ``members.roles`` and by every check. A category's level (None, Read or
Full) is the unit that access categories and agency settings cap; a codename is what
a view or a service asks for.
"""

from dataclasses import dataclass
from enum import IntEnum


class Level(IntEnum):
    NONE = 0
    READ = 1
    FULL = 2

    @property
    def label(self) -> str:
        return {0: "None", 1: "Read", 2: "Full"}[self.value]

    @classmethod
    def parse(cls, value: str | int) -> "Level":
        if isinstance(value, int):
            return cls(value)
        try:
            return cls[value.upper()]
        except KeyError as exc:
            raise ValueError(f"Unknown access level {value!r}: use none, read or full.") from exc


@dataclass(frozen=True)
class Category:
    key: str
    label: str
    levels: tuple[Level, ...] = (Level.NONE, Level.READ, Level.FULL)

    @property
    def top(self) -> Level:
        return max(self.levels)


CATEGORIES: tuple[Category, ...] = (
    Category("agents", "Agents"),
    Category("conversations", "Conversations"),
    Category("contacts", "Contacts"),
    Category("settings", "Account settings"),
    Category("members", "Members"),
    Category("subaccounts", "Subaccounts"),
    Category("trust_center", "Trust Center"),
    Category("developer_tools", "Developer tools (API keys, webhooks)"),
    Category("billing", "Billing"),
    Category("usage", "Usage", levels=(Level.NONE, Level.READ)),
)
CATEGORY_BY_KEY = {c.key: c for c in CATEGORIES}


@dataclass(frozen=True)
class Perm:
    codename: str
    label: str
    category: str
    level: Level  # the category level this permission needs


PERMISSIONS: tuple[Perm, ...] = (
    Perm("view_agents", "View agents", "agents", Level.READ),
    Perm("manage_agents", "Create and edit agents", "agents", Level.FULL),
    Perm("delete_agents", "Delete agents", "agents", Level.FULL),
    Perm("view_conversations", "View conversations", "conversations", Level.READ),
    Perm("export_conversations", "Export conversations", "conversations", Level.READ),
    Perm("manage_conversations", "Create and edit conversations", "conversations", Level.FULL),
    Perm("delete_conversations", "Delete conversations", "conversations", Level.FULL),
    Perm("view_contacts", "View contacts", "contacts", Level.READ),
    Perm("manage_contacts", "Create and edit contacts", "contacts", Level.FULL),
    Perm("delete_contacts", "Delete contacts", "contacts", Level.FULL),
    Perm("view_settings", "View account settings", "settings", Level.READ),
    Perm("manage_settings", "Edit account settings", "settings", Level.FULL),
    Perm("view_audit_log", "View the audit trail", "settings", Level.FULL),
    Perm("view_members", "View members", "members", Level.READ),
    Perm("manage_members", "Manage members and invitations", "members", Level.FULL),
    Perm("view_subaccounts", "View subaccounts", "subaccounts", Level.READ),
    Perm("manage_subaccounts", "Create and manage subaccounts", "subaccounts", Level.FULL),
    Perm("view_trust_center", "View the Trust Center", "trust_center", Level.READ),
    Perm("manage_trust_center", "Manage the Trust Center", "trust_center", Level.FULL),
    Perm("view_developer_tools", "View API keys and webhooks", "developer_tools", Level.READ),
    Perm("manage_developer_tools", "Create and revoke API keys, integrations and webhooks",
         "developer_tools", Level.FULL),
    Perm("view_billing", "View billing", "billing", Level.READ),
    Perm("manage_billing", "Manage billing", "billing", Level.FULL),
    Perm("view_usage", "View usage", "usage", Level.READ),
)
PERM_BY_CODENAME = {p.codename: p for p in PERMISSIONS}
ALL_CODENAMES = frozenset(PERM_BY_CODENAME)

# For Account.Meta.permissions.
MODEL_PERMISSIONS = tuple((p.codename, p.label) for p in PERMISSIONS)

Matrix = dict[str, Level]
FULL_MATRIX: Matrix = {c.key: c.top for c in CATEGORIES}


def cap(codenames: frozenset[str], matrix: Matrix | None) -> frozenset[str]:
    """Keep the codenames whose category level in ``matrix`` is high enough.

    A category missing from the matrix is not capped; ``None`` caps nothing.
    """
    if not matrix:
        return codenames
    return frozenset(
        c for c in codenames
        if PERM_BY_CODENAME[c].level <= matrix.get(PERM_BY_CODENAME[c].category, Level.FULL)
    )


def matrix_of(codenames: frozenset[str]) -> Matrix:
    """The highest level per category that a set of codenames reaches."""
    matrix = {c.key: Level.NONE for c in CATEGORIES}
    for code in codenames:
        perm = PERM_BY_CODENAME[code]
        matrix[perm.category] = max(matrix[perm.category], perm.level)
    return matrix


def clean_matrix(raw: dict) -> Matrix:
    """Validate a stored or submitted matrix: known categories, allowed levels."""
    matrix: Matrix = {}
    for key, value in raw.items():
        category = CATEGORY_BY_KEY.get(key)
        if category is None:
            raise ValueError(f"Unknown permission category {key!r}.")
        level = Level.parse(value)
        if level not in category.levels:
            raise ValueError(f"{category.label} cannot be set to {level.label}.")
        matrix[key] = level
    return matrix


def compose(*matrices: Matrix | None) -> Matrix:
    """Caps that apply together: per category the lowest level any of them sets (DESIGN rule 7).

    A category no matrix mentions stays uncapped (absent from the result).
    """
    result: Matrix = {}
    for matrix in matrices:
        for key, level in (matrix or {}).items():
            result[key] = min(result.get(key, level), level)
    return result


def at_most(matrix: Matrix, ceiling: Matrix) -> list[str]:
    """Labels of the categories where ``matrix`` goes above ``ceiling`` (a missing ceiling key is uncapped)."""
    return [c.label for c in CATEGORIES  # a key missing from ``matrix`` is uncapped, so it counts as the top
            if c.key in ceiling and matrix.get(c.key, c.top) > ceiling[c.key]]


def stored(matrix: Matrix) -> dict[str, str]:
    """A matrix as JSON rows keep it: ``{"agents": "read"}``."""
    return {k: Level(v).name.lower() for k, v in matrix.items()}
