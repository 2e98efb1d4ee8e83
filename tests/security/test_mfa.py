"""Two-factor authentication with allauth.mfa: TOTP activation and sign-in with codes computed here (RFC 6238),
recovery codes, re-authentication before a factor is removed, events recorded, passkeys of others out of
reach."""

import base64
import datetime
import hashlib
import hmac
import struct

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from django.urls import reverse

from security.models import SecurityEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
Kind = SecurityEvent.Kind
T0 = datetime.datetime(2026, 3, 1, 9, 0, tzinfo=datetime.UTC)


def totp(secret: str, at: datetime.datetime) -> str:
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(at.timestamp()) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def reauthenticate(client, password):
    response = client.post(reverse("account_reauthenticate"), {"password": password})
    assert response.status_code == 302, response.content.decode()[:2000]


@pytest.fixture
def casey(db):
    return UserFactory(email="casey@example.test")


@pytest.fixture(autouse=True)
def _after_commit(monkeypatch):
    """allauth.mfa announces changes (signals, emails) on commit; the test's transaction never commits, so
    run them at once, inside the request, as a committed transaction would."""
    from django.db import transaction

    monkeypatch.setattr(transaction, "on_commit", lambda func, using=None, robust=False: func())


def activate_totp(client, user, password, at=T0) -> str:
    client.force_login(user)
    with time_machine.travel(at, tick=False):
        reauthenticate(client, password)
        page = client.get(reverse("mfa_activate_totp"))
        secret = page.context["form"].secret
        response = client.post(reverse("mfa_activate_totp"), {"code": totp(secret, at)})
        assert response.status_code == 302, response.content.decode()[:3000]
    return secret


def test_totp_activation_then_sign_in_asks_for_the_code(client, casey, password):
    secret = activate_totp(client, casey, password)
    assert set(Authenticator.objects.filter(user=casey).values_list("type", flat=True)) == {"totp", "recovery_codes"}
    assert SecurityEvent.objects.filter(user=casey, kind=Kind.MFA_ADDED, detail="authenticator app").exists()
    client.logout()
    later = T0 + datetime.timedelta(minutes=5)
    with time_machine.travel(later, tick=False):
        response = client.post(reverse("login"), {"login": casey.email, "password": password})
        assert response.status_code == 302 and response["Location"] == reverse("mfa_authenticate")
        assert "_auth_user_id" not in client.session  # the password alone signs nobody in
        wrong = client.post(reverse("mfa_authenticate"), {"code": "000000"})
        assert wrong.status_code == 200 and "_auth_user_id" not in client.session
        assert client.post(reverse("mfa_authenticate"), {"code": totp(secret, later)}).status_code == 302
        assert client.session["_auth_user_id"] == str(casey.pk)
    kinds = list(SecurityEvent.objects.filter(user=casey).order_by("pk").values_list("kind", flat=True))
    assert kinds[-2:] == [Kind.MFA_FAILED, Kind.LOGIN_SUCCEEDED]


def test_a_recovery_code_signs_in_once(client, casey, password):
    activate_totp(client, casey, password)
    code = Authenticator.objects.get(user=casey, type="recovery_codes").wrap().get_unused_codes()[0]
    client.logout()
    for expected_in in (True, False):
        client.logout()
        client.post(reverse("login"), {"login": casey.email, "password": password})
        client.post(reverse("mfa_authenticate"), {"code": code})
        assert ("_auth_user_id" in client.session) is expected_in


def test_turning_totp_off_needs_reauthentication(client, casey, password):
    activate_totp(client, casey, password)
    later = T0 + datetime.timedelta(hours=1)
    with time_machine.travel(later, tick=False):  # the earlier confirmation is long past
        response = client.post(reverse("mfa_deactivate_totp"))
        assert response.status_code == 302 and "reauthenticate" in response["Location"]
        assert Authenticator.objects.filter(user=casey, type="totp").exists()
        reauthenticate(client, password)
        assert client.post(reverse("mfa_deactivate_totp")).status_code == 302
    assert not Authenticator.objects.filter(user=casey, type="totp").exists()
    assert SecurityEvent.objects.filter(user=casey, kind=Kind.MFA_REMOVED).exists()


def test_recovery_codes_are_shown_and_downloadable_once_then_only_regenerable(client, casey, password):
    """The codes page shows them once (with a download carrying them); afterwards neither the page nor the
    download gives them; generating new codes shows the new ones once and voids the old."""
    import urllib.parse

    activate_totp(client, casey, password)
    with time_machine.travel(T0 + datetime.timedelta(minutes=1), tick=False):
        old = Authenticator.objects.get(user=casey, type="recovery_codes").wrap().get_unused_codes()
        first = client.get(reverse("mfa_view_recovery_codes")).content.decode()
        assert all(code in first for code in old) and "only this once" in first
        link = first.split('download="agency-console-recovery-codes.txt" href="')[1].split('"')[0]
        assert all(code in urllib.parse.unquote(link) for code in old)
        again = client.get(reverse("mfa_view_recovery_codes")).content.decode()
        assert not any(code in again for code in old) and "Generate new codes" in again
        assert "10 of 10 recovery codes remain unused" in again
        assert client.get(reverse("mfa_download_recovery_codes")).status_code == 403
        assert client.post(reverse("mfa_generate_recovery_codes")).status_code == 302
        new = Authenticator.objects.get(user=casey, type="recovery_codes").wrap().get_unused_codes()
        assert set(new).isdisjoint(old)
        shown = client.get(reverse("mfa_view_recovery_codes")).content.decode()
        assert all(code in shown for code in new)
    assert SecurityEvent.objects.filter(user=casey, kind=Kind.MFA_RESET).exists()


def test_another_persons_passkey_is_404(client, casey, password):
    other = UserFactory()
    passkey = Authenticator.objects.create(user=other, type=Authenticator.Type.WEBAUTHN,
                                           data={"name": "Other's key", "credential": {}})
    client.force_login(casey)
    reauthenticate(client, password)
    for name in ("mfa_edit_webauthn", "mfa_remove_webauthn"):
        for method in (client.get, client.post):
            assert method(reverse(name, kwargs={"pk": passkey.pk})).status_code == 404, name
    assert Authenticator.objects.filter(pk=passkey.pk).exists()


def test_mfa_pages_render_under_the_content_security_policy(client, casey, password):
    client.force_login(casey)
    reauthenticate(client, password)
    for name in ("mfa_index", "mfa_activate_totp", "mfa_add_webauthn", "usersessions_list", "account_email"):
        response = client.get(reverse(name))
        assert response.status_code == 200, name
        body = response.content.decode()
        # every script is a static file or a JSON data block (CSP: script-src 'self', no inline script)
        import re

        for tag in re.findall(r"<script\b[^>]*>", body):
            assert 'src="/static/' in tag or 'type="application/json"' in tag, (name, tag)
