import os
import shutil
import threading
from pathlib import Path

import pytest
from django.core.signals import request_finished
from django.db import connections

# Playwright's sync API runs an event loop in the test thread; Django's ORM calls from
# the test body (factories) are still synchronous and safe here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def chromium_path() -> str:
    return os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


# Debian's Chromium, since Playwright cannot download its own browsers here.
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": chromium_path(),
        "args": ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"],
    }


@pytest.fixture(scope="session", autouse=True)
def _chromium_is_installed(missing_test_dependency):
    """Without Chromium the journeys are skipped locally, with the reason, and fail in CI (CI=true)."""
    if shutil.which(chromium_path()) is None:
        missing_test_dependency(
            f"Chromium is not installed at {chromium_path()} (`make browser` installs Debian's chromium; "
            "CHROMIUM_PATH points at another one).")


@pytest.fixture(scope="session")
def _test_thread_connections():
    """The test thread's database connections, taken before Playwright starts (see ``playwright`` below)."""
    return {alias: connections[alias] for alias in connections}


@pytest.fixture(scope="session")
def playwright(_test_thread_connections, playwright):
    """pytest-playwright's, with the test thread keeping its own database connections while Playwright runs.

    Playwright's sync API leaves its event loop running in the test thread until the session ends, and Django
    keeps a thread's connections (an asgiref ``Local(thread_critical=True)``) in a context variable instead of
    the thread-local while a loop runs: every test after the first browser test got a second connection, without
    the first one's ``_test_serialized_contents``, and the last one it opened was never closed (the session's
    teardown, after Playwright stopped, saw and closed only the first), so PostgreSQL refused to drop the test
    database. The same connection objects in both places: one connection per thread, closed as before."""
    for alias, conn in _test_thread_connections.items():
        connections[alias] = conn
    yield playwright


def _close_this_threads_connections(**kwargs):
    if threading.current_thread() is not threading.main_thread():
        connections.close_all()


@pytest.fixture(autouse=True)
def _close_db_connections(live_server):
    """live_server answers each browser connection in its own thread, and Chromium keeps connections alive:
    with CONN_MAX_AGE those threads kept their database connections open after the test, and PostgreSQL then
    refused to drop the test database ("is being accessed by other users"). During a browser test every
    live-server thread closes its connections when its response is finished (the test thread's own requests,
    made by Django's test client, are left alone); after the test the test thread closes its own.

    Asking for live_server here, before any Playwright fixture, also starts it before the browser, so it
    stops after the browser has closed its keep-alive connections: the threads answering them end (and close
    their connections) while the server still runs, not later (on SQLite that raised in those threads)."""
    request_finished.connect(_close_this_threads_connections, dispatch_uid="browser-tests-close-connections")
    yield
    request_finished.disconnect(dispatch_uid="browser-tests-close-connections")
    connections.close_all()


@pytest.fixture
def screenshot(page):
    """screenshot("name"): saves what a person sees to test-artifacts/ (not committed)."""
    ARTIFACTS.mkdir(exist_ok=True)

    def shoot(name):
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    return shoot


@pytest.fixture
def sign_in(page, live_server):
    def do(email, password):
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()

    return do
