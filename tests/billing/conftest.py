import datetime
import os

import pytest
import stripe
import time_machine

from agency.models import AgencyBaseline
from members.roles import RoleId
from tests.factories import AccountFactory

KEY = "sk_test_" + "LocalStripeKey0123456789abcd"


def stripe_tests_required() -> bool:
    """REQUIRE_STRIPE_TESTS=1 (or CI=true, see missing_test_dependency) turns a missing localstripe into an error."""
    return os.environ.get("REQUIRE_STRIPE_TESTS", "").strip() == "1"


@pytest.fixture(scope="session")
def fake_stripe_server(missing_test_dependency):
    """localstripe on a free 127.0.0.1 port, once per test session (nothing reaches the internet)."""
    try:
        import localstripe  # noqa: F401

        from tests.stripe_fake import FakeStripe  # needs aiohttp, which comes with localstripe
    except ImportError as exc:
        missing_test_dependency(
            f"localstripe cannot be imported ({exc}): it is a test dependency (`make test` installs it, or "
            "`.venv/bin/pip install -e '.[test]'`), and the Stripe tests run against it.",
            required=stripe_tests_required(), how_to_require="CI=true or REQUIRE_STRIPE_TESTS=1")
    server = FakeStripe()
    yield server
    server.stop()


@pytest.fixture
def fake_stripe(fake_stripe_server, settings):
    """Stripe configured against the fake, with an empty store for every test."""
    fake_stripe_server.reset()
    settings.STRIPE_SECRET_KEY = settings.STRIPE_TEST_SECRET_KEY = KEY
    settings.STRIPE_API_HOST = fake_stripe_server.url
    old_base, old_key = stripe.api_base, stripe.api_key
    stripe.api_base, stripe.api_key = fake_stripe_server.url, KEY
    yield fake_stripe_server
    stripe.api_base, stripe.api_key = old_base, old_key


# ---- billing transfers (tests/billing/test_transfers.py, test_transfer_commands.py) -------------------

TRANSFER_NOW = datetime.datetime(2026, 11, 14, 12, 0, tzinfo=datetime.UTC)


@pytest.fixture
def frozen_clock():
    with time_machine.travel(TRANSFER_NOW, tick=False):
        yield TRANSFER_NOW


@pytest.fixture
def world(make_member, frozen_clock):
    """Northwind (agency plan) → Acme (a customer, billing hidden from its own people, a 500-minute pool)
    → Acme Sales; Acme's own Owner is Carla; Northwind's baseline gives clients billing and members read."""
    northwind = AccountFactory(name="Northwind")
    owner = make_member(northwind, RoleId.OWNER)
    admin = make_member(northwind, RoleId.ADMIN)
    member = make_member(northwind, RoleId.MEMBER)
    acme = AccountFactory(parent=northwind, name="Acme", access_categories={"billing": "none"}, limit_minutes=500)
    sales = AccountFactory(parent=acme, name="Acme Sales")
    carla = make_member(acme, RoleId.OWNER)
    AgencyBaseline.objects.create(account=northwind, matrix={"billing": "read", "members": "read"})
    return dict(northwind=northwind, owner=owner, admin=admin, member=member, acme=acme, sales=sales, carla=carla)
