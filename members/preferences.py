"""A person's display preferences (time zone, date format), applied to every page they see.

``PreferencesMiddleware`` activates the person's time zone (Django then converts every aware datetime
shown) and remembers their date format for the request; the ``dates`` template filters (``day``,
``moment``) format with it. Nothing here queries: the person is already loaded by authentication."""

import zoneinfo
from contextvars import ContextVar
from functools import cache

from django.db import models
from django.utils import timezone


class DateFormat(models.TextChoices):
    DAY_MONTH_YEAR = "dmy", "31 Dec 2026 14:05"
    MONTH_DAY_YEAR = "mdy", "Dec 31, 2026, 2:05 PM"
    ISO = "iso", "2026-12-31 14:05"


# (date, date and time) in Django's date-filter syntax.
FORMATS = {
    DateFormat.DAY_MONTH_YEAR: ("j M Y", "j M Y H:i"),
    DateFormat.MONTH_DAY_YEAR: ("M j, Y", "M j, Y, g:i A"),
    DateFormat.ISO: ("Y-m-d", "Y-m-d H:i"),
}

current_format: ContextVar[str] = ContextVar("current_date_format", default=DateFormat.DAY_MONTH_YEAR)


@cache
def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones())
            if "/" in name or name == "UTC"]


def zone(name: str):
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


class PreferencesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if not user.is_authenticated:
            return self.get_response(request)
        token = current_format.set(user.date_format)
        timezone.activate(zone(user.time_zone))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
            current_format.reset(token)
