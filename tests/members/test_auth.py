import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import Account
from members.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_login_uses_email_case_insensitively(client, password):
    user = UserFactory(email="casey@example.test")
    response = client.post(reverse("login"), {"login": "Casey@Example.TEST", "password": password})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def test_wrong_password_shows_a_message(client):
    UserFactory(email="casey@example.test")
    response = client.post(reverse("login"), {"login": "casey@example.test", "password": "nope"})
    assert response.status_code == 200
    assert "enter a correct email address and password" in response.content.decode().lower()


def test_signup_creates_an_owned_account_and_signs_in(client):
    response = client.post(reverse("signup"), {
        "name": "Dana", "email": "dana@example.test", "password": "a-sturdy-passphrase", "account_name": "Dana Co",
    }, follow=True)
    account = Account.objects.get(name="Dana Co")
    assert response.redirect_chain[-1][0] == account.get_absolute_url()
    assert "you are its Owner" in response.content.decode()
    assert response.context["account_access"].role.name == "Owner"


@pytest.mark.parametrize("field,value,message", [
    ("email", "taken@example.test", "already exists"),
    ("password", "short", "too short"),
    ("account_name", "x", "at least 2 characters"),
    ("email", "not-an-email", "valid email"),
])
def test_signup_bad_input_is_explained_and_creates_nothing(client, field, value, message):
    UserFactory(email="taken@example.test")
    data = {"name": "Dana", "email": "dana@example.test", "password": "a-sturdy-passphrase", "account_name": "Dana Co"}
    data[field] = value
    response = client.post(reverse("signup"), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert User.objects.count() == 1 and not Account.objects.exists()


def test_password_reset_sends_a_working_link(client):
    user = UserFactory(email="reset@example.test")
    client.post(reverse("password_reset"), {"email": "RESET@example.test"})
    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    link = next(line for line in body.splitlines() if "/accounts/reset/" in line).strip()
    path = link.split("testserver", 1)[1]
    form_page = client.get(path, follow=True)
    assert form_page.context["validlink"]
    client.post(form_page.redirect_chain[-1][0], {"new_password1": "brand-new-secret-9",
                                                  "new_password2": "brand-new-secret-9"})
    user.refresh_from_db()
    assert user.check_password("brand-new-secret-9")


def test_password_reset_for_unknown_email_reveals_nothing(client):
    response = client.post(reverse("password_reset"), {"email": "ghost@example.test"}, follow=True)
    assert "Check your email" in response.content.decode()
    assert mail.outbox == []


def test_logout_is_a_post(client):
    client.force_login(UserFactory())
    assert client.post(reverse("logout")).status_code == 302
    assert "_auth_user_id" not in client.session
