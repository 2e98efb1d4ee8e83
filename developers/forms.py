from django import forms

from accounts.permissions import CATEGORIES, Level, Matrix
from workspace.models import Agent

from .models import WebhookEvent


class ApiKeyEditForm(forms.Form):
    label = forms.CharField(max_length=100, help_text="What uses it, e.g. “Production server”.")
    expires_at = forms.DateTimeField(required=False, label="Expires",
                                     widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                                     help_text="Optional, in UTC. Blank: never expires.")


class ApiKeyCreateForm(ApiKeyEditForm):
    """Label, expiry and optional narrower scopes, offered only up to what the creator holds (``ceiling``)."""

    restrict = forms.BooleanField(required=False, label="Narrow what this key may do",
                                  help_text="Unchecked: the key acts with your own access in this account. "
                                            "Checked: only the categories chosen below, at most at that level.")

    def __init__(self, *args, ceiling: Matrix, **kwargs):
        super().__init__(*args, **kwargs)
        self.ceiling = ceiling
        for category in CATEGORIES:
            top = min(ceiling.get(category.key, Level.NONE), category.top)
            choices = [(lvl.name.lower(), lvl.label) for lvl in category.levels if lvl <= top]
            self.fields[f"scope_{category.key}"] = forms.ChoiceField(label=category.label, choices=choices,
                                                                     initial="none", required=False)

    def scope_rows(self):
        return [self[f"scope_{c.key}"] for c in CATEGORIES]

    @property
    def scopes(self) -> dict[str, str]:
        if not self.cleaned_data.get("restrict"):
            return {}
        return {c.key: self.cleaned_data[f"scope_{c.key}"] for c in CATEGORIES
                if self.cleaned_data.get(f"scope_{c.key}") not in (None, "", "none")}


class WebhookForm(forms.Form):
    name = forms.CharField(max_length=100)
    url = forms.URLField(max_length=500, label="URL", assume_scheme="https",
                         help_text="An https:// address that accepts POST requests.")
    events = forms.MultipleChoiceField(choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple)
    agents = forms.ModelMultipleChoiceField(queryset=None, required=False,
                                            help_text="None chosen: every agent of this account.")
    is_active = forms.BooleanField(required=False, initial=True, label="Active",
                                   help_text="It sends only while the people who set its address and its secret "
                                             "manage developer tools here. Turning it on makes you answer for "
                                             "both; so does a new address.")

    def __init__(self, *args, account, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["agents"].queryset = Agent.objects.in_account(account).order_by("name")
