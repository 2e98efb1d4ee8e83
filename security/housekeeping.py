"""Keeping login activity to what the person is shown: events older than SECURITY_ACTIVITY_DAYS are deleted
in batches (a daily job; also ``manage.py purge_security_events``)."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .models import SecurityEvent


def security_events_purge(*, days: int | None = None, batch: int = 1000, dry_run: bool = False) -> int:
    """Deletes login activity older than ``days`` (default SECURITY_ACTIVITY_DAYS), ``batch`` rows at a time
    so no transaction holds the table long; returns how many went (or would go). Idempotent and resumable:
    each batch stands alone."""
    cutoff = timezone.now() - timedelta(days=days or settings.SECURITY_ACTIVITY_DAYS)
    old = SecurityEvent.objects.filter(created_at__lt=cutoff)
    if dry_run:
        return old.count()
    removed = 0
    while True:
        ids = list(old.order_by("pk").values_list("pk", flat=True)[:batch])
        if not ids:
            return removed
        removed += SecurityEvent.objects.filter(pk__in=ids).delete()[0]
