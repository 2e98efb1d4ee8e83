"""The statement table's rows drawn in Python (``statement_lines``) give the markup of the template loop they
replaced, for every kind of line the tables show, with values that need escaping."""

import re
from types import SimpleNamespace

import pytest
from django.template import Context, Template

from billing.statements import Line
from billing.templatetags.billing import statement_lines

LOOP = Template(
    '{% load billing %}{% for line in lines %}\n'
    '    <tr><td>{{ line.description }}</td><td class="num">{{ line.minutes }}</td>'
    '{% if prices %}<td class="num">{{ line.amount_cents|cents }}</td>{% endif %}</tr>\n'
    '    {% empty %}<tr><td colspan="3" class="muted">No usage in this period yet.</td></tr>\n'
    '    {% endfor %}')

LINES = [
    Line(1, "Agency › Client <b>&</b> \"Co\"", 12, 345),
    Line(2, "Plain", 0, 0),
    SimpleNamespace(description="An invoice's line, stored", minutes=7, amount_cents=123456),  # (a model row)
    SimpleNamespace(description="No amount", minutes=3, amount_cents=None),
]


def squeezed(html: str) -> str:
    return re.sub(r"\s+", " ", str(html)).strip()


@pytest.mark.parametrize("prices", [True, False])
@pytest.mark.parametrize("lines", [LINES, LINES[:1], []], ids=["several", "one", "none"])
def test_the_rows_are_the_template_loops(lines, prices):
    expected = LOOP.render(Context({"lines": lines, "prices": prices}))
    assert squeezed(statement_lines(lines, prices)) == squeezed(expected)


def test_a_name_is_escaped_once():
    html = statement_lines([Line(1, "<script>x</script> & Co", 1, 1)], True)
    assert "&lt;script&gt;x&lt;/script&gt; &amp; Co" in html and "<script>" not in html
