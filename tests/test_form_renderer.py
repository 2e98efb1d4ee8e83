"""The form renderer's widgets drawn in Python (``config/form_renderer.py``) write what Django's templates write:
every field of every form of the project (the admin's included), and widgets built to reach each rule of the
templates (attributes true, false, zero and unsafe; values that are safe, lazy, dates, tuples; option groups,
selected options, labels wrapped or not)."""

import datetime
import decimal
import inspect
import itertools
from importlib import import_module

import pytest
from django import forms
from django.apps import apps
from django.conf import settings
from django.forms.renderers import DjangoTemplates, get_default_renderer
from django.template.base import VariableDoesNotExist
from django.utils.functional import SimpleLazyObject
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy

from config.form_renderer import _TEMPLATES, FastWidgets

pytestmark = pytest.mark.django_db

TEMPLATES = DjangoTemplates()
FAST = FastWidgets()
VALUES = [None, "", "plain", 'quote " and <tag> & amp', mark_safe("<b>safe</b>"), 0, 12, decimal.Decimal("1.50"),
          datetime.date(2026, 11, 28), datetime.datetime(2026, 11, 28, 13, 5, tzinfo=datetime.UTC), ("a", "b"),
          ["x", "y"], True, False, gettext_lazy("Lazy text")]
ATTRS = {"id": "id_thing", "class": "wide", "required": True, "disabled": False, "placeholder": 'Say "hi" <there>',
         "maxlength": 10, "data-zero": 0, "data-safe": mark_safe("a&amp;b"), "aria-describedby": None}


def both(widget, name, value, attrs=None) -> tuple[str, str]:
    """The widget drawn by the templates and by Python (a value the widget refuses: the error's type, both)."""
    drawn = []
    for renderer in (TEMPLATES, FAST):
        try:
            drawn.append(widget.render(name, value, attrs, renderer=renderer))
        except Exception as exc:  # noqa: BLE001 (both renderers must fail the same way)
            drawn.append(type(exc))
    return drawn[0], drawn[1]


def project_forms():
    """Every form class defined in the project's own apps (their ``forms``, ``admin`` and view modules)."""
    found = {}
    for config in apps.get_app_configs():
        if not config.path.startswith(str(settings.BASE_DIR)):
            continue
        for suffix in ("forms", "admin", "views", "team_views", "subaccount_views", "transfer_views", "widgets"):
            try:
                module = import_module(f"{config.name}.{suffix}")
            except ModuleNotFoundError:
                continue
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, forms.BaseForm) and cls.__module__.startswith(config.name):
                    found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return found


def test_it_is_the_renderer_in_use():
    assert isinstance(get_default_renderer(), FastWidgets)


def test_every_field_of_every_project_form_renders_as_the_templates_do():
    classes = project_forms()
    assert len(classes) > 15, sorted(classes)  # the walk found the project's forms
    compared = set()
    for path, cls in classes.items():
        for name, field in cls.base_fields.items():
            widget = field.widget
            initial = field.initial() if callable(field.initial) else field.initial  # (a form resolves it first)
            for value in (None, "", initial, "x<&>", 1):
                templates, fast = both(widget, name, value, {"id": f"id_{name}"})
                assert fast == templates, (path, name, value)
                if isinstance(fast, str):
                    compared.add(widget.template_name)
    # what these forms use is covered: the Python templates, and some that stay templates
    assert {"django/forms/widgets/text.html", "django/forms/widgets/select.html"} <= compared, compared
    assert compared & set(_TEMPLATES), compared


@pytest.mark.parametrize("value", VALUES, ids=repr)
@pytest.mark.parametrize("widget", [
    forms.TextInput(), forms.EmailInput(), forms.NumberInput(), forms.DateInput(), forms.HiddenInput(),
    forms.PasswordInput(render_value=True), forms.URLInput(), forms.SearchInput(), forms.TelInput(),
    forms.ColorInput(), forms.TimeInput(), forms.DateTimeInput(), forms.CheckboxInput(), forms.FileInput(),
    forms.TextInput(attrs=ATTRS),
], ids=lambda w: f"{type(w).__name__}{'+attrs' if w.attrs else ''}")
def test_inputs_render_as_the_templates_do(widget, value):
    templates, fast = both(widget, "field", value, {"data-extra": value} if value not in (None,) else None)
    assert fast == templates


CHOICES = [("", "---"), (1, "One & only"), ("two", gettext_lazy("Two")), (3, mark_safe("<i>Three</i>")),
           ("Group <A>", [("a1", "A one"), ("a2", 'A "two"')]), (gettext_lazy("Lazy group"), [(0, 0)])]


