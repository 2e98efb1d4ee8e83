import pytest
import stripe

from tests.stripe_fake import FakeStripe

KEY = "sk_test_" + "LocalStripeKey0123456789abcd"


@pytest.fixture(scope="session")
def fake_stripe_server():
    """localstripe on a free 127.0.0.1 port, once per test session (nothing reaches the internet)."""
    pytest.importorskip("localstripe", reason="localstripe is a test dependency: `make test` installs it")
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
