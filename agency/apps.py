from django.apps import AppConfig


class AgencyConfig(AppConfig):
    """Agency access to client-owned accounts (agency settings, baseline, requests)."""

    name = "agency"
    verbose_name = "Agency access"
