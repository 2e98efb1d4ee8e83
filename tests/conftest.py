import os

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from members.roles import RoleId

from .factories import PASSWORD, AccountFactory, MembershipFactory, UserFactory


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def password():
    return PASSWORD


@pytest.fixture
def make_member():
    """make_member(account, role="member") -> user with that role in the account."""

    def make(account, role=RoleId.MEMBER, user=None):
        user = user or UserFactory()
        MembershipFactory(user=user, account=account, role=role)
        return user

    return make


@pytest.fixture
def agency(db):
    """A root agency account with an Owner."""
    return AccountFactory(name="Agency")


@pytest.fixture
def login(client):
    def do(user):
        client.force_login(user)
        return client

    return do


class QueryCounter:
    """Counts the queries a callable makes: ``count(lambda: client.get(url))``."""

    def __call__(self, fn):
        with CaptureQueriesContext(connection) as ctx:
            result = fn()
        self.last_result = result
        return len(ctx.captured_queries)


@pytest.fixture
def count_queries():
    return QueryCounter()


# Browser tests: Debian's Chromium, since Playwright cannot download its own browsers here.
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"),
        "args": ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"],
    }
