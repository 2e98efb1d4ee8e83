from django import forms
from django.core.exceptions import ValidationError

from .models import LIMIT_NAMES, NAME_MAX_LENGTH
from .permissions import CATEGORIES, Level, Matrix, clean_matrix
from .services import clean_account_name
from .widgets import QuickSelect


class AccountNameForm(forms.Form):
    name = forms.CharField(label="Account name", max_length=NAME_MAX_LENGTH,
                           help_text="At least 2 characters, e.g. “Acme Corp - Sales Team”.")

    def __init__(self, *args, parent=None, exclude=None, **kwargs):
        self.parent, self.exclude = parent, exclude
        super().__init__(*args, **kwargs)

    def clean_name(self):
        try:
            return clean_account_name(self.cleaned_data["name"], parent=self.parent, exclude=self.exclude)
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from exc


class SubaccountCreateForm(AccountNameForm):
    """A name, and optionally the person who will run the subaccount (invited by email)."""

    invite_email = forms.EmailField(label="Invite someone to run it (optional)", required=False,
                                    help_text="They get an email link. You keep your access through this account.")
    invite_role = forms.ChoiceField(label="As", required=False)

    def __init__(self, *args, roles=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["invite_role"].choices = [(r.id, r.name) for r in roles]
        if not roles:
            del self.fields["invite_email"], self.fields["invite_role"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("invite_email") and not cleaned.get("invite_role"):
            self.add_error("invite_role", "Choose the role to invite them as.")
        return cleaned


class AccessMatrixForm(forms.Form):
    """None / Read / Full per permission category, never above what the person holds (rule 6)."""

    def __init__(self, *args, current: dict, ceiling: Matrix | None, **kwargs):
        super().__init__(*args, **kwargs)
        self.ceiling = ceiling
        current = clean_matrix(current)
        for category in CATEGORIES:
            initial = current.get(category.key, category.top)
            if ceiling is not None:
                initial = min(initial, ceiling[category.key])
            self.fields[category.key] = forms.ChoiceField(
                label=category.label,
                choices=[(level.name.lower(), level.label) for level in category.levels],
                initial=initial.name.lower(),
            )

    def clean(self):
        cleaned = super().clean()
        for category in CATEGORIES:
            value = cleaned.get(category.key)
            if value is None or self.ceiling is None:
                continue
            if Level.parse(value) > self.ceiling[category.key]:
                self.add_error(category.key, f"At most {self.ceiling[category.key].label} can be given for "
                                             f"{category.label} here (what you hold, within this account's own "
                                             f"access), so you cannot grant {value.title()}.")
        return cleaned

    @property
    def matrix(self) -> dict[str, str]:
        return {c.key: self.cleaned_data[c.key] for c in CATEGORIES}

    def rows(self):
        return [(c, self[c.key]) for c in CATEGORIES]


LIMIT_LABELS = {
    "minutes": "Minutes per period",
    "concurrent_calls": "Concurrent calls",
    "agents": "Max agents",
    "members": "Max members",
}


class LimitsForm(forms.Form):
    """The four limits. ``parent_defaults`` (on a subaccount) says what a blank field takes
    (``services.blank_limits``)."""

    def __init__(self, *args, parent_defaults: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        for name in LIMIT_NAMES:
            if parent_defaults is None:
                help_text = "Blank: no limit."
            else:
                default = parent_defaults[name]
                help_text = ("Blank: the most the parent's own limits allow (no limit if they have none)."
                             if default is None else f"Blank: the parent's default ({default}).")
            self.fields[name] = forms.IntegerField(label=LIMIT_LABELS[name], required=False, min_value=0,
                                                   max_value=10_000_000, help_text=help_text)

    @property
    def limits(self) -> dict[str, int | None]:
        return {name: self.cleaned_data.get(name) for name in LIMIT_NAMES}


class SuspendForm(forms.Form):
    confirm = forms.BooleanField(label="I understand that its members lose access until it is reactivated.")


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, label="Actor email")
    action = forms.ChoiceField(required=False, label="Action", widget=QuickSelect)
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    conversations = forms.BooleanField(required=False, label="Show conversation events")
    include_subaccounts = forms.BooleanField(required=False, label="Include subaccounts")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("since") and cleaned.get("until") and cleaned["since"] > cleaned["until"]:
            self.add_error("until", "The end date is before the start date.")
        return cleaned

    def __init__(self, *args, actions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", "Any action"), *((a, a) for a in actions)]




class MoveForm(forms.Form):
    """Where a subaccount (and everything below it) goes: another account of the same tree."""

    new_parent = forms.ChoiceField(label="Move it under")

    def __init__(self, *args, candidates=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.candidates = {str(a.public_id): a for a in candidates}
        self.fields["new_parent"].choices = [(str(a.public_id), ("— " * (a.depth - 1)) + a.name) for a in candidates]

    @property
    def target(self):
        return self.candidates[self.cleaned_data["new_parent"]]


def form_errors_from(form, exc: ValidationError) -> None:
    """A service's ValidationError onto the form that fed it: field errors at their fields (when the form has
    them), the rest at the top. Services stay the one place the rules live; forms only show their answers."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)
