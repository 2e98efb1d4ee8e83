"""members.emails.clean_email (rule R9) and the forms that use it."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from members.emails import MAX_LENGTH, clean_email
from members.forms import InviteForm, SignupForm
from members.models import User
from members.roles import ROLES

ACCEPTED = [
    ("dana@example.test", "dana@example.test"),
    ("first.last+tag@sub.example.co.uk", "first.last+tag@sub.example.co.uk"),
    ("  Dana@Example.TEST \n", "dana@example.test"),
    ("ÜBER@Bücher.example", "über@bücher.example"),
    ("U\u0308ber@bu\u0308cher.example", "über@bücher.example"),  # decomposed ü typed on some keyboards: NFC
    ("a@xn--bcher-kva.example", "a@xn--bcher-kva.example"),
    ("kontakt@straße.de", "kontakt@straße.de"),
    ("info@例え.jp", "info@例え.jp"),
    ("o'brien@example.test", "o'brien@example.test"),
]


def message_of(value) -> tuple[str, str]:
    with pytest.raises(ValidationError) as caught:
        clean_email(value)
    return " ".join(caught.value.messages), caught.value.code


class TestCleanEmail:
    @pytest.mark.parametrize("value,expected", ACCEPTED)
    def test_accepted_and_normalised(self, value, expected):
        assert clean_email(value) == expected

    def test_plain_addresses_are_unchanged(self):
        for address in ("dana@example.test", "owner@northwind.example", "x_y-z.1@a-b.example.org"):
            assert clean_email(address) == address

    def test_a_312_character_address_is_refused_with_its_length(self):
        address = "a" * 60 + "@" + ".".join(["b" * 60] * 4) + "." + "c" * 7  # 60 + 1 + 243 + 1 + 7
        assert len(address) == 312
        message, code = message_of(address)
        assert code == "too_long"
        assert message == f"An email address can be at most {MAX_LENGTH} characters long; this one has 312."

    def test_254_characters_is_the_limit(self):
        domain = ".".join(["b" * 61] * 3) + "." + "c" * 6  # 192 characters
        at_limit = "a" * 61 + "@" + domain
        assert len(at_limit) == 254 and clean_email(at_limit) == at_limit
        assert message_of("a" + at_limit)[1] == "too_long"

    def test_local_part_over_64_characters(self):
        assert clean_email("a" * 64 + "@example.test")
        message, code = message_of("a" * 65 + "@example.test")
        assert code == "too_long" and "before the @ can be at most 64 characters" in message and "65" in message

    @pytest.mark.parametrize("value,named", [
        ("dana@bü\u200bcher.example", "U+200B ZERO WIDTH SPACE"),
        ("dana@example.test\u200b", "U+200B ZERO WIDTH SPACE"),
        ("da\u00adna@example.test", "U+00AD SOFT HYPHEN"),
        ("dana@\u202eelpmaxe.test", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("dana\u2066@example.test", "U+2066 LEFT-TO-RIGHT ISOLATE"),
        ("\ufeffdana@example.test", "U+FEFF ZERO WIDTH NO-BREAK SPACE"),
        ("dana@exa\x00mple.test", "U+0000"),
        ("dana\u034f@example.test", "U+034F COMBINING GRAPHEME JOINER"),
    ])
    def test_invisible_bidi_and_control_characters_are_refused_and_named(self, value, named):
        message, code = message_of(value)
        assert code == "invisible"
        assert named in message and "invisible or control character" in message

    @pytest.mark.parametrize("value,fragment", [
        ("dana@☃.example", "“☃.example” is not a valid email domain: domain names cannot use “☃”"),
        ("dana@xn--abc.example", "its “xn--” part is not valid punycode"),
        ("dana@-acme.example", "cannot start or end with a hyphen"),
        ("dana@acme..example", "an empty part between two dots"),
        ("dana@" + "a" * 64 + ".example", "at most 63 characters"),
        ("dana@ex_ample.test", "“_”"),
        ("dana@[127.0.0.1]", "not a valid email domain"),
        ("dana@bücher。example", "U+3002 IDEOGRAPHIC FULL STOP"),
        ("dana@" + ".".join(["中文字符测试域名很长的标签"] * 9) + ".example", "at most 253 characters"),
    ])
    def test_the_domain_must_be_valid_idna_2008(self, value, fragment):
        message, code = message_of(value)
        assert code == "domain" and fragment in message

    @pytest.mark.parametrize("value", ["not-an-email", "dana@", "@example.test", "dana@example", "dana@@example.test",
                                       "da na@example.test", "dana@example.test.", "dana.@example.test",
                                       "dana@exa mple.test", "dana@example.test\u3000x"])
    def test_malformed_addresses_are_refused_readably(self, value):
        message, code = message_of(value)
        assert code == "invalid"
        assert message in ("Enter a valid email address, like name@company.com.",
                           "An email address cannot contain spaces.")

    @pytest.mark.parametrize("value", ["", "   ", None])
    def test_empty(self, value):
        assert message_of(value) == ("Enter an email address.", "required")


class TestForms:
    def test_invite_form_shows_the_message_at_the_email_field(self):
        form = InviteForm({"email": "a" * 300 + "@example.test", "role": "member"}, roles=[ROLES["member"]])
        assert not form.is_valid()
        assert form.errors["email"] == ["An email address can be at most 254 characters long; this one has 313."]
        form = InviteForm({"email": "dana@bü\u200bcher.example", "role": "member"}, roles=[ROLES["member"]])
        assert not form.is_valid() and "U+200B ZERO WIDTH SPACE" in form.errors["email"][0]

    def test_invite_form_normalises(self):
        form = InviteForm({"email": " ÜBER@Bücher.example ", "role": "member"}, roles=[ROLES["member"]])
        assert form.is_valid(), form.errors
        assert form.cleaned_data["email"] == "über@bücher.example"
        assert form.fields["email"].widget.attrs["maxlength"] == "254"

    @pytest.mark.django_db
    def test_signup_form_uses_the_rule_and_still_finds_taken_addresses(self):
        data = {"name": "Dana", "password": "a-sturdy-passphrase", "account_name": "Dana Co"}
        form = SignupForm({**data, "email": "dana@exa\u202emple.test"})
        assert not form.is_valid() and "RIGHT-TO-LEFT OVERRIDE" in form.errors["email"][0]
        User.objects.create_user(email="über@bücher.example", password="x")
        form = SignupForm({**data, "email": "ÜBER@BÜCHER.example"})
        assert not form.is_valid() and "already exists" in form.errors["email"][0]

    @pytest.mark.django_db
    def test_signup_page_with_a_unicode_address_then_sign_in_again(self, client):
        response = client.post(reverse("signup"), {"name": "Uwe", "email": "ÜBER@Bücher.example",
                                                   "password": "a-sturdy-passphrase", "account_name": "Bücher GmbH"})
        assert response.status_code == 302
        assert User.objects.filter(email="über@bücher.example").exists()
        client.logout()
        response = client.post(reverse("login"), {"login": "Über@bücher.example",
                                                  "password": "a-sturdy-passphrase"})
        assert response.status_code == 302

    @pytest.mark.django_db
    def test_signup_page_shows_the_length_message_at_the_field(self, client):
        response = client.post(reverse("signup"), {"name": "Dana", "email": "d" * 320 + "@example.test",
                                                   "password": "a-sturdy-passphrase", "account_name": "Dana Co"})
        assert response.status_code == 200
        assert response.context["form"].errors["email"] == [
            "An email address can be at most 254 characters long; this one has 333."]
