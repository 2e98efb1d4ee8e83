"""Security headers: the Content-Security-Policy and what it relies on in the templates, and the
proxy-SSL header that is trusted only when the deployment says so."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from config.settings import proxy_ssl_header
from members.roles import RoleId
from tests.factories import AccountFactory, UserFactory

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def assert_strict(response):
    csp = policy(response)
    for name in ("script-src", "style-src", "default-src"):
        assert csp[name] == ["'self'"], (name, csp[name])
    assert csp["object-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'self'"] and csp["form-action"][0] == "'self'"
    assert csp["img-src"] == ["'self'", "data:"]
    header = response["Content-Security-Policy"]
    assert "'unsafe-inline'" not in header and "'unsafe-eval'" not in header


@pytest.mark.django_db
class TestContentSecurityPolicy:
    def test_login_page(self, client):
        response = client.get(reverse("login"))
        assert response.status_code == 200
        assert_strict(response)

    def test_signed_in_page(self, client, make_member):
        account = AccountFactory(name="Agency")
        client.force_login(make_member(account, RoleId.OWNER))
        response = client.get(reverse("accounts:dashboard", kwargs={"account_id": account.public_id}))
        assert response.status_code == 200 and b"htmx-config" in response.content
        assert_strict(response)

    def test_htmx_fragment_and_admin(self, client, make_member):
        account = AccountFactory(name="Agency")
        client.force_login(make_member(account, RoleId.OWNER))
        fragment = client.get(reverse("accounts:switcher"), headers={"HX-Request": "true"})
        assert fragment.status_code == 200
        assert_strict(fragment)
        client.force_login(UserFactory(is_staff=True, is_superuser=True))
        admin = client.get(reverse("admin:index"))
        assert admin.status_code == 200
        assert_strict(admin)

    def test_htmx_is_told_not_to_inject_styles_or_eval(self, client):
        html = client.get(reverse("login")).content.decode()
        config = re.search(r"""<meta name="htmx-config" content='([^']*)'>""", html)
        assert config and '"includeIndicatorStyles": false' in config[1] and '"allowEval": false' in config[1]


# --- templates: nothing the policy would block -------------------------------------------------

DJANGO_COMMENT = re.compile(r"{#.*?#}|{%\s*comment\s*%}.*?{%\s*endcomment\s*%}", re.S)
TAG = re.compile(r"<([a-zA-Z][a-zA-Z0-9-]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>")
EVENT_HANDLER = re.compile(r"(?:^|\s)on[a-z]+\s*=", re.I)
HX_ON = re.compile(r"(?:^|\s)(?:hx|data-hx)-on\b", re.I)
EVAL_VALUE = re.compile(r"(?:^|\s)(?:hx-vars\s*=|hx-vals\s*=\s*[\"']\s*(?:js|javascript):)", re.I)


def served_templates():
    """Every template under templates/ except email bodies (never served as pages)."""
    return sorted(p for p in TEMPLATES.rglob("*") if p.is_file() and "email" not in p.relative_to(TEMPLATES).parts)


def problems_in(source: str) -> list[str]:
    """What the policy would block: inline <script>/<style>, on*= handlers, style= attributes,
    javascript: URLs, and htmx attributes that need eval (hx-on, hx-vars, js: hx-vals)."""
    problems = []
    for match in TAG.finditer(DJANGO_COMMENT.sub("", source)):
        name, attrs = match[1].lower(), match[2]
        if name == "script" and not re.search(r"(?:^|\s)src\s*=", attrs):
            problems.append(f"inline <script{attrs}>")
        if name == "style":
            problems.append("inline <style>")
        if EVENT_HANDLER.search(attrs):
            problems.append(f"event-handler attribute in <{name}{attrs}>")
        if HX_ON.search(attrs) or EVAL_VALUE.search(attrs):
            problems.append(f"htmx attribute that needs eval in <{name}{attrs}>")
        if re.search(r"(?:^|\s)style\s*=", attrs):
            problems.append(f"style attribute in <{name}{attrs}>")
        if re.search(r"=\s*[\"']?\s*javascript:", attrs, re.I):
            problems.append(f"javascript: URL in <{name}{attrs}>")
    return problems


