"""The profile page (name, time zone, date format), email change with verification, password change, and the
login activity page: own data only, signed-out visitors sent to sign in, a fixed query budget."""

import datetime
import re

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from security.models import SecurityEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
Kind = SecurityEvent.Kind
NOON_UTC = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)


@pytest.fixture
def casey(db):
    return UserFactory(email="casey@example.test", name="Casey")


def test_profile_saves_name_time_zone_and_date_format(client, casey):
    client.force_login(casey)
    assert client.get(reverse("profile")).status_code == 200
    response = client.post(reverse("profile"), {"name": "Casey Jones", "time_zone": "America/New_York",
                                                "date_format": "iso"}, follow=True)
    assert "Profile saved." in response.content.decode()
    casey.refresh_from_db()
    assert (casey.name, casey.time_zone, casey.date_format) == ("Casey Jones", "America/New_York", "iso")


def test_an_unknown_time_zone_is_refused_at_the_field(client, casey):
    client.force_login(casey)
    response = client.post(reverse("profile"), {"name": "C", "time_zone": "Mars/Olympus", "date_format": "dmy"})
    assert "Select a valid choice" in response.content.decode()


def test_times_are_shown_in_the_readers_time_zone_and_format(client, casey):
    SecurityEvent.objects.create(user=casey, email=casey.email, kind=Kind.LOGIN_SUCCEEDED, created_at=NOON_UTC)
    client.force_login(casey)
    with time_machine.travel(NOON_UTC + datetime.timedelta(hours=1), tick=False):
        assert "1 Mar 2026 12:00" in client.get(reverse("security-activity")).content.decode()
        casey.time_zone, casey.date_format = "America/New_York", "iso"
        casey.save()
        assert "2026-03-01 07:00" in client.get(reverse("security-activity")).content.decode()
        casey.time_zone, casey.date_format = "Asia/Tokyo", "mdy"
        casey.save()
        assert "Mar 1, 2026, 9:00 PM" in client.get(reverse("security-activity")).content.decode()


def test_signed_out_visitors_are_sent_to_sign_in(client):
    for name in ("profile", "security-activity", "account_email", "account_change_password", "mfa_index",
                 "usersessions_list"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), name


def test_activity_shows_only_the_readers_own_events_of_the_last_90_days(client, casey):
    other = UserFactory(email="other@example.test")
    with time_machine.travel(NOON_UTC, tick=False):
        SecurityEvent.objects.create(user=other, email=other.email, kind=Kind.LOGIN_FAILED, ip="192.0.2.99")
        SecurityEvent.objects.create(user=casey, email=casey.email, kind=Kind.LOGIN_FAILED, ip="192.0.2.1",
                                     created_at=NOON_UTC - datetime.timedelta(days=91))
        SecurityEvent.objects.create(user=casey, email=casey.email, kind=Kind.PASSWORD_CHANGED, ip="192.0.2.2")
        client.force_login(casey)
        page = client.get(reverse("security-activity")).content.decode()
    assert "192.0.2.2" in page and "Password changed" in page
    assert "192.0.2.99" not in page and "192.0.2.1<" not in page


def test_activity_page_query_budget_does_not_grow_with_rows(client, casey, count_queries):
    client.force_login(casey)
    counts = []
    for n in (3, 120):
        SecurityEvent.objects.bulk_create([SecurityEvent(user=casey, email=casey.email, kind=Kind.LOGIN_FAILED,
                                                         ip="192.0.2.1") for _ in range(n)])
        counts.append(count_queries(lambda: client.get(reverse("security-activity"))))
        assert count_queries.last_result.status_code == 200
    assert counts[0] == counts[1] <= 5, counts


def test_profile_page_query_budget(client, casey, count_queries):
    client.force_login(casey)
    assert count_queries(lambda: client.get(reverse("profile"))) <= 5


def test_email_change_takes_effect_only_once_the_new_address_is_verified(client, casey):
    from allauth.account.models import EmailAddress

    EmailAddress.objects.create(user=casey, email=casey.email, primary=True, verified=True)
    client.force_login(casey)
    response = client.post(reverse("account_email"), {"action_add": "", "email": "casey.new@example.test"})
    assert response.status_code == 302
    casey.refresh_from_db()
    assert casey.email == "casey@example.test"
    assert mail.outbox[-1].to == ["casey.new@example.test"]
    link = re.search(r"http://testserver(/accounts/confirm-email/[^/\s]+/)", mail.outbox[-1].body)[1]
    assert client.post(link).status_code == 302
    casey.refresh_from_db()
    assert casey.email == "casey.new@example.test"
    assert SecurityEvent.objects.filter(user=casey, kind=Kind.EMAIL_CHANGED).exists()
    assert not EmailAddress.objects.filter(user=casey, email="casey@example.test").exists()


def test_another_persons_confirmation_link_does_not_change_my_address(client, casey):
    from allauth.account.models import EmailAddress

    other = UserFactory(email="other@example.test")
    client.force_login(other)
    client.post(reverse("account_email"), {"action_add": "", "email": "other.new@example.test"})
    link = re.search(r"http://testserver(/accounts/confirm-email/[^/\s]+/)", mail.outbox[-1].body)[1]
    client.force_login(casey)
    client.post(link)
    casey.refresh_from_db()
    assert casey.email == "casey@example.test"
    assert not EmailAddress.objects.filter(user=casey, email="other.new@example.test").exists()


def test_password_change_needs_the_current_password_and_the_validators(client, casey, password):
    client.force_login(casey)
    url = reverse("account_change_password")
    wrong = client.post(url, {"oldpassword": "nope", "password1": "brand-new-secret-9",
                              "password2": "brand-new-secret-9"})
    assert "current password" in wrong.content.decode().lower()
    weak = client.post(url, {"oldpassword": password, "password1": "short", "password2": "short"})
    assert "too short" in weak.content.decode()
    ok = client.post(url, {"oldpassword": password, "password1": "brand-new-secret-9",
                           "password2": "brand-new-secret-9"})
    assert ok.status_code == 302
    casey.refresh_from_db()
    assert casey.check_password("brand-new-secret-9")
    assert SecurityEvent.objects.filter(user=casey, kind=Kind.PASSWORD_CHANGED).exists()
    assert any("password" in m.subject.lower() for m in mail.outbox)  # told by email
