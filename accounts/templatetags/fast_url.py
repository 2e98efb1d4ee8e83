"""``{% url %}`` that reverses each URL pattern once per process when its arguments are UUIDs (issue 14).

Django's ``reverse`` costs ~20 µs a call; a list of 25 subaccounts has ~150 links, a few milliseconds a page.
Every URL of the console takes public ids (UUIDs), so the tag reverses a view once with placeholder UUIDs and
fills in the real ones (a URL without arguments is simply kept): the same string ``reverse`` gives, since the
uuid path converter writes ``str(uuid)`` and any UUID matches its pattern. Anything else (other types, keyword
arguments, a pattern that refuses the placeholders) goes through Django's own tag unchanged. Installed as a
template builtin (``config.settings``), so it replaces ``url`` in every template without a ``{% load %}``."""

import uuid
from functools import lru_cache

from django import template
from django.template.defaulttags import URLNode
from django.template.defaulttags import url as django_url
from django.urls import NoReverseMatch, get_resolver, get_script_prefix, get_urlconf, reverse
from django.utils.html import conditional_escape

register = template.Library()

PLACEHOLDERS = tuple(str(uuid.UUID(int=0x5EED_0000_0000_4000_8000_0000_0000_0000 + i)) for i in range(4))


@lru_cache(maxsize=2048)
def _shape(view_name: str, count: int, resolver, script_prefix: str, current_app: str | None) -> str | None:
    """The URL of ``view_name`` with the first ``count`` placeholders as its arguments, or None. Keyed by the
    resolver (a new one after ``clear_url_caches`` or another URLconf) and the script prefix."""
    try:
        return reverse(view_name, args=PLACEHOLDERS[:count], urlconf=resolver.urlconf_name, current_app=current_app)
    except NoReverseMatch:
        return None


@lru_cache(maxsize=2048)
def _formatter(view_name: str, count: int, resolver, script_prefix: str, current_app: str | None):
    """``_shape`` as a ``str.format`` of ``count`` arguments (braces of the URL itself doubled), or None."""
    url = _shape(view_name, count, resolver, script_prefix, current_app)
    if url is None:
        return None
    template = url.replace("{", "{{").replace("}", "}}")
    for index, placeholder in enumerate(PLACEHOLDERS[:count]):
        template = template.replace(placeholder, f"{{{index}}}")
    return template.format


def _from_shape(view_name: str, args, resolver, script_prefix: str, current_app: str | None) -> str | None:
    """The URL from the cached shape when every argument is a UUID (or there is none) and the pattern takes the
    placeholders, else None."""
    if len(args) > len(PLACEHOLDERS) or not all(type(a) is uuid.UUID for a in args):
        return None
    formatter = _formatter(view_name, len(args), resolver, script_prefix, current_app)
    return None if formatter is None else formatter(*args)


def reverse_uuids(view_name: str, args: list, current_app: str | None = None) -> str | None:
    """``reverse(view_name, args=args)`` from the cached shape when every argument is a UUID (or there is
    none), else None."""
    return _from_shape(view_name, args, get_resolver(get_urlconf()), get_script_prefix(), current_app)


def uuid_urls(current_app: str | None = None):
    """``url(view_name, *args)``: ``reverse(view_name, args=args)`` for a tag that links every row of a table, the
    URLconf and script prefix looked up once (``reverse_uuids`` looks them up on each call: 6-10 µs a link, against
    2-3 here); Django's ``reverse`` for arguments that are not all UUIDs or a pattern that refuses them."""
    resolver, script_prefix = get_resolver(get_urlconf()), get_script_prefix()

    def url(view_name: str, *args) -> str:
        found = _from_shape(view_name, args, resolver, script_prefix, current_app)
        return found if found is not None else reverse(view_name, args=args, current_app=current_app)

    return url


class FastURLNode(URLNode):
    def render(self, context):
        url = None
        if not self.kwargs:
            try:
                current_app = context.request.current_app
            except AttributeError:
                try:
                    current_app = context.request.resolver_match.namespace
                except AttributeError:
                    current_app = None
            url = reverse_uuids(self.view_name.resolve(context), [arg.resolve(context) for arg in self.args],
                                current_app)
        if url is None:
            return super().render(context)
        if self.asvar:
            context[self.asvar] = url
            return ""
        return conditional_escape(url) if context.autoescape else url


@register.tag
def url(parser, token):
    node = django_url(parser, token)
    return FastURLNode(node.view_name, node.args, node.kwargs, node.asvar)
