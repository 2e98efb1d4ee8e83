"""The reader's date formats (``day`` and ``moment``) write exactly what Django's ``date`` filter writes, for
every format a person can choose, in English and in another language, for dates and datetimes; what the fast
path does not cover still goes to Django's filter."""

import datetime

import pytest
from django.template import Context, Template
from django.template.defaultfilters import date as date_filter
from django.utils import timezone, translation
from hypothesis import given, settings
from hypothesis import strategies as st

from members.preferences import FORMATS, current_format
from members.templatetags.dates import _formatted, day, moment

PATTERNS = sorted({pattern for pair in FORMATS.values() for pattern in pair})
MOMENTS = st.datetimes(min_value=datetime.datetime(1, 1, 1), max_value=datetime.datetime(9999, 12, 31))


@settings(max_examples=300, deadline=None)
@given(value=MOMENTS, aware=st.booleans(), language=st.sampled_from(["en-us", "fr", "de"]))
def test_every_pattern_writes_a_datetime_as_django_does(value, aware, language):
    if aware:
        value = value.replace(tzinfo=datetime.UTC)
    with translation.override(language):
        for pattern in PATTERNS:
            assert _formatted(value, pattern) == date_filter(value, pattern), pattern


@settings(max_examples=100, deadline=None)
@given(value=st.dates(), language=st.sampled_from(["en-us", "fr"]))
def test_a_date_takes_the_date_patterns_as_django_does(value, language):
    with translation.override(language):
        for pattern in (pair[0] for pair in FORMATS.values()):
            assert _formatted(value, pattern) == date_filter(value, pattern)


def test_each_hour_of_the_twelve_hour_clock():
    for hour in range(24):
        value = datetime.datetime(2026, 11, 26, hour, 5)
        assert _formatted(value, "M j, Y, g:i A") == date_filter(value, "M j, Y, g:i A")
    assert _formatted(datetime.datetime(2026, 1, 2, 0, 7), "M j, Y, g:i A") == "Jan 2, 2026, 12:07 AM"
    assert _formatted(datetime.datetime(2026, 1, 2, 12, 7), "M j, Y, g:i A") == "Jan 2, 2026, 12:07 PM"


def test_what_the_fast_path_leaves_goes_to_django():
    """A plain date asked for its time raises as Django's filter does; a pattern outside FORMATS and a string
    are Django's; nothing is empty."""
    with pytest.raises(TypeError):
        _formatted(datetime.date(2026, 1, 2), "j M Y H:i")
    assert _formatted(datetime.datetime(2026, 1, 2, 3, 4), "D, N jS") == "Fri, Jan. 2nd"
    assert _formatted("not a date", "j M Y") == ""
    assert _formatted(None, "j M Y") == "" and _formatted("", "Y-m-d") == ""


@pytest.mark.parametrize("choice", list(FORMATS))
def test_the_filters_follow_the_readers_choice_and_time_zone(choice):
    token = current_format.set(choice)
    try:
        value = datetime.datetime(2026, 3, 1, 23, 30, tzinfo=datetime.UTC)
        with timezone.override("America/New_York"):
            rendered = Template("{% load dates %}{{ v|day }}|{{ v|moment }}").render(Context({"v": value}))
            local = timezone.localtime(value)
        assert rendered == f"{date_filter(local, FORMATS[choice][0])}|{date_filter(local, FORMATS[choice][1])}"
        assert day(local) == date_filter(local, FORMATS[choice][0])
        assert moment(local) == date_filter(local, FORMATS[choice][1])
    finally:
        current_format.reset(token)
