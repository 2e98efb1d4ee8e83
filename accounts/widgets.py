"""Widgets written in Python where Django's templates cost a page noticeably (issue 14)."""

from django import forms
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe


def _attrs(attrs: dict) -> str:
    """What ``django/forms/widgets/attrs.html`` writes: `` name="value"``, `` name`` for True, nothing for False."""
    return "".join(f" {conditional_escape(name)}" if value is True
                   else f' {conditional_escape(name)}="{conditional_escape(value)}"'
                   for name, value in attrs.items() if value is not False)


def _plain(value) -> bool:
    """A value the templates would write as ``str(value)`` escaped: a string (not an object that writes its own
    HTML, such as a BoundField), a whole number or a boolean; not a float or a date, which they localize."""
    return isinstance(value, (str, int)) and (not hasattr(value, "__html__") or isinstance(value, SafeString))


class QuickSelect(forms.Select):
    """A ``<select>`` with exactly the markup of Django's ``Select``, written in Python: Django renders every
    option through two templates (~60 µs an option), which made the Audit page's action filter cost about a
    millisecond. Every value is escaped as the templates escape it. Labels and attribute values other than
    plain strings and whole numbers (lazy or localized ones, objects with their own ``__html__``) go to
    Django's templates, as does a subclass with templates of its own."""

    def render(self, name, value, attrs=None, renderer=None):
        context = self.get_context(name, value, attrs)
        widget = context["widget"]
        every_option = [o for _group, options, _index in widget["optgroups"] for o in options]
        if (self.template_name != forms.Select.template_name
                or self.option_template_name != forms.Select.option_template_name
                or not all(_plain(o["label"]) and all(_plain(v) for v in o["attrs"].values()) for o in every_option)
                or not all(_plain(v) for v in widget["attrs"].values())):
            return self._render(self.template_name, context, renderer)
        parts = [format_html('<select name="{}"', widget["name"]), _attrs(widget["attrs"]), ">"]
        for group_name, options, _index in widget["optgroups"]:
            if group_name:
                parts.append(format_html('\n  <optgroup label="{}">', group_name))
            parts.extend(format_html('\n  <option value="{}"{}>{}</option>\n', str(option["value"]),
                                     mark_safe(_attrs(option["attrs"])), option["label"]) for option in options)
            if group_name:
                parts.append("\n  </optgroup>")
        parts.append("\n</select>")
        return mark_safe("".join(parts))
