"""``accounts.html``'s ``format_html`` and ``format_html_join`` write exactly what Django's write, for every kind of
value the pages pass (and a few they do not), and escape everything that is not already safe HTML."""

import datetime
import uuid
from decimal import Decimal

import pytest
from django.utils import html as django_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts import html

TEXT = st.lists(st.sampled_from(list("a<>&\"' é\n{}%") + ["&amp;", "<b>"]), max_size=12).map("".join)
VALUES = st.one_of(
    st.integers(), st.booleans(), st.none(), TEXT, TEXT.map(mark_safe), TEXT.map(SafeString),
    st.floats(allow_nan=False), st.decimals(allow_nan=False, allow_infinity=False), st.uuids(),
    st.dates(), st.datetimes(), st.just(gettext_lazy("Members")),
)
FORMATS = st.sampled_from(['<a href="{}">{}</a>', "{} {}", '<td class="num">{}</td><td>{}</td>'])


@settings(max_examples=1500, deadline=None)
@given(FORMATS, VALUES, VALUES)
def test_format_html_writes_what_django_writes(fmt, one, two):
    ours, theirs = html.format_html(fmt, one, two), django_html.format_html(fmt, one, two)
    assert ours == theirs
    assert hasattr(ours, "__html__")  # safe: a template does not escape it again


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(["\n", "", "<br>", mark_safe("<br>")]), FORMATS, st.lists(st.tuples(VALUES, VALUES),
                                                                                   max_size=6))
def test_format_html_join_writes_what_django_writes(sep, fmt, rows):
    assert html.format_html_join(sep, fmt, rows) == django_html.format_html_join(sep, fmt, rows)
    named = [{"x": a, "y": b} for a, b in rows]
    assert (html.format_html_join(sep, "{x}|{y}", iter(named))
            == django_html.format_html_join(sep, "{x}|{y}", iter(named)))


def test_what_is_not_safe_is_escaped_and_what_is_safe_is_kept():
    evil = '<script>alert("x")</script> & \'quote\''
    out = html.format_html("<p>{}</p>{}{}", evil, mark_safe("<b>kept</b>"), 42)
    assert out == ("<p>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;quote&#x27;</p>"
                   "<b>kept</b>42")
    assert html.format_html("{}", uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert html.format_html("{} {}", Decimal("1.50"), datetime.date(2026, 11, 27)) == "1.50 2026-11-27"


def test_a_constant_is_refused():
    with pytest.raises(TypeError):
        html.format_html("<p>no arguments</p>")
