from django.apps import AppConfig


class WorkspaceConfig(AppConfig):
    """An account's own product data: agents, contacts, conversations. What isolation protects."""

    name = "workspace"
    verbose_name = "Workspace"
