"""The audit trail's filters (issue 16 item 8): conversation rows hidden unless asked, a date range, CSV."""

import csv
import datetime
import io

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from members.roles import RoleId
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def trail(make_member):
    root = AccountFactory(name="Solo")
    owner = make_member(root, RoleId.OWNER)
    when = datetime.datetime(2026, 3, 10, 12, tzinfo=datetime.UTC)
    for day, action, summary in ((1, "account.renamed", "Renamed early"), (10, "conversation.recorded", "A call"),
                                 (20, "member.added", "Added late")):
        AuditEvent.objects.create(account=root, action=action, summary=summary,
                                  created_at=when.replace(day=day), actor_email="o@solo.example")
    return root, owner


def summaries(client, root, **params):
    response = client.get(reverse("accounts:audit-log", kwargs={"account_id": root.public_id}), params)
    assert response.status_code == 200
    return [e.summary for e in response.context["object_list"] if e.summary in ("Renamed early", "A call",
                                                                                  "Added late")]


def test_conversation_rows_are_hidden_unless_asked(client, trail):
    root, owner = trail
    client.force_login(owner)
    assert summaries(client, root) == ["Added late", "Renamed early"]
    assert summaries(client, root, conversations="on") == ["Added late", "A call", "Renamed early"]
    assert summaries(client, root, action="conversation.recorded") == ["A call"]


def test_a_date_range_and_a_refused_backwards_range(client, trail):
    root, owner = trail
    client.force_login(owner)
    assert summaries(client, root, since="2026-03-05", until="2026-03-25", conversations="on") == [
        "Added late", "A call"]
    response = client.get(reverse("accounts:audit-log", kwargs={"account_id": root.public_id}),
                          {"since": "2026-03-25", "until": "2026-03-05"})
    assert "The end date is before the start date." in response.content.decode()


def test_csv_export_follows_the_filters(client, trail):
    root, owner = trail
    client.force_login(owner)
    response = client.get(reverse("accounts:audit-log", kwargs={"account_id": root.public_id}),
                          {"since": "2026-03-15", "format": "csv"})
    assert response["Content-Disposition"].startswith("attachment")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["What"] for r in rows if r["What"] == "Added late"] == ["Added late"]
    assert not [r for r in rows if r["What"] in ("Renamed early", "A call")]


def test_viewers_cannot_read_it(client, trail, make_member):
    root, _ = trail
    client.force_login(make_member(root, RoleId.VIEWER))
    assert client.get(reverse("accounts:audit-log", kwargs={"account_id": root.public_id})).status_code == 403


def test_include_subaccounts_is_offered_only_where_there_are_some(client, trail):
    root, owner = trail
    client.force_login(owner)
    url = reverse("accounts:audit-log", kwargs={"account_id": root.public_id})
    assert "Include subaccounts" not in client.get(url).content.decode()
    sub = AccountFactory(parent=root, name="Solo Sales")
    AuditEvent.objects.create(account=sub, action="member.added", summary="Added below", actor_email="o@solo.example")
    html = client.get(url).content.decode()
    assert 'name="include_subaccounts"' in html and "Include subaccounts" in html
    listed = lambda **p: [e.summary for e in client.get(url, p).context["object_list"]]  # noqa: E731
    assert "Added below" not in listed() and "Added below" in listed(include_subaccounts="on")


@pytest.mark.parametrize("data, via", [
    ({"via_support": "Read only", "staff": "ops@platform.example"}, "platform support"),
    ({"staff": True}, "platform staff"),
    ({"staff": "ops@platform.example"}, ""),  # a support decision names the staff member: not the admin
    ({"staff": 1}, ""),
    ({}, ""),
    (["staff"], ""),
    (None, ""),
])
def test_platform_via_reads_only_what_the_platform_marks(data, via):
    """One rule for the Audit page's badge and the CSV's Via column (both had the ``is True`` bug once)."""
    from accounts.audit import platform_via

    assert platform_via(data) == via
