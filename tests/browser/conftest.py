import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in the test thread; Django's ORM calls from
# the test body (factories) are still synchronous and safe here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


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
