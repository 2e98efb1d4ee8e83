"""Production settings pass Django's deployment checklist."""

import os
import subprocess
import sys
from pathlib import Path

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
