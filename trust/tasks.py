"""Background work of the Trust Center (Django's tasks API through django-tasks, like ``developers.tasks``)."""

from django_tasks import task

from . import requests


@task()
def run_data_request(request_id: int) -> str | None:
    return requests.run(request_id)
