"""QuickSelect writes exactly what Django's Select writes, for any choices, value and attributes."""

from django import forms
from django.utils.safestring import mark_safe
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts.forms import AuditFilterForm
from accounts.widgets import QuickSelect

TEXT = st.text(alphabet=st.sampled_from(list("ab<>&\"' é1")), max_size=6)
OPTION = st.tuples(st.one_of(TEXT, st.integers(-3, 3)), st.one_of(TEXT, TEXT.map(mark_safe)))
CHOICES = st.lists(st.one_of(OPTION, st.tuples(TEXT.filter(bool), st.lists(OPTION, max_size=3))), max_size=6)
ATTRS = st.dictionaries(st.sampled_from(["id", "class", "required", "disabled", "data-x", "aria-label"]),
                        st.one_of(st.booleans(), TEXT, st.integers(0, 9)), max_size=4)


@settings(max_examples=300, deadline=None)
@given(choices=CHOICES, value=st.one_of(st.none(), TEXT, st.integers(-3, 3)), attrs=st.one_of(st.none(), ATTRS),
       name=TEXT)
def test_quick_select_writes_what_djangos_select_writes(choices, value, attrs, name):
    assert QuickSelect(choices=choices).render(name, value, attrs) == forms.Select(choices=choices).render(
        name, value, attrs)


def test_the_audit_filter_keeps_the_chosen_action_and_escapes_names():
    form = AuditFilterForm({"action": "member.<invited>"}, actions=["member.<invited>", "account.created"])
    assert form.is_valid()
    html = str(form["action"])
    assert '<option value="member.&lt;invited&gt;" selected>member.&lt;invited&gt;</option>' in html
    assert html.startswith('<select name="action" id="id_action">')


class _Markup:
    """An object that writes its own HTML (as a BoundField does): the templates turn it into a string first."""

    def __str__(self):
        return '<b onclick="x">'

    def __html__(self):
        return '<b onclick="x">'


def test_labels_that_are_not_plain_strings_are_written_by_djangos_templates():
    import datetime

    from django.utils import translation
    from django.utils.translation import gettext_lazy

    choices = [("a", _Markup()), ("b", 1.5), ("c", datetime.date(2026, 1, 2)), ("d", gettext_lazy("Any"))]
    with translation.override("de"):
        quick = QuickSelect(choices=choices).render("n", "a", {"data-x": _Markup()})
        assert quick == forms.Select(choices=choices).render("n", "a", {"data-x": _Markup()})
    assert "&lt;b onclick" in quick and "1,5" in quick


def test_a_subclass_with_its_own_templates_keeps_them():
    class Custom(QuickSelect):
        option_template_name = "django/forms/widgets/radio_option.html"

    class Plain(forms.Select):
        option_template_name = "django/forms/widgets/radio_option.html"

    choices = [("a", "A"), ("b", "B")]
    assert Custom(choices=choices).render("n", "a") == Plain(choices=choices).render("n", "a")