def test_the_walk_finds_the_templates():
    names = {str(p.relative_to(TEMPLATES)) for p in served_templates()}
    assert {"base.html", "billing/invoice_detail.html"} <= names
    assert not any(name.startswith("members/email/") for name in names)


@pytest.mark.parametrize("path", served_templates(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_template_has_no_inline_script_or_event_handler(path):
    assert problems_in(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("snippet,found", [
    ("<script>alert(1)</script>", True),
    ('<script type="module">x()</script>', True),
    ('<script src="/static/js/app.js" defer></script>', False),
    ('<script data-x="1" src="{% static \'js/app.js\' %}"></script>', False),
    ('<button type="button" onclick="window.print()">', True),
    ('<a href="#" ONMOUSEOVER = "x()">', True),
    ('<button hx-on:click="x()">', True),
    ("<div hx-vals='js:{a: 1}'>", True),
    ('<p style="color: red">', True),
    ("<style>p {}</style>", True),
    ('<a href="javascript:void(0)">', True),
    ('<button data-print hx-get="/x" hx-trigger="click once">', False),
    ('<a {% if on %}class="x"{% endif %} href="/online=1">', False),
    ("{# <script>x()</script> #}", False),
])
def test_the_template_check_sees_what_it_must(snippet, found):
    assert bool(problems_in(snippet)) is found


# --- SECURE_PROXY_SSL_HEADER ---------------------------------------------------------------------

@pytest.mark.parametrize("value,expected", [
    ("", None),
    ("  ", None),
    ("off", None),
    ("HTTP_X_FORWARDED_PROTO", ("HTTP_X_FORWARDED_PROTO", "https")),
    ("X-Forwarded-Proto", ("HTTP_X_FORWARDED_PROTO", "https")),
    ("http_x_forwarded_proto", ("HTTP_X_FORWARDED_PROTO", "https")),
    ("X-Forwarded-Ssl,on", ("HTTP_X_FORWARDED_SSL", "on")),
    ("HTTP_CLOUDFRONT_FORWARDED_PROTO, https", ("HTTP_CLOUDFRONT_FORWARDED_PROTO", "https")),
])
def test_proxy_ssl_header_parsing(value, expected):
    assert proxy_ssl_header(value) == expected


@pytest.mark.parametrize("value", ["X Forwarded Proto", "HTTP_X;Y", "X-Forwarded-Proto,https,http"])
def test_proxy_ssl_header_rejects_garbage(value):
    with pytest.raises(ImproperlyConfigured):
        proxy_ssl_header(value)


def settings_value(name, **environ):
    env = {key: value for key, value in os.environ.items() if key != "SECURE_PROXY_SSL_HEADER"}
    code = f"import django; django.setup(); from django.conf import settings; print(repr(settings.{name}))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**env, "DJANGO_SETTINGS_MODULE": "config.settings", **environ})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_proxy_ssl_header_is_absent_unless_the_environment_sets_it():
    assert settings_value("SECURE_PROXY_SSL_HEADER") == "None"
    assert settings_value("SECURE_PROXY_SSL_HEADER", SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO") == (
        "('HTTP_X_FORWARDED_PROTO', 'https')")


def test_forwarded_proto_is_ignored_by_default(rf, settings):
    assert settings.SECURE_PROXY_SSL_HEADER is None
    assert not rf.get("/", headers={"X-Forwarded-Proto": "https"}).is_secure()
    settings.SECURE_PROXY_SSL_HEADER = proxy_ssl_header("HTTP_X_FORWARDED_PROTO")
    assert rf.get("/", headers={"X-Forwarded-Proto": "https"}).is_secure()
