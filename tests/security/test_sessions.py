"""The session list (allauth.usersessions' records, our page): each sign-in is listed with its browser and
device, IP and last activity, the current one marked; signing out one session or all the others ends them on
their next request, and is in the login activity."""

import pytest
from allauth.usersessions.models import UserSession
from django.test import Client
from django.urls import reverse

from security.models import SecurityEvent
from security.sessions import device_name
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def sign_in(user, password, ip, agent):
    browser = Client(REMOTE_ADDR=ip, HTTP_USER_AGENT=agent)
    assert browser.post(reverse("login"), {"login": user.email, "password": password}).status_code == 302
    return browser


def test_sessions_are_listed_and_the_others_signed_out(password):
    casey = UserFactory(email="casey@example.test")
    laptop = sign_in(casey, password, "192.0.2.10", "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
    phone = sign_in(casey, password, "192.0.2.20", "Mozilla/5.0 (iPhone) Safari/605.1")
    other = sign_in(UserFactory(email="other@example.test"), password, "192.0.2.30", "OtherBrowser/1.0")
    page = laptop.get(reverse("usersessions_list")).content.decode()
    assert "192.0.2.10" in page and "192.0.2.20" in page
    assert "Firefox on Linux" in page and "Safari on iPhone" in page
    assert "This session" in page and "Sign out all 1 other session<" in page
    assert "192.0.2.30" not in page and "OtherBrowser" not in page  # only one's own sessions
    assert laptop.post(reverse("usersessions_list"), {"all_others": "1"}).status_code == 302
    assert phone.get(reverse("profile")).status_code == 302  # the phone is signed out on its next request
    assert laptop.get(reverse("profile")).status_code == 200
    assert other.get(reverse("profile")).status_code == 200
    assert SecurityEvent.objects.filter(user=casey, kind=SecurityEvent.Kind.SESSION_REVOKED,
                                        detail="1 other session").exists()


def test_one_session_is_signed_out_and_the_others_stay(password):
    casey = UserFactory(email="casey@example.test")
    laptop = sign_in(casey, password, "192.0.2.10", "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
    phone = sign_in(casey, password, "192.0.2.20", "Mozilla/5.0 (iPhone) Safari/605.1")
    tablet = sign_in(casey, password, "192.0.2.21", "Mozilla/5.0 (iPad) Safari/605.1")
    phone_session = UserSession.objects.get(user=casey, ip="192.0.2.20")
    response = laptop.post(reverse("usersessions_list"), {"session": phone_session.pk}, follow=True)
    assert "Signed out the session on Safari on iPhone (192.0.2.20)." in response.content.decode()
    assert phone.get(reverse("profile")).status_code == 302
    assert tablet.get(reverse("profile")).status_code == 200 and laptop.get(reverse("profile")).status_code == 200
    event = SecurityEvent.objects.get(user=casey, kind=SecurityEvent.Kind.SESSION_REVOKED)
    assert event.detail == "Safari on iPhone, 192.0.2.20" and event.ip == "192.0.2.10"


def test_another_person_s_session_or_this_one_or_garbage_is_a_404_and_ends_nothing(password):
    casey = UserFactory(email="casey@example.test")
    laptop = sign_in(casey, password, "192.0.2.10", "Firefox/140.0")
    other = sign_in(UserFactory(email="other@example.test"), password, "192.0.2.30", "OtherBrowser/1.0")
    theirs = UserSession.objects.get(ip="192.0.2.30")
    mine = UserSession.objects.get(ip="192.0.2.10")
    for value in (theirs.pk, mine.pk, "x", "", 10**9):
        assert laptop.post(reverse("usersessions_list"), {"session": value}).status_code == 404
    assert other.get(reverse("profile")).status_code == 200 and laptop.get(reverse("profile")).status_code == 200
    assert not SecurityEvent.objects.filter(kind=SecurityEvent.Kind.SESSION_REVOKED).exists()


def test_the_only_session_offers_no_sign_out_of_others(password):
    laptop = sign_in(UserFactory(email="casey@example.test"), password, "192.0.2.10", "Firefox/140.0")
    page = laptop.get(reverse("usersessions_list")).content.decode()
    assert "You are signed in only here." in page and 'name="session"' not in page


@pytest.mark.parametrize(("agent", "name"), [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36 "
     "Edg/140.0", "Edge on Windows"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 "
     "Safari/605.1.15", "Safari on macOS"),
    ("Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Mobile "
     "Safari/537.36", "Chrome on Android"),
    ("curl/8.5.0", "curl/8.5.0"),
    ("", "Unknown browser"),
])
def test_devices_are_named_as_people_know_them(agent, name):
    assert device_name(agent) == name
