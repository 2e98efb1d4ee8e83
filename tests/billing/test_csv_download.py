"""CSV downloads of statements: tenant-chosen names can neither run as spreadsheet formulas nor
break the Content-Disposition header."""

import csv
import datetime
import io
import re
from decimal import Decimal
from urllib.parse import unquote

import pytest
from django.urls import reverse

from accounts.downloads import attachment_disposition, money, spreadsheet_safe
from billing.models import period_start
from billing.services import invoice_close
from billing.statements import SEP
from members.roles import RoleId
from tests.factories import AccountFactory, plan, usage

LAST = period_start(period_start() - datetime.timedelta(days=1))
FORMULA = '=HYPERLINK("http://x","y")'
UNICODE = 'Zürich "Ops" ✓'
DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r")

# RFC 6266 with RFC 5987/8187: a quoted ASCII fallback without '"', '\' or control characters,
# then the real name as UTF-8, percent-encoded, only attr-chars left as they are.
DISPOSITION = re.compile(
    r'attachment; filename="(?P<fallback>[\x20\x21\x23-\x5b\x5d-\x7e]+)"; '
    r"filename\*=UTF-8''(?P<encoded>(?:[A-Za-z0-9!#$&+.^_`|~-]|%[0-9A-F]{2})+)"
)


def parse_disposition(value: str) -> tuple[str, str]:
    """(ASCII fallback, real filename); fails unless the header is RFC 6266-clean."""
    match = DISPOSITION.fullmatch(value)
    assert match, value
    return match["fallback"], unquote(match["encoded"], encoding="utf-8", errors="strict")


def rows_of(response) -> list[list[str]]:
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(response.content.decode("utf-8"))))


def assert_no_formula_cells(rows):
    for row in rows:
        for cell in row:
            assert not cell.startswith(DANGEROUS_START), (cell, row)


def assert_numbers_untouched(rows):
    for kind, _account, minutes, amount in rows[1:]:
        assert (minutes == "") if kind == "plan" else (int(minutes) >= 0)
        assert re.fullmatch(r"\d+\.\d\d", amount), amount


@pytest.mark.django_db
class TestStatementCsv:
    def test_current_statement_of_a_root_named_like_a_formula(self, client, make_member):
        root = AccountFactory(name=FORMULA)
        sub = AccountFactory(parent=root, name=UNICODE)
        usage(root, 5)
        usage(sub, 7)
        client.force_login(make_member(root, RoleId.OWNER))
        response = client.get(reverse("billing:current-csv", kwargs={"account_id": root.public_id}))
        rows = rows_of(response)
        assert rows[0] == ["line", "account", "minutes", "amount"]
        accounts = [row[1] for row in rows if row[0] == "usage"]
        assert accounts == ["'" + FORMULA, "'" + FORMULA + SEP + UNICODE]
        assert rows[-1] == ["total", "", "12", "299.00"]
        assert_no_formula_cells(rows)
        assert_numbers_untouched(rows)

        fallback, filename = parse_disposition(response["Content-Disposition"])
        month = f"{period_start():%Y-%m}"
        assert filename == f"{FORMULA}-{month}.csv"
        assert fallback == f"=HYPERLINK(http://x,y)-{month}.csv"

    def test_closed_invoice_of_a_root_with_a_unicode_name(self, client, make_member):
        root = AccountFactory(name=UNICODE)
        usage(AccountFactory(parent=root, name=FORMULA), 12, period=LAST)
        usage(AccountFactory(parent=root, name="-1+1"), 3, period=LAST)
        usage(AccountFactory(parent=root, name="@SUM(A1:A9)"), 4, period=LAST)
        invoice, _ = invoice_close(root=root, period=LAST)
        client.force_login(make_member(root, RoleId.ADMIN))
        url = reverse("billing:invoice-detail", kwargs={"account_id": root.public_id, "invoice_id": invoice.public_id})
        response = client.get(url, {"format": "csv"})
        rows = rows_of(response)
        # Below the root the label starts with the root's name, so nothing there is a formula.
        assert {row[1] for row in rows if row[0] == "usage"} == {
            UNICODE + SEP + name for name in (FORMULA, "-1+1", "@SUM(A1:A9)")}
        assert_no_formula_cells(rows)
        assert_numbers_untouched(rows)

        fallback, filename = parse_disposition(response["Content-Disposition"])
        assert filename == f'Zürich-"Ops"-✓-{LAST:%Y-%m}.csv'
        assert fallback == f"Zurich-Ops--{LAST:%Y-%m}.csv"
        assert fallback.isascii() and filename.encode("utf-8")

    @pytest.mark.parametrize("name", ["=1+1", "+1", "-1", "@A1", "\tcmd", "\rcmd"])
    def test_every_dangerous_first_character_is_neutralised(self, client, make_member, name):
        root = AccountFactory(name=name)
        usage(root, 1)
        client.force_login(make_member(root, RoleId.OWNER))
        rows = rows_of(client.get(reverse("billing:current-csv", kwargs={"account_id": root.public_id})))
        assert [row[1] for row in rows if row[0] == "usage"] == ["'" + name]
        assert_no_formula_cells(rows)

    def test_plan_names_are_text_too(self, client, make_member):
        agency_plan = plan("agency")
        agency_plan.name = "=cmd|' /C calc'!A0"
        agency_plan.save(update_fields=["name"])
        root = AccountFactory(name="Agency")
        client.force_login(make_member(root, RoleId.OWNER))
        rows = rows_of(client.get(reverse("billing:current-csv", kwargs={"account_id": root.public_id})))
        assert rows[1] == ["plan", "'=cmd|' /C calc'!A0 plan", "", "299.00"]
        assert_no_formula_cells(rows)


@pytest.mark.parametrize("value,expected", [
    ("=1", "'=1"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("Acme", "Acme"), ("a=b", "a=b"), ("", ""),
    (-5, -5), (Decimal("-5.00"), Decimal("-5.00")), (None, None),
])
def test_spreadsheet_safe(value, expected):
    assert spreadsheet_safe(value) == expected


def test_money_is_a_number_with_cents():
    assert str(money(29900)) == "299.00" and str(money(0)) == "0.00" and str(money(-125)) == "-1.25"


@pytest.mark.parametrize("filename,fallback", [
    ("Agency-2026-01.csv", "Agency-2026-01.csv"),
    ('a"b\\c\r\nd\x00e\x7f.csv', "abcde.csv"),
    ("✓✓✓.csv", "download.csv"),
    ("Ünïcödé/Sales;x=1.csv", "Unicode/Sales;x=1.csv"),
])
def test_attachment_disposition(filename, fallback):
    value = attachment_disposition(filename)
    assert parse_disposition(value) == (fallback, filename)
    assert "\r" not in value and "\n" not in value
