"""Production settings pass Django's deployment checklist."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_check_deploy_is_clean_with_production_settings():
    env = {
        **os.environ,
        "SECRET_KEY": "x7$Lq2!vN9@pR4#tW8^zY1&cF6*hJ3(mK5)sD0-gB2+eA7=uI9",
        "ALLOWED_HOSTS": "console.example.com",
        "DATABASE_URL": "sqlite:////tmp/deploy-check.sqlite3",
        "CACHE_URL": "redis://127.0.0.1:6379/0",  # sign-in throttling needs a shared cache (security.W001)
    }
    for leaked in ("DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"):  # the browser tests set the latter for their thread
        env.pop(leaked, None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_local_defaults_are_development_only():
    from django.conf import settings

    assert settings.AUTH_USER_MODEL == "members.User"
    assert "accounts.backends.AccountPermissionBackend" in settings.AUTHENTICATION_BACKENDS


def test_check_deploy_warns_when_the_throttle_cache_is_per_process():
    env = {**os.environ, "SECRET_KEY": "x7$Lq2!vN9@pR4#tW8^zY1&cF6*hJ3(mK5)sD0-gB2+eA7=uI9",
           "ALLOWED_HOSTS": "console.example.com", "DATABASE_URL": "sqlite:////tmp/deploy-check.sqlite3"}
    for leaked in ("DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE", "CACHE_URL"):
        env.pop(leaked, None)
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "security.W001" in result.stdout + result.stderr


def _database_options(**extra) -> dict:
    """The default database's OPTIONS as the settings build them for ``extra`` environment variables."""
    env = {**os.environ, "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/anything"}
    env.pop("DATABASE_PREPARED_STATEMENTS", None)
    env.update(extra)
    code = ("import json; from config import settings; "
            "print(json.dumps(settings.DATABASES['default'].get('OPTIONS', {})))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_postgresql_prepares_repeated_statements_unless_turned_off():
    assert _database_options() == {"server_side_binding": True, "prepare_threshold": 2}
    assert _database_options(DATABASE_PREPARED_STATEMENTS="false") == {}


def test_a_statement_run_twice_is_prepared_on_the_server(db):
    """On PostgreSQL the second run of a query prepares it (pg_prepared_statements lists it); the answers
    stay the same."""
    from django.db import connection

    from accounts.models import Account
    from tests.factories import AccountFactory

    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    account = AccountFactory(name="Prepared")
    answers = [list(Account.objects.filter(name="Prepared").values_list("pk", flat=True)) for _ in range(3)]
    assert answers == [[account.pk]] * 3
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        statements = [row[0] for row in cursor.fetchall()]
    assert any('FROM "accounts_account"' in s and '"accounts_account"."name" = $1' in s for s in statements)
