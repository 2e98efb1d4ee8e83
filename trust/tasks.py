"""Background work of the Trust Center (Django's tasks API through django-tasks; ``manage.py db_worker`` runs it)."""

from django_tasks import task

from . import purge


@task()
def purge_retention() -> dict:
    """The daily retention purge over every account (enqueued by ``manage.py run_daily``). Resumes an unfinished
    run; a second worker finding the run held by another returns without doing anything."""
    try:
        run = purge.purge()
    except purge.PurgeBusy as exc:
        return {"skipped": str(exc)}
    return {"run": run.pk, "accounts": run.accounts_done, "totals": run.totals}
