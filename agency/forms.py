import datetime
import re
import uuid

from django import forms
from django.utils import timezone

from accounts.models import Account

UUID_IN_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


class ExpiryField(forms.DateField):
    """A date (UTC, end of day) or blank for no expiry."""

    widget = forms.DateInput(attrs={"type": "date"})

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "Blank: until revoked. Access ends at the end of that day (UTC).")
        super().__init__(**kwargs)

    def clean(self, value):
        day = super().clean(value)
        if day is None:
            return None
        if day < timezone.now().date():
            raise forms.ValidationError("Choose today or a later date.")
        return datetime.datetime.combine(day, datetime.time(23, 59, 59), tzinfo=datetime.UTC)


class RequestAccessForm(forms.Form):
    client = forms.CharField(label="Client account ID or link",
                             help_text="The client finds it under Settings → Account ID, or sends you any link "
                                       "from their account.")
    expires_at = ExpiryField(label="Access until")
    note = forms.CharField(label="Message to the client", required=False, max_length=300,
                           widget=forms.Textarea(attrs={"rows": 2}))

    def clean_client(self):
        match = UUID_IN_TEXT.search(self.cleaned_data["client"])
        # Rule 5: one answer for an unknown id and for a subaccount's id (a subaccount is run by its parent),
        # so the form tells nothing about ids that are not independent clients.
        account = (Account.objects.filter(public_id=uuid.UUID(match.group(0)), depth=1).first() if match else None)
        if account is None:
            raise forms.ValidationError("No independent account has that ID. Check it with the client.")
        return account


class DecideForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("decline", "Decline")])
    expires_at = ExpiryField(label="Access until")


class GrantEditForm(forms.Form):
    expires_at = ExpiryField(label="Access until")


class AddAgencyMemberForm(forms.Form):
    membership = forms.ModelChoiceField(queryset=None, label="Person", empty_label="Choose someone")

    def __init__(self, *args, candidates, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["membership"].queryset = candidates
        self.fields["membership"].label_from_instance = lambda m: f"{m.user.display_name} <{m.user.email}>"


class BaselineScopeForm(forms.Form):
    scope = forms.ChoiceField(choices=[("new", "Only clients that enable access from now on"),
                                       ("existing", "Also apply to the listed clients whose agency access you govern "
                                                   "(the others decide their own)")],
                              widget=forms.RadioSelect, initial="new")
