"""Usage on both sides of a month boundary, metered through the real services with a frozen clock: the
closed invoice of the first month holds only that month's minutes, the second month's statement holds the
rest, and together they hold every minute recorded, not one twice."""

import datetime
import io

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db.models import Sum

from billing.models import Invoice, InvoiceLine, UsageRecord, period_start
from billing.services import invoice_close
from billing.statements import compute_statement
from tests.factories import AccountFactory
from workspace.models import Agent, Contact
from workspace.services import conversation_record

pytestmark = pytest.mark.django_db

UTC = datetime.UTC

# The last day of a month, and the first day of the next: 31 → 1, 30 → 1, February, a leap February, a year.
EDGES = [
    pytest.param(datetime.date(2026, 1, 31), datetime.date(2026, 2, 1), id="jan-31-to-feb-1"),
    pytest.param(datetime.date(2026, 2, 28), datetime.date(2026, 3, 1), id="feb-28-to-mar-1"),
    pytest.param(datetime.date(2028, 2, 29), datetime.date(2028, 3, 1), id="leap-feb-29-to-mar-1"),
    pytest.param(datetime.date(2026, 4, 30), datetime.date(2026, 5, 1), id="apr-30-to-may-1"),
    pytest.param(datetime.date(2026, 12, 31), datetime.date(2027, 1, 1), id="dec-31-to-jan-1"),
]


def at(day: datetime.date, hh: int, mm: int, ss: int) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(hh, mm, ss), tzinfo=UTC)


def meter(account, *, started_at, seconds):
    """A conversation recorded (and metered) through the workspace service, as the app does."""
    agent = Agent.objects.filter(account=account).first() or Agent.objects.create(account=account, name="A")
    contact = Contact.objects.filter(account=account).first() or Contact.objects.create(
        account=account, name="C", email="c@example.test")
    conversation = conversation_record(account=account, agent=agent, contact=contact, by=None,
                                       started_at=started_at, duration_seconds=seconds)
    assert conversation.status == "completed"
    return UsageRecord.objects.get(conversation=conversation)


def minutes_recorded(root) -> int:
    return UsageRecord.objects.filter(billing_root=root).aggregate(m=Sum("minutes"))["m"]


@pytest.mark.parametrize("last_day,first_day", EDGES)
def test_usage_either_side_of_midnight_lands_in_its_own_month(last_day, first_day):
    assert period_start(last_day) != period_start(first_day) == first_day  # really a month boundary
    first, second = period_start(last_day), first_day

    with time_machine.travel(at(last_day, 12, 0, 0), tick=False) as clock:
        root = AccountFactory(name="Agency", plan_code="pro")
        client = AccountFactory(parent=root, name="Client")

        # Each conversation is metered the moment it ends (the clock), in the month it started.
        clock.move_to(at(last_day, 23, 59, 59))
        last_second = meter(client, started_at=at(last_day, 23, 58, 0), seconds=119)  # 2 min
        clock.move_to(at(first_day, 0, 0, 1))
        first_second = meter(client, started_at=at(first_day, 0, 0, 0), seconds=1)  # 1 min
        clock.move_to(at(first_day, 0, 0, 3))
        across = meter(root, started_at=at(last_day, 23, 59, 58), seconds=5)  # 1 min, ends after midnight
        clock.move_to(at(first_day, 0, 2, 6))
        later = meter(client, started_at=at(first_day, 0, 0, 1), seconds=125)  # 3 min
        assert [r.period for r in (last_second, first_second, across, later)] == [first, second, first, second]
        assert [r.occurred_on for r in (last_second, first_second, across, later)] == [
            last_day, first_day, last_day, first_day]

        # Ten minutes into the new month cron closes "last month" (the command's default): the first month only.
        clock.move_to(at(first_day, 0, 10, 0))
        out = io.StringIO()
        call_command("close_billing_period", stdout=out)
        assert f"Closing {first:%B %Y}" in out.getvalue()
        invoice = Invoice.objects.get(account=root)
        assert invoice.period == first
        assert invoice.total_minutes == 2 + 1
        assert sorted(invoice.lines.filter(kind=InvoiceLine.Kind.USAGE).values_list("description", "minutes")) == [
            ("Agency", 1), ("Agency › Client", 2)]

        current = compute_statement(root, period_start())
        assert current.period == second and not current.is_closed
        assert [(line.description, line.minutes) for line in current.lines] == [("Agency › Client", 1 + 3)]
        assert invoice.total_minutes + current.total_minutes == minutes_recorded(root) == 2 + 1 + 1 + 3


@pytest.mark.parametrize("last_day,first_day", EDGES[:1] + EDGES[-1:])
def test_late_usage_of_a_closed_month_goes_to_the_next_one_and_nothing_is_counted_twice(last_day, first_day):
    first, second = period_start(last_day), first_day
    with time_machine.travel(at(last_day, 23, 59, 59), tick=False) as clock:
        root = AccountFactory(plan_code="pro")
        meter(root, started_at=at(last_day, 23, 59, 0), seconds=60)  # 1 min in the first month
        clock.move_to(at(first_day, 0, 10, 0))
        invoice, created = invoice_close(root=root, period=first)
        assert created and invoice.total_minutes == 1

        # A conversation of the closed month reported late: the closed invoice never changes.
        late = meter(root, started_at=at(last_day, 23, 59, 30), seconds=240)  # 4 min
        assert late.period == second
        meter(root, started_at=at(first_day, 0, 5, 0), seconds=60)  # 1 min in the second month

        again, created_again = invoice_close(root=root, period=first)
        assert again.pk == invoice.pk and not created_again
        again.refresh_from_db()
        assert again.total_minutes == compute_statement(root, first).total_minutes == 1
        current = compute_statement(root, second)
        assert current.total_minutes == 4 + 1
        assert again.total_minutes + current.total_minutes == minutes_recorded(root) == 1 + 4 + 1


@pytest.mark.parametrize("last_day,first_day", EDGES[:1] + EDGES[-1:])
def test_a_month_cannot_close_before_it_ends(last_day, first_day):
    with time_machine.travel(at(last_day, 23, 55, 0), tick=False) as clock:
        root = AccountFactory()
        meter(root, started_at=at(last_day, 23, 50, 0), seconds=60)
        assert period_start() == period_start(last_day)
        with pytest.raises(ValidationError, match="has not ended yet"):
            invoice_close(root=root, period=period_start(last_day))
        clock.move_to(at(first_day, 0, 0, 0))  # the first instant of the next month
        invoice, created = invoice_close(root=root, period=period_start(last_day))
        assert created and invoice.total_minutes == 1
