"""The session list (allauth.usersessions): each sign-in is listed with its browser and IP, the current one
marked; signing out the others ends them on their next request."""

import pytest
from django.test import Client
from django.urls import reverse

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
    assert "192.0.2.10" in page and "192.0.2.20" in page and "Firefox" in page and "iPhone" in page
    assert "Current" in page
    assert "192.0.2.30" not in page and "OtherBrowser" not in page  # only one's own sessions
    assert laptop.post(reverse("usersessions_list")).status_code == 302
    assert phone.get(reverse("profile")).status_code == 302  # the phone is signed out on its next request
    assert laptop.get(reverse("profile")).status_code == 200
    assert other.get(reverse("profile")).status_code == 200
