"""Sign-in throttling: per address and per IP, the same answer for known and unknown addresses, the time to
wait, every attempt recorded, lifted by staff in the admin or by a password reset."""

import datetime
import re

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from security import throttle
from security.models import SecurityEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
Kind = SecurityEvent.Kind
START = datetime.datetime(2026, 3, 1, 9, 0, tzinfo=datetime.UTC)


def attempt(client, email, password, ip="203.0.113.7"):
    return client.post(reverse("login"), {"login": email, "password": password}, REMOTE_ADDR=ip)


def error_text(response) -> str:
    text = response.content.decode()
    found = re.search(r'<div class="errors" role="alert"><p>(.*?)</p>', text)
    return found[1] if found else ""


@pytest.fixture
def casey(db):
    return UserFactory(email="casey@example.test")


@time_machine.travel(START, tick=False)
def test_the_sixth_attempt_is_refused_with_the_time_to_wait_even_with_the_right_password(client, casey, password):
    for _ in range(5):
        response = attempt(client, "casey@example.test", "wrong")
        assert "correct email address and password" in error_text(response)
    response = attempt(client, "Casey@Example.test", password)
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    assert error_text(response) == ("Too many failed sign-in attempts. Try again in 15 minutes, or reset your "
                                    "password.")
    with time_machine.travel(START + datetime.timedelta(minutes=11), tick=False):
        assert "Try again in 4 minutes" in error_text(attempt(client, "casey@example.test", password))
    with time_machine.travel(START + datetime.timedelta(minutes=15, seconds=1), tick=False):
        assert attempt(client, "casey@example.test", password).status_code == 302


@time_machine.travel(START, tick=False)
def test_known_and_unknown_addresses_get_the_same_answers(client, casey):
    answers = {}
    for email in ("casey@example.test", "nobody@example.test"):
        answers[email] = [(r.status_code, error_text(r)) for r in
                          (attempt(client, email, "wrong") for _ in range(6))]
    assert answers["casey@example.test"] == answers["nobody@example.test"]
    assert answers["nobody@example.test"][-1][1].startswith("Too many failed sign-in attempts. Try again in 15")


def test_a_right_password_does_not_spend_the_budget(client, casey, password):
    for _ in range(4):
        attempt(client, "casey@example.test", "wrong")
    assert attempt(client, "casey@example.test", password).status_code == 302
    client.logout()
    assert "correct email address" in error_text(attempt(client, "casey@example.test", "wrong"))
    assert "Too many" in error_text(attempt(client, "casey@example.test", "wrong"))  # 4 + 1 failures, then refused


def test_one_ip_guessing_many_addresses_is_stopped(client, settings, casey, password):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login_failed_ip": "3/15m/key"}
    for n in range(3):
        attempt(client, f"someone{n}@example.test", "wrong", ip="198.51.100.9")
    assert "Too many" in error_text(attempt(client, "casey@example.test", password, ip="198.51.100.9"))
    assert attempt(client, "casey@example.test", password, ip="198.51.100.10").status_code == 302


def test_every_attempt_is_recorded_with_ip_and_browser(client, casey, password):
    client.post(reverse("login"), {"login": "nobody@example.test", "password": "x"}, REMOTE_ADDR="192.0.2.1",
                HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
    for _ in range(5):
        attempt(client, "casey@example.test", "wrong")
    attempt(client, "casey@example.test", password)
    events = list(SecurityEvent.objects.order_by("pk").values_list("kind", "email", "ip", "user"))
    assert events[0] == (Kind.LOGIN_FAILED, "nobody@example.test", "192.0.2.1", None)
    assert events[1:6] == [(Kind.LOGIN_FAILED, "casey@example.test", "203.0.113.7", casey.pk)] * 5
    assert events[6] == (Kind.LOGIN_THROTTLED, "casey@example.test", "203.0.113.7", casey.pk)
    assert "Firefox" in SecurityEvent.objects.earliest("pk").user_agent
    dana = UserFactory(email="dana@example.test")
    assert attempt(type(client)(), "dana@example.test", password, ip="192.0.2.1").status_code == 302
    assert SecurityEvent.objects.values_list("kind", "user", "ip").latest("pk") == (
        Kind.LOGIN_SUCCEEDED, dana.pk, "192.0.2.1")


def test_staff_lift_a_lockout_in_the_admin(client, casey, password):
    for _ in range(6):
        attempt(client, "casey@example.test", "wrong")
    assert throttle.locked_for(email="casey@example.test") > 0
    staff = UserFactory(is_staff=True, is_superuser=True)
    admin = type(client)()
    admin.force_login(staff)
    changelist = reverse("admin:security_securityevent_changelist")
    page = admin.get(changelist)
    assert "15 minutes left" in page.content.decode()
    row = SecurityEvent.objects.filter(kind=Kind.LOGIN_THROTTLED).get()
    response = admin.post(changelist, {"action": "lift_lockout", "_selected_action": [row.pk]}, follow=True)
    assert "they can sign in now" in response.content.decode()
    lifted = SecurityEvent.objects.get(kind=Kind.LOCKOUT_LIFTED)
    assert (lifted.user, lifted.by, lifted.email) == (casey, staff, "casey@example.test")
    assert attempt(client, "casey@example.test", password).status_code == 302


def test_only_staff_lift_lockouts(casey):
    from django.core.exceptions import PermissionDenied

    from security.services import lockout_lift

    with pytest.raises(PermissionDenied):
        lockout_lift(by=casey, email="casey@example.test")
    with pytest.raises(PermissionDenied):
        lockout_lift(by=None, email="casey@example.test")


def test_a_password_reset_lifts_the_lockout(client, casey):
    for _ in range(6):
        attempt(client, "casey@example.test", "wrong")
    client.post(reverse("password_reset"), {"email": "casey@example.test"})
    link = next(line for line in mail.outbox[0].body.splitlines() if "/accounts/reset/" in line).strip()
    form_page = client.get(link.split("testserver", 1)[1], follow=True)
    client.post(form_page.redirect_chain[-1][0], {"new_password1": "brand-new-secret-9",
                                                  "new_password2": "brand-new-secret-9"})
    assert attempt(client, "casey@example.test", "brand-new-secret-9").status_code == 302
    assert SecurityEvent.objects.filter(kind=Kind.PASSWORD_RESET, user=casey).exists()


def test_the_admin_sign_in_goes_through_the_same_page(client):
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
