"""Background work of the Trust Center (Django's tasks API through django-tasks; ``manage.py db_worker`` runs it)."""

from django_tasks import task

from . import purge, requests


@task()
def run_data_request(request_id: int) -> str | None:
    return requests.run(request_id)


@task()
def purge_retention() -> dict:
    """The daily retention purge over every account (enqueued by ``manage.py run_daily``). Resumes an unfinished
    run; a second worker finding the run held by another returns without doing anything."""
    try:
        run = purge.purge()
    except purge.PurgeBusy as exc:
        return {"skipped": str(exc)}
    return {"run": run.pk, "accounts": run.accounts_done, "totals": run.totals}


@task()
def housekeeping() -> dict:
    """The daily clean-up of what is kept for a limited time: login activity past SECURITY_ACTIVITY_DAYS, data
    request files past their 7 days, API idempotency records past a day. Each step is batched and idempotent."""
    from api.base import idempotency_purge
    from security.housekeeping import security_events_purge

    idempotency = 0
    while (batch := idempotency_purge()) > 0:
        idempotency += batch
    return {"security_events": security_events_purge(), "data_request_results": requests.purge_expired(),
            "idempotency_records": idempotency}
