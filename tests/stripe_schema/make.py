"""Writes ``migrations/0001_schema.py``: dj-stripe's current models as one migration (see ``__init__.py``)."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from tests.stripe_schema import MIGRATIONS  # noqa: E402

settings.MIGRATION_MODULES = {"djstripe": MIGRATIONS}
call_command("makemigrations", "djstripe", "--name", "schema")
