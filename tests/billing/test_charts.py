"""Billing → Minutes per day (issue 16 item 8): axes a reader can use, and an empty state instead of a flat line."""

import datetime
import re

import pytest
from django.urls import reverse

from billing.charts import daily_bars, nice_ceiling
from members.roles import RoleId
from tests.factories import AccountFactory, usage

pytestmark = pytest.mark.django_db


def overview(client, account):
    return client.get(reverse("billing:overview", kwargs={"account_id": account.public_id})).content.decode()


@pytest.mark.time_machine(datetime.datetime(2026, 3, 20, 12, tzinfo=datetime.UTC), tick=False)
def test_an_empty_account_says_there_is_no_usage_yet(client, make_member):
    account = AccountFactory(name="Fresh Start")
    client.force_login(make_member(account, RoleId.OWNER))
    html = overview(client, account)
    assert "No usage in this period yet" in html
    assert "Peak" not in html and 'class="chart"' not in html


@pytest.mark.time_machine(datetime.datetime(2026, 3, 20, 12, tzinfo=datetime.UTC), tick=False)
def test_the_daily_chart_has_a_y_scale_and_day_labels_at_both_ends(client, make_member):
    account = AccountFactory(name="Busy")
    usage(account, 37, day=datetime.date(2026, 3, 4))
    usage(account, 1, day=datetime.date(2026, 3, 9))
    client.force_login(make_member(account, RoleId.OWNER))
    html = overview(client, account)
    assert "No usage in this period yet" not in html
    y_axis = re.search(r'<g class="axis y-axis">(.*?)</g>', html, re.S).group(1)
    assert re.findall(r'class="tick">([^<]+)<', y_axis) == ["0", "25", "50"]  # 0, half, a round top above 37
    x_axis = re.search(r'<g class="axis x-axis">(.*?)</g>', html, re.S).group(1)
    labels = re.findall(r'class="tick">([^<]+)<', x_axis)
    assert labels[0] == "Mar 1" and labels[-1] == "Mar 20"  # the period so far, first and last day
    assert "Busiest day: Mar 4, 37 minutes." in html
    assert "Mar 9: 1 minute<" in html  # a column's tooltip, singular


@pytest.mark.parametrize(("peak", "top"), [(0, 1), (1, 1), (3, 5), (37, 50), (100, 100), (101, 200), (2400, 2500)])
def test_the_scale_ends_on_a_round_number_at_or_above_the_busiest_day(peak, top):
    assert nice_ceiling(peak) == top


def test_every_column_fits_under_the_top_of_the_scale():
    days = [(datetime.date(2026, 1, d), m) for d, m in zip(range(1, 32), [0, 5, 12, 7] * 8, strict=False)]
    chart = daily_bars(days)
    assert chart["top"] == 20 and not chart["empty"]
    assert all(chart["plot_top"] <= b.y <= chart["plot_bottom"] for b in chart["bars"])
    assert [t.label for t in chart["x_ticks"]] == ["Jan 1", "Jan 8", "Jan 15", "Jan 22", "Jan 31"]
