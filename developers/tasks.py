"""Background work (Django's tasks API through django-tasks; the database backend by default, run by
``manage.py db_worker``)."""

from django_tasks import task

from . import webhooks


@task()
def deliver_webhook(delivery_id: int, manual: bool = False) -> str | None:
    return webhooks.deliver(delivery_id, manual)
