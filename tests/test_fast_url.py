"""``{% url %}`` with UUID arguments reverses each pattern once (accounts/templatetags/fast_url.py, issue 14): it
must give exactly what Django's ``reverse`` gives, for every named URL of the project, and fall back to Django's
own tag for everything else."""

import uuid

import pytest
from django.template import engines
from django.test import override_settings
from django.urls import NoReverseMatch, clear_url_caches, reverse, set_script_prefix
from django.urls.converters import UUIDConverter

from accounts.templatetags.fast_url import reverse_uuids, uuid_urls
from tests.test_url_isolation import walk_url_patterns


def render(source: str, **context) -> str:
    return engines["django"].from_string(source).render(context)


def uuid_routes():
    """Named routes whose every argument is a UUID, or that take none."""
    return [r for r in walk_url_patterns() if ":" in r.name and not r.regex
            and all(isinstance(r.converters.get(a), UUIDConverter) for a in r.args)]


def test_every_named_url_with_uuid_arguments_reverses_as_django_does():
    routes = uuid_routes()
    assert len(routes) > 50  # the walk found the console's pages, not an empty list
    for route in routes:
        args = [uuid.uuid4() for _ in route.args]
        expected = reverse(route.name, args=args)
        assert reverse_uuids(route.name, args) == expected, route.name
        assert uuid_urls()(route.name, *args) == expected, route.name
        tag = "{% url name " + " ".join(f"a{i}" for i in range(len(args))) + " %}"
        assert render(tag, name=route.name, **{f"a{i}": a for i, a in enumerate(args)}) == expected


def test_other_arguments_go_through_djangos_tag():
    account = uuid.uuid4()
    assert reverse_uuids("accounts:dashboard", [str(account)]) is None  # a string: Django's tag decides
    assert render("{% url 'accounts:dashboard' a %}", a=str(account)) == f"/a/{account}/"
    assert render("{% url 'accounts:dashboard' account_id=a %}", a=account) == f"/a/{account}/"
    assert render("{% url 'accounts:switcher' %}") == reverse("accounts:switcher")
    with pytest.raises(NoReverseMatch):
        render("{% url 'accounts:dashboard' a %}", a=12)
    assert render("{% url 'no-such-view' a as found %}[{{ found }}]", a=account) == "[]"
    assert render("{% url 'accounts:dashboard' a as found %}[{{ found }}]", a=account) == f"[/a/{account}/]"


def test_uuid_urls_falls_back_to_django_for_other_arguments():
    url, account = uuid_urls(), uuid.uuid4()
    assert url("accounts:dashboard", str(account)) == f"/a/{account}/"  # a string: Django's reverse
    with pytest.raises(NoReverseMatch):
        url("accounts:dashboard", 12)
    with pytest.raises(NoReverseMatch):
        url("no-such-view", account)


def test_a_url_with_braces_is_formatted_as_it_reverses(monkeypatch):
    """The shape becomes a ``str.format`` template: braces of the URL itself stay as they are."""
    from accounts.templatetags import fast_url

    fast_url._formatter.cache_clear()
    monkeypatch.setattr(fast_url, "_shape", lambda view, count, *rest: f"/x{{}}/{fast_url.PLACEHOLDERS[0]}/{{0}}/")
    account = uuid.uuid4()
    assert reverse_uuids("any", [account]) == f"/x{{}}/{account}/{{0}}/"
    assert uuid_urls()("any", account) == f"/x{{}}/{account}/{{0}}/"
    fast_url._formatter.cache_clear()


def test_a_script_prefix_and_another_urlconf_are_honoured():
    account = uuid.uuid4()
    set_script_prefix("/console/")
    try:
        assert render("{% url 'accounts:dashboard' a %}", a=account) == f"/console/a/{account}/"
        assert uuid_urls()("accounts:dashboard", account) == f"/console/a/{account}/"
    finally:
        set_script_prefix("/")
    assert render("{% url 'accounts:dashboard' a %}", a=account) == f"/a/{account}/"
    with override_settings(ROOT_URLCONF="bench.floor_urls"):
        clear_url_caches()
        assert render("{% url 'bench-bare' %}") == "/bench/bare/"
        assert render("{% url 'accounts:dashboard' a %}", a=account) == f"/a/{account}/"
    clear_url_caches()