@pytest.mark.parametrize("value", [None, "", 1, "two", ["a1", 3], "a2", 0, "missing"], ids=repr)
@pytest.mark.parametrize("widget", [
    forms.Select(choices=CHOICES), forms.SelectMultiple(choices=CHOICES), forms.RadioSelect(choices=CHOICES),
    forms.CheckboxSelectMultiple(choices=CHOICES), forms.Select(choices=CHOICES, attrs=ATTRS),
    forms.RadioSelect(choices=CHOICES[1:4], attrs={"class": "inline"}), forms.NullBooleanSelect(),
    forms.Select(choices=[]), forms.RadioSelect(choices=[]),
], ids=lambda w: f"{type(w).__name__}{'+attrs' if w.attrs else ''}{len(getattr(w, 'choices', []))}")
@pytest.mark.parametrize("element_id", [None, "id_choice"])
def test_choices_render_as_the_templates_do(widget, value, element_id):
    templates, fast = both(widget, "choice", value, {"id": element_id} if element_id else None)
    assert fast == templates


def fixed():
    return "called <once>"


def needs_an_argument(x):
    return x


def alters():
    return "never shown"


alters.alters_data = True
kept = type("Kept", (), {"do_not_call_in_templates": True, "__call__": lambda self: "called", "__str__":
                         lambda self: "kept as it is"})()


class Silent(Exception):
    silent_variable_failure = True


def fails_silently():
    raise Silent


def fails():
    raise RuntimeError("not silent")


def gives_a_callable():
    return fixed


CALLABLES = [fixed, needs_an_argument, alters, kept, lambda: False, lambda: None, lambda: "", lambda: True,
             fails_silently, fails, gives_a_callable]
CALLABLE_IDS = ["called", "needs an argument", "alters data", "not called", "gives False", "gives None",
                "gives nothing", "gives True", "fails silently", "fails", "gives a callable"]


@pytest.mark.parametrize("value", CALLABLES, ids=CALLABLE_IDS)
def test_callables_are_called_as_a_template_calls_them(value):
    templates, fast = both(forms.TextInput(attrs={"data-x": value}), "field", value)
    assert fast == templates
    templates, fast = both(forms.TextInput(attrs={"data-x": value, "class": "kept"}), "field", "plain")
    assert fast == templates
    assert fast.endswith('class="kept">')  # (an attribute that fails leaves the others)


@pytest.mark.parametrize("value", CALLABLES, ids=CALLABLE_IDS)
@pytest.mark.parametrize("widget_class", [forms.RadioSelect, forms.CheckboxSelectMultiple, forms.Select])
def test_callable_ids_and_classes_of_choice_lists_are_resolved_as_a_template_does(widget_class, value):
    widget = widget_class(choices=CHOICES[:3], attrs={"class": value})
    for attrs in ({"id": value}, {"id": "id_choice"}, None):
        templates, fast = both(widget, "choice", 1, attrs)
        assert fast == templates, attrs


def counter():
    """A callable that gives 0, 1, 2… on successive calls: shows how many times a value is resolved."""
    return itertools.count().__next__


def once_then_fails():
    calls = itertools.count()

    def value():
        if next(calls):
            raise RuntimeError("second call")
        return "v"
    return value


def missing():
    raise VariableDoesNotExist("gone")


class Unequal:
    def __ne__(self, other):
        raise RuntimeError("no comparing")

    def __str__(self):
        return "ne"


WIDGETS_WITH_STATE = {  # each built anew for each renderer: their callables keep count of their calls
    "attribute counted": lambda: forms.TextInput(attrs={"data-n": counter()}),
    "value counted": lambda: forms.TextInput(attrs={"value": counter()}),
    "attribute fails on its second call": lambda: forms.TextInput(attrs={"data-x": once_then_fails()}),
    "attribute missing": lambda: forms.TextInput(attrs={"data-x": missing}),
    "choice value counted": lambda: forms.RadioSelect(choices=[(counter(), "a")]),
    "select choice value counted": lambda: forms.Select(choices=[(counter(), "a")]),
    "choice value missing": lambda: forms.Select(choices=[(missing, "A")]),
    "radio class missing": lambda: forms.RadioSelect(choices=CHOICES[:3], attrs={"class": missing}),
    "radio id missing": lambda: forms.RadioSelect(choices=CHOICES[:3], attrs={"id": missing}),
    "choice value that cannot be compared": lambda: forms.RadioSelect(choices=[(Unequal(), "a")]),
    "choice value lazily None": lambda: forms.RadioSelect(choices=[(SimpleLazyObject(lambda: None), "a")]),
}


@pytest.mark.parametrize("build", WIDGETS_WITH_STATE.values(), ids=WIDGETS_WITH_STATE.keys())
def test_values_are_resolved_as_often_and_fail_as_the_templates_do(build):
    """A callable is resolved as many times as the template resolves it (a counter shows the same number), and
    failures (``VariableDoesNotExist``, a comparison that raises) end as they end in the template."""
    drawn = []
    for renderer in (TEMPLATES, FAST):
        try:
            drawn.append(build().render("field", None, None, renderer=renderer))
        except Exception as exc:  # noqa: BLE001 (both renderers must fail the same way)
            drawn.append(type(exc))
    assert drawn[1] == drawn[0]


UNSAFE_IDS = ['id_"quoted"', "id_<b>&amp;", mark_safe("id_<safe>"), 0, "", False, True]


