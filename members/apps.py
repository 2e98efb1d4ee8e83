from django.apps import AppConfig
from django.db.models.signals import post_migrate


class MembersConfig(AppConfig):
    name = "members"
    verbose_name = "Members and roles"

    def ready(self):
        from . import entry_points  # noqa: F401  (its signal receivers keep Membership.below_own)
        from .staff import sync_staff_groups

        # Every app's post_migrate (no sender): each app's permissions exist by the time its signal arrives
        # (django.contrib.auth connects first), so the groups end up with all of them.
        post_migrate.connect(sync_staff_groups, dispatch_uid="members.sync_staff_groups")
