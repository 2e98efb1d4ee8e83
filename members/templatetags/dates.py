import datetime

from django import template
from django.template.defaultfilters import date as date_filter
from django.utils import timezone
from django.utils.timesince import timesince

from members.preferences import FORMATS, current_format

register = template.Library()


@register.filter(expects_localtime=True)
def day(value):
    """A date in the reader's date format."""
    return date_filter(value, FORMATS[current_format.get()][0]) if value else ""


@register.filter(expects_localtime=True)
def moment(value):
    """A date and time in the reader's date format (and, through the active time zone, their time zone)."""
    return date_filter(value, FORMATS[current_format.get()][1]) if value else ""


@register.filter
def ago(value):
    """How long ago, for people: "just now" under a minute (``timesince`` alone says "0 minutes"), otherwise
    Django's ``timesince`` (which says "1 minute", "2 hours, 5 minutes") with "ago"."""
    if not value:
        return ""
    if timezone.now() - value < datetime.timedelta(minutes=1):
        return "just now"
    return f"{timesince(value)} ago"
