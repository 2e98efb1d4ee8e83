from django import forms
from django.core.exceptions import ValidationError

from .models import NAME_MAX_LENGTH
from .services import clean_account_name


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
