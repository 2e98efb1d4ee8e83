"""Login activity is kept for SECURITY_ACTIVITY_DAYS: older events go, in batches, and a dry run counts only."""

import datetime
import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from security.housekeeping import security_events_purge
from security.models import SecurityEvent

pytestmark = pytest.mark.django_db


def events(days_ago: int, n: int):
    at = timezone.now() - datetime.timedelta(days=days_ago)
    SecurityEvent.objects.bulk_create([SecurityEvent(kind="login.failed", email=f"e{i}@x.test", created_at=at)
                                       for i in range(n)])


def test_older_than_90_days_go_in_batches_and_the_rest_stay(settings, django_assert_max_num_queries):
    settings.SECURITY_ACTIVITY_DAYS = 90
    events(91, 25)
    events(89, 3)
    out = io.StringIO()
    call_command("purge_security_events", "--dry-run", stdout=out)
    assert "Would delete 25 login activity events older than 90 days." in out.getvalue()
    assert SecurityEvent.objects.count() == 28
    with django_assert_max_num_queries(4 * 3 + 2):  # 3 batches of 10: select ids, delete (and the last empty one)
        assert security_events_purge(batch=10) == 25
    assert SecurityEvent.objects.count() == 3
    assert security_events_purge() == 0  # a rerun finds nothing more
