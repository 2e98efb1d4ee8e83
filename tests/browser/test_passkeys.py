"""A passkey as the second factor, in Chromium with its virtual authenticator (DevTools' WebAuthn domain):
register it from the two-factor page, sign out, sign in with the password and then the passkey."""

import pytest
from allauth.mfa.models import Authenticator
from django.urls import reverse
from playwright.sync_api import expect

from security.models import SecurityEvent
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def authenticator(page):
    """A platform authenticator that always has its user present and verified."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    found = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})
    return cdp, found["authenticatorId"]


def test_register_a_passkey_then_sign_in_with_it(page, live_server, sign_in, authenticator, screenshot):
    cdp, authenticator_id = authenticator
    casey = UserFactory(email="casey@example.test")
    sign_in(casey.email, PASSWORD)
    expect(page.get_by_role("link", name=casey.email)).to_be_visible()
    page.goto(live_server.url + reverse("mfa_add_webauthn"))
    # Adding a factor asks for the password again, even right after signing in.
    assert "/accounts/reauthenticate/" in page.url
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    page.get_by_label("Name").fill("Work laptop")
    # allauth binds the button when the page has loaded (``data-allauth-onload``): a click before that does nothing
    page.wait_for_load_state("load")
    page.locator("#mfa_webauthn_add").click()
    # The first factor set up makes recovery codes, shown once.
    expect(page.get_by_role("heading", name="Recovery codes")).to_be_visible()
    assert len(cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]) == 1
    passkey = Authenticator.objects.get(user=casey, type=Authenticator.Type.WEBAUTHN)
    assert passkey.wrap().name == "Work laptop"
    assert SecurityEvent.objects.filter(user=casey, kind=SecurityEvent.Kind.MFA_ADDED, detail="passkey").exists()
    screenshot("passkey-added")

    page.get_by_role("button", name="Sign out").first.click()
    sign_in(casey.email, PASSWORD)
    expect(page.get_by_role("button", name="Use a security key")).to_be_visible()  # the password is not enough
    page.wait_for_load_state("load")  # (bound on load, as above)
    page.get_by_role("button", name="Use a security key").click()
    expect(page.get_by_role("link", name=casey.email)).to_be_visible()
    assert "/accounts/2fa/authenticate" not in page.url
    assert SecurityEvent.objects.filter(user=casey, kind=SecurityEvent.Kind.LOGIN_SUCCEEDED).count() == 2
