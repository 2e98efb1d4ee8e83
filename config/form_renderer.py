"""The form renderer (``FORM_RENDERER``): Django's, with its most used widget templates written in Python (issue 14).

Django draws every widget through its templates: a text input is ``input.html``, which includes ``attrs.html``,
which loops over the attributes, each a few template nodes. A form of four fields cost a page 0.5-1 ms that
way (the audit trail's filters, the transfer wizard's step), as much as the rest of the page's own template.
These functions write what those templates write, character for character: the inputs (text, email, number,
date, hidden, checkbox…), the labels, ``select`` with its options and groups, and radio buttons and checkbox
lists. Every other template (the field and form layouts, errors, the admin's widgets) is still a template.
``tests/test_form_renderer.py`` renders every field of every form of the project both ways and compares them.

The templates' own rules, kept here: an attribute that is ``False`` is left out and one that is ``True`` is
written bare; ``stringformat:'s'`` values are written with ``%s`` and escaped unless already safe; a variable
written as it is (a label) goes through ``render_value_in_context`` (localized, then escaped); a callable is
called as many times as the template resolves it, and what it gives is not called again; an exception in a
comparison (``{% if value is not False %}``, ``{% if widget.value != None %}``) makes it false, unless it says it
is a silent failure (then the value is empty) or is ``VariableDoesNotExist`` (``None`` in a condition, ``""``
written); the renderer strips what a template gives."""

import inspect

from django.forms.renderers import DjangoTemplates
from django.template.base import VariableDoesNotExist, render_value_in_context
from django.template.context import Context
from django.utils.html import conditional_escape
from django.utils.safestring import SafeData, mark_safe

_CONTEXT = Context(autoescape=True)  # what a widget's template is rendered in: escaping on, localization by default


def _resolved(value, missing=""):
    """One resolution of a template variable bound to ``value``: a callable is called (unless it says not to; one
    that alters data, or needs arguments, gives the empty ``string_if_invalid``, as does an exception that says it
    is a silent failure); one that raises ``VariableDoesNotExist`` gives ``missing`` (``""`` written, ``None`` in
    an ``{% if %}``). What it gives is not called again."""
    if not callable(value) or getattr(value, "do_not_call_in_templates", False):
        return value
    try:
        if getattr(value, "alters_data", False):
            return ""
        try:
            return value()
        except TypeError:
            try:
                inspect.signature(value).bind()
            except (TypeError, ValueError):  # arguments were required (or no signature): an invalid call
                return ""
            raise
    except VariableDoesNotExist:
        return missing
    except Exception as exc:
        if getattr(exc, "silent_variable_failure", False):
            return ""
        raise


def _calls(value) -> bool:
    """Whether each resolution of ``value`` calls it (then it is resolved as many times as the template does)."""
    return callable(value) and not getattr(value, "do_not_call_in_templates", False)


_FAILED = object()


def _compared(value):
    """``value`` resolved for a comparison in ``{% if %}`` (``value is not False``, ``value != None``): the
    template's operators turn an exception into a false condition (``_FAILED`` here)."""
    try:
        return _resolved(value, None)
    except Exception:
        return _FAILED


def _text(value) -> str:
    """``{{ value }}``."""
    if type(value) is str:
        return conditional_escape(value)
    return render_value_in_context(_resolved(value), _CONTEXT)


def _formatted(value) -> str:
    """``{{ value|stringformat:'s' }}`` of a value already resolved: ``%s`` of it (a tuple as its ``str``),
    escaped unless it was safe."""
    try:
        text = "%s" % (str(value) if isinstance(value, tuple) else value)  # noqa: UP031 (the filter's own operation)
    except (ValueError, TypeError):
        return ""
    return text if isinstance(value, SafeData) else conditional_escape(text)


# What each template writes, as ``{% include %}`` writes it: every template file ends with a newline, which an
# include keeps (a select's options are separated by it) and the renderer strips at the top. ``renderer`` draws a
# template that is not here (an option of another kind).

def _attrs(attrs) -> str:
    """``attrs.html`` (no newline of its own): `` name="value"`` for each attribute, `` name`` for ``True``,
    nothing for ``False``."""
    if not attrs:  # (None on a label without attributes: the template's loop has nothing to go over)
        return ""
    return "".join(
        _called_attr(name, value) if _calls(value) else
        f" {_text(name)}" if value is True else f' {_text(name)}="{_formatted(value)}"'
        for name, value in attrs.items() if value is not False)


def _called_attr(name, value) -> str:
    """One attribute of ``attrs.html`` whose value is called: resolved by ``value is not False``, again by ``value
    is not True`` (a failure there writes the name bare) and again when written."""
    first = _compared(value)
    if first is False or first is _FAILED:
        return ""
    second = _compared(value)
    if second is True or second is _FAILED:
        return f" {_text(name)}"
    return f' {_text(name)}="{_formatted(_resolved(value))}"'


def _not_none(value) -> bool:
    """``{% if widget.value != None %}``: false when resolving or comparing fails."""
    try:
        return bool(_resolved(value, None) != None)  # noqa: E711 (the template's own operator: a value may define it)
    except Exception:
        return False


