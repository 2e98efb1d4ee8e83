"""``format_html`` and ``format_html_join`` as Django writes them, for the rows drawn in Python (issue 14).

The Subaccounts table, the audit trail, the switcher's items and the billing charts escape some 200 values a
page. Django escapes each through ``conditional_escape``, ``escape`` (wrapped by ``keep_lazy``, which looks for a
lazy string among the arguments on every call) and a ``SafeString`` per value: several calls for what is, for an
``int`` or a plain ``str``, one ``html.escape`` at most. These give the same text (``tests/test_html.py`` compares
them with Django's for every kind of value), escaping every value that is not already safe HTML.
"""

from collections.abc import Mapping
from html import escape as _html_escape

from django.utils.functional import Promise
from django.utils.safestring import SafeString, mark_safe

__all__ = ["format_html", "format_html_join"]


def _escaped(value) -> str:
    """``conditional_escape(value)``, as text: ``int`` as it is, a safe string as it is, anything else escaped."""
    kind = type(value)
    if kind is int:  # (not bool: True prints as "True", which escaping leaves alone anyway)
        return str(value)
    if kind is str:
        return _html_escape(value)
    if kind is SafeString:
        return value
    if isinstance(value, Promise):  # a lazy translation: its text
        value = str(value)
    if hasattr(value, "__html__"):
        return value.__html__()
    return _html_escape(str(value))


def format_html(format_string: str, *args, **kwargs) -> SafeString:
    """``django.utils.html.format_html``: ``format_string`` with every argument escaped unless already safe."""
    if not (args or kwargs):
        raise TypeError("format_html needs arguments: use mark_safe for a constant.")
    return mark_safe(format_string.format(*map(_escaped, args), **{k: _escaped(v) for k, v in kwargs.items()}))


def format_html_join(sep: str, format_string: str, args_generator) -> SafeString:
    """``django.utils.html.format_html_join``: ``format_html`` of each tuple (or mapping) of arguments, joined by
    ``sep`` (escaped too)."""
    fmt = format_string.format
    return mark_safe(_escaped(sep).join(
        fmt(**{k: _escaped(v) for k, v in args.items()}) if isinstance(args, Mapping) else fmt(*map(_escaped, args))
        for args in args_generator))