@pytest.mark.parametrize("element_id", UNSAFE_IDS, ids=repr)
@pytest.mark.parametrize("widget", [
    forms.RadioSelect(choices=CHOICES), forms.CheckboxSelectMultiple(choices=CHOICES), forms.Select(choices=CHOICES),
    forms.RadioSelect(choices=CHOICES[:3], attrs={"class": 'a "b" <c>'}),
], ids=lambda w: f"{type(w).__name__}{'+class' if w.attrs else ''}")
def test_unsafe_ids_of_choice_lists_are_escaped_as_the_templates_do(widget, element_id):
    templates, fast = both(widget, "choice", ["a1", 1], {"id": element_id})
    assert fast == templates
    assert "<b>" not in fast


class PricedSelect(forms.Select):
    """Options with attributes of their own (as a widget adds data for a script, or disables one)."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        option["attrs"].update({"data-price": f'{value} "€" <x>', "disabled": value == 1, "data-off": False,
                                "data-zero": 0, "data-safe": mark_safe("<i>ok</i>")})
        return option


class PricedRadioSelect(PricedSelect, forms.RadioSelect):
    pass


class UnwrappedRadioSelect(forms.RadioSelect):
    """Radio buttons not wrapped in their labels (``wrap_label`` false, as a widget drawing its labels apart sets)."""

    def create_option(self, *args, **kwargs):
        option = super().create_option(*args, **kwargs)
        option["wrap_label"] = False
        return option


class OwnOptionRadioSelect(forms.RadioSelect):
    option_template_name = "django/forms/widgets/textarea.html"  # an option template not drawn in Python


class OwnOptionSelect(forms.Select):
    option_template_name = "django/forms/widgets/textarea.html"


@pytest.mark.parametrize("value", [None, 1, "two", ["a1", 3], "missing"], ids=repr)
@pytest.mark.parametrize("widget", [
    PricedSelect(choices=CHOICES), PricedRadioSelect(choices=CHOICES), UnwrappedRadioSelect(choices=CHOICES),
    UnwrappedRadioSelect(choices=CHOICES, attrs={"class": "inline"}), OwnOptionRadioSelect(choices=CHOICES),
    OwnOptionSelect(choices=CHOICES), forms.SelectMultiple(choices=CHOICES, attrs={"size": 4, "multiple": True}),
], ids=lambda w: f"{type(w).__name__}{'+attrs' if w.attrs else ''}")
@pytest.mark.parametrize("element_id", [None, "id_choice"])
def test_options_of_their_own_render_as_the_templates_do(widget, value, element_id):
    """Option-level attributes, options outside their labels and option templates of a widget's own."""
    templates, fast = both(widget, "choice", value, {"id": element_id} if element_id else None)
    assert fast == templates


class LabelForm(forms.Form):
    plain = forms.CharField(label="Plain & simple")
    safe = forms.CharField(label=mark_safe("<b>Safe</b>"))
    lazy = forms.CharField(label=gettext_lazy("Lazy"))
    choice = forms.ChoiceField(choices=CHOICES, widget=forms.RadioSelect, label="Pick one")


@pytest.mark.parametrize("auto_id", ["id_%s", False], ids=["with ids", "without ids"])
@pytest.mark.parametrize("label_suffix", [None, "", " →"])
def test_labels_render_as_the_templates_do(auto_id, label_suffix):
    templates = LabelForm(auto_id=auto_id, label_suffix=label_suffix, renderer=TEMPLATES)
    fast = LabelForm(auto_id=auto_id, label_suffix=label_suffix, renderer=FAST)
    for name in LabelForm.base_fields:
        assert fast[name].label_tag() == templates[name].label_tag(), name
        assert fast[name].label_tag(attrs={"class": "x<y", "hidden": True}) == \
            templates[name].label_tag(attrs={"class": "x<y", "hidden": True}), name
        assert fast[name].legend_tag() == templates[name].legend_tag(), name
    assert str(fast) == str(templates)  # the whole form: layout templates around the Python widgets
    assert fast.as_p() == templates.as_p()


@pytest.mark.parametrize("data", [
    {"plain": "x <y> & z", "safe": "s", "lazy": "l", "choice": "a2"},  # valid
    {"plain": "", "safe": 'a "quote"', "choice": "not a choice"},  # errors on three fields
    {},
], ids=["valid", "invalid", "empty"])
@pytest.mark.parametrize("auto_id", ["id_%s", False], ids=["with ids", "without ids"])
def test_bound_forms_render_as_the_templates_do(data, auto_id):
    """A form sent back: the values typed, the errors, the required marks, every layout."""
    templates = LabelForm(data, auto_id=auto_id, renderer=TEMPLATES)
    fast = LabelForm(data, auto_id=auto_id, renderer=FAST)
    assert fast.is_valid() == templates.is_valid()
    for layout in ("__str__", "as_p", "as_ul", "as_table", "as_div"):
        assert getattr(fast, layout)() == getattr(templates, layout)(), layout
    for name in LabelForm.base_fields:
        assert str(fast[name]) == str(templates[name]), name
        assert str(fast[name].errors) == str(templates[name].errors), name