def _input(widget, renderer) -> str:
    """``input.html``."""
    value = widget["value"]
    value = f' value="{_formatted(_resolved(value))}"' if _not_none(value) else ""
    return f'<input type="{_text(widget["type"])}" name="{_text(widget["name"])}"{value}{_attrs(widget["attrs"])}>\n'


def _input_option(widget, renderer) -> str:
    """``input_option.html`` (a radio button or a checkbox of a list): the input, in its label when wrapped
    (``widget.wrap_label`` resolved before and after it, as the template does)."""
    drawn = ""
    if _resolved(widget.get("wrap_label"), None):
        element_id = widget["attrs"].get("id")
        drawn = "<label" + (f' for="{_text(element_id)}"' if _resolved(element_id, None) else "") + ">"
    drawn += _input(widget, renderer)
    if _resolved(widget.get("wrap_label"), None):
        drawn += f' {_text(widget["label"])}</label>'
    return drawn + "\n"


def _select_option(widget, renderer) -> str:
    """``select_option.html``."""
    value = _formatted(_resolved(widget["value"]))
    return f'<option value="{value}"{_attrs(widget["attrs"])}>{_text(widget["label"])}</option>\n'


def _option(option, renderer) -> str:
    """``{% include option.template_name with widget=option %}``."""
    draw = _TEMPLATES.get(option["template_name"])
    return draw(option, renderer) if draw else renderer.get_template(option["template_name"]).render({"widget": option})


def _groups(widget, renderer, opening: str, option: str, closing: str) -> str:
    """The loop both ``select.html`` and ``multiple_input.html`` make over ``optgroups``: ``opening`` (formatted
    with the group's name) and ``closing`` around a named group's options, each option's include in ``option``."""
    parts = []
    for group, options, _index in widget["optgroups"]:
        if group:
            parts.append(opening.format(_text(group)))
        parts.extend(option.format(_option(each, renderer)) for each in options)
        if group:
            parts.append(closing)
    return "".join(parts)


def _select(widget, renderer) -> str:
    """``select.html``: the options, in their ``optgroup`` when they have one."""
    return (f'<select name="{_text(widget["name"])}"{_attrs(widget["attrs"])}>'
            + _groups(widget, renderer, '\n  <optgroup label="{}">', "\n  {}", "\n  </optgroup>") + "\n</select>\n")


def _multiple_input(widget, renderer) -> str:
    """``multiple_input.html`` (radio buttons, checkbox lists): a ``div`` of options, groups in a ``div`` each."""
    attrs = widget["attrs"]
    element_id = _resolved(attrs.get("id"))  # ({% with id=widget.attrs.id %}: resolved there, and again in use)
    return ("<div" + (f' id="{_text(element_id)}"' if _resolved(element_id, None) else "")
            + (f' class="{_text(attrs["class"])}"' if _resolved(attrs.get("class"), None) else "") + ">"
            + _groups(widget, renderer, "\n  <div><label>{}</label>", "<div>\n    {}</div>", "\n  </div>")
            + "\n</div>\n")


def _including(draw):
    """A template whose whole text is ``{% include %}`` of ``draw``'s (``text.html`` of ``input.html``,
    ``radio_option.html`` of ``input_option.html``, ``radio.html`` of ``multiple_input.html``…), then its own
    final newline."""
    return lambda widget, renderer: draw(widget, renderer) + "\n"


def _label(context) -> str:
    """``django/forms/label.html``."""
    if not context["use_tag"]:
        return _text(context["label"]) + "\n"
    tag = _text(context["tag"])
    return f'<{tag}{_attrs(context["attrs"])}>{_text(context["label"])}</{tag}>\n'


_TEMPLATES = {
    **{f"django/forms/widgets/{name}.html": _including(_input) for name in (
        "checkbox", "color", "date", "datetime", "email", "file", "hidden", "number", "password", "search", "tel",
        "text", "time", "url")},
    "django/forms/widgets/input.html": _input,
    "django/forms/widgets/input_option.html": _input_option,
    "django/forms/widgets/radio_option.html": _including(_input_option),
    "django/forms/widgets/checkbox_option.html": _including(_input_option),
    "django/forms/widgets/select_option.html": _select_option,
    "django/forms/widgets/select.html": _select,
    "django/forms/widgets/multiple_input.html": _multiple_input,
    "django/forms/widgets/radio.html": _including(_multiple_input),
    "django/forms/widgets/checkbox_select.html": _including(_multiple_input),
}


class FastWidgets(DjangoTemplates):
    """Django's ``DjangoTemplates`` renderer, with the widget templates above drawn in Python."""

    def render(self, template_name, context, request=None):
        draw = _TEMPLATES.get(template_name)
        if draw is not None and "widget" in context:
            return mark_safe(draw(context["widget"], self).strip())
        if template_name == "django/forms/label.html":
            return mark_safe(_label(context).strip())
        return super().render(template_name, context, request=request)
