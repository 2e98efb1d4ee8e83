import datetime

from django import template
from django.template.defaultfilters import date as date_filter
from django.utils import timezone
from django.utils.dates import MONTHS_3
from django.utils.timesince import timesince
from django.utils.translation import gettext

from members.preferences import FORMATS, current_format

register = template.Library()


def _meridiem(d) -> str:
    return gettext("PM") if d.hour > 11 else gettext("AM")


# What each letter of FORMATS means, as Django's ``date`` filter writes it (django.utils.dateformat), for dates
# and datetimes; any other character is written as it is.
_LETTERS = {
    "j": lambda d: str(d.day),
    "d": lambda d: f"{d.day:02d}",
    "M": lambda d: MONTHS_3[d.month].title(),
    "m": lambda d: f"{d.month:02d}",
    "Y": lambda d: f"{d.year:04d}",
    "H": lambda d: f"{d.hour:02d}",
    "g": lambda d: str(d.hour % 12 or 12),
    "i": lambda d: f"{d.minute:02d}",
    "A": _meridiem,
}


_TIME_LETTERS = frozenset("HgiA")


def _compiled(pattern: str):
    """``pattern`` as one function of a date, or None when it has a letter not above (or an escape)."""
    if "\\" in pattern or any(c.isalpha() and c not in _LETTERS for c in pattern):
        return None
    parts = [_LETTERS.get(c, c) for c in pattern]
    return lambda d: "".join(part(d) if callable(part) else part for part in parts)


# Django's filter parses the format on every call (~35 µs); the Audit page shows 50 of them (issue 14).
_FAST = {pattern: _compiled(pattern) for patterns in FORMATS.values() for pattern in patterns}


def _formatted(value, pattern: str) -> str:
    """``value`` written as Django's ``date`` filter writes it with ``pattern`` (which it still does for what the
    fast path leaves: other values, other patterns, a plain date asked for its time)."""
    if not value:
        return ""
    fast = _FAST.get(pattern)
    if fast is not None and (isinstance(value, datetime.datetime)
                             or (isinstance(value, datetime.date) and not _TIME_LETTERS.intersection(pattern))):
        return fast(value)
    return date_filter(value, pattern)


@register.filter(expects_localtime=True)
def day(value):
    """A date in the reader's date format."""
    return _formatted(value, FORMATS[current_format.get()][0])


@register.filter(expects_localtime=True)
def moment(value):
    """A date and time in the reader's date format (and, through the active time zone, their time zone)."""
    return _formatted(value, FORMATS[current_format.get()][1])


@register.filter
def ago(value):
    """How long ago, for people: "just now" under a minute (``timesince`` alone says "0 minutes"), otherwise
    Django's ``timesince`` (which says "1 minute", "2 hours, 5 minutes") with "ago"."""
    if not value:
        return ""
    if timezone.now() - value < datetime.timedelta(minutes=1):
        return "just now"
    return f"{timesince(value)} ago"
