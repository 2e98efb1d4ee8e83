from django.apps import AppConfig


class SecurityConfig(AppConfig):
    """Sign-in protection, login activity, profile preferences and account security policies,
    around django-allauth's account, mfa and usersessions apps."""

    name = "security"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # receivers that record allauth's events; deploy checks; support access as a way into accounts
        from . import activity, checks, support  # noqa: F401
