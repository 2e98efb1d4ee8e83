from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from accounts.models import NAME_MAX_LENGTH
from accounts.services import clean_account_name

from .emails import MAX_LENGTH as EMAIL_MAX_LENGTH
from .emails import clean_email
from .models import User
from .preferences import time_zone_choices


def clean_new_account_name(value: str) -> str:
    """A new independent account's name, with the service's rule and message."""
    try:
        return clean_account_name(value, parent=None)
    except ValidationError as exc:
        raise forms.ValidationError(exc.messages) from exc


def check_new_password(form: forms.Form, *, email: str, name: str) -> None:
    """Run the password validators against the person being created; errors land on the field."""
    password = form.cleaned_data.get("password")
    if password:
        try:
            password_validation.validate_password(password, User(email=email, name=name))
        except ValidationError as exc:
            form.add_error("password", exc)


class EmailAddressField(forms.EmailField):
    """An email address checked by ``members.emails.clean_email`` (R9), its message at the field.
    Django's own validator is left out: it refuses the UTF-8 local parts clean_email accepts."""

    default_validators = []

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", EMAIL_MAX_LENGTH)
        super().__init__(**kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        return value if value in self.empty_values else clean_email(value)


class EmailAuthenticationForm(AuthenticationForm):
    # Any text: an address that is not one simply signs nobody in, and every stored address,
    # whichever rule it was accepted under (a UTF-8 local part, say), can sign in.
    username = forms.CharField(label="Email", widget=forms.EmailInput(attrs={"autofocus": True,
                                                                         "autocomplete": "email"}))


class SignupForm(forms.Form):
    name = forms.CharField(label="Your name", max_length=150)
    email = EmailAddressField(label="Work email")
    password = forms.CharField(label="Password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
                               help_text=password_validation.password_validators_help_text_html())
    account_name = forms.CharField(label="Company or account name", max_length=NAME_MAX_LENGTH)

    def clean_email(self):
        email = self.cleaned_data["email"]  # normalised by clean_email
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this email already exists. Sign in or reset your password.")
        return email

    def clean_account_name(self):
        return clean_new_account_name(self.cleaned_data["account_name"])

    def clean(self):
        cleaned = super().clean()
        check_new_password(self, email=cleaned.get("email", ""), name=cleaned.get("name", ""))
        return cleaned


def _role_choices(roles):
    return [(r.id, r.name) for r in roles]


class InviteForm(forms.Form):
    email = EmailAddressField(label="Email", widget=forms.EmailInput(attrs={"placeholder": "name@company.com"}))
    role = forms.ChoiceField(label="Role")

    def __init__(self, *args, roles, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = _role_choices(roles)
        self.fields["role"].initial = "member"
        if any(r.id == "agency_admin" for r in roles):
            self.fields["role"].help_text = ("Agency Admin invites the person as an agency user "
                                             "(everything but billing).")


class BulkInviteForm(forms.Form):
    emails = forms.CharField(label="Email addresses", widget=forms.Textarea(attrs={"rows": 8}),
                             help_text="One per line (commas work too). Everyone gets the same role. "
                                       "Nothing is sent unless every line is valid.")
    role = forms.ChoiceField(label="Role")

    def __init__(self, *args, roles, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = _role_choices(roles)
        self.fields["role"].initial = "member"


class RoleForm(forms.Form):
    role = forms.ChoiceField()

    def __init__(self, *args, roles, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = _role_choices(roles)


class TransferOwnershipForm(forms.Form):
    member = forms.ModelChoiceField(queryset=None, label="New Owner", empty_label="Choose a member")
    confirm = forms.BooleanField(label="I understand that I will become an Admin of this account.")

    def __init__(self, *args, candidates, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["member"].queryset = candidates
        self.fields["member"].label_from_instance = (
            lambda m: f"{m.user.display_name} <{m.user.email}> ({m.get_role_display()})"
        )


class InvitationSignupForm(forms.Form):
    name = forms.CharField(label="Your name", max_length=150)
    password = forms.CharField(label="Choose a password",
                               widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
                               help_text=password_validation.password_validators_help_text_html())

    def __init__(self, *args, email, agency=False, **kwargs):
        self.email = email
        super().__init__(*args, **kwargs)
        if agency:
            self.fields["agency_name"] = forms.CharField(
                label="Your agency's name", max_length=NAME_MAX_LENGTH,
                help_text="We create your agency's own account (you own it); the client sees you as its user.")

    def clean_agency_name(self):
        return clean_new_account_name(self.cleaned_data["agency_name"])

    def clean(self):
        cleaned = super().clean()
        check_new_password(self, email=self.email, name=cleaned.get("name", ""))
        return cleaned


class AgencyChoiceForm(forms.Form):
    agency = forms.ModelChoiceField(queryset=None, label="Your agency's account", empty_label=None,
                                    help_text="The client sees you as a user of this agency.")

    def __init__(self, *args, agencies, **kwargs):
        from accounts.models import Account

        super().__init__(*args, **kwargs)
        self.fields["agency"].queryset = Account.objects.filter(pk__in=[a.pk for a in agencies]).order_by("name")


class ProfileForm(forms.ModelForm):
    time_zone = forms.ChoiceField(label="Time zone", help_text="Every time in the console is shown in it.")

    class Meta:
        model = User
        fields = ["name", "time_zone", "date_format"]
        labels = {"name": "Your name", "date_format": "Date format"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = time_zone_choices()
