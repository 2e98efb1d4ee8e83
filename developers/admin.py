from django.contrib import admin
from django_tasks_db.models import DBTaskResult

# django-tasks-db registers its queue in the admin. Staff see webhook deliveries where tenants do (each
# endpoint's delivery log); the raw queue is the worker's business, not a page for Support or Billing.
# (This module is imported after django-tasks-db's admin: the app comes after it in INSTALLED_APPS.)
if admin.site.is_registered(DBTaskResult):
    admin.site.unregister(DBTaskResult)
