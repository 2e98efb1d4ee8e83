"""The demo `make run` seeds: safe to run twice, and what the README promises a reviewer is there (the
Contoso owner signs in with the printed TOTP secret; a pending support-access request waits)."""

import datetime
import io
import re

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from django.core.management import call_command
from django.urls import reverse

from accounts.models import Account
from members.models import User
from security.models import SecurityPolicy, SupportAccess
from tests.security.test_mfa import totp

pytestmark = pytest.mark.django_db
DEMO_PASSWORD = "demo-pass-2026"


@pytest.fixture(autouse=True)
def _after_commit(monkeypatch):
    from django.db import transaction

    monkeypatch.setattr(transaction, "on_commit", lambda func, using=None, robust=False: func())


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seed_twice_changes_nothing_the_second_time_and_prints_the_logins():
    first = seed()
    counts = {m: m.objects.count() for m in (Account, User, Authenticator, SupportAccess, SecurityPolicy)}
    second = seed()
    assert {m: m.objects.count() for m in counts} == counts
    secret = re.search(r"TOTP secret ([A-Z2-7]+)", first).group(1)
    assert secret in second and "owner@contoso.example" in second and "support@platform.example" in second


def test_the_contoso_owner_signs_in_with_the_printed_secret_and_the_policy_applies(client):
    secret = re.search(r"TOTP secret ([A-Z2-7]+)", seed()).group(1)
    contoso = Account.objects.get(name="Contoso Clinics", parent=None)
    assert contoso.security_policy.require_mfa == SecurityPolicy.MfaScope.ADMINS
    at = datetime.datetime.now(datetime.UTC)
    with time_machine.travel(at, tick=False):
        response = client.post(reverse("login"), {"login": "owner@contoso.example", "password": DEMO_PASSWORD})
        assert response["Location"] == reverse("mfa_authenticate")
        out = io.StringIO()
        call_command("demo_totp", stdout=out)
        code = out.getvalue().split()[0]
        assert code == totp(secret, at)
        assert client.post(reverse("mfa_authenticate"), {"code": code}).status_code == 302
    assert client.get(reverse("accounts:dashboard", args=[contoso.public_id])).status_code == 200


def test_platform_support_waits_for_initech_s_owner():
    seed()
    request = SupportAccess.objects.get()
    assert request.status == SupportAccess.Status.REQUESTED and request.account.name == "Initech Clinics"
    assert request.requested_by.is_staff and request.requested_by.groups.filter(name="Support").exists()
