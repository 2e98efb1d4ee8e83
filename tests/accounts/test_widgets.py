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
