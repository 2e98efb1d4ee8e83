from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from accounts.models import NAME_MAX_LENGTH
from accounts.services import clean_account_name

from .models import User, UserManager


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autofocus": True,
                                                                          "autocomplete": "email"}))


class SignupForm(forms.Form):
    name = forms.CharField(label="Your name", max_length=150)
    email = forms.EmailField(label="Work email")
    password = forms.CharField(label="Password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
                               help_text=password_validation.password_validators_help_text_html())
    account_name = forms.CharField(label="Company or account name", max_length=NAME_MAX_LENGTH)

    def clean_email(self):
        email = UserManager.normalize(self.cleaned_data["email"])
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this email already exists. Sign in or reset your password.")
        return email

    def clean_account_name(self):
        try:
            return clean_account_name(self.cleaned_data["account_name"], parent=None)
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from exc

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password"):
            candidate = User(email=cleaned.get("email", ""), name=cleaned.get("name", ""))
            try:
                password_validation.validate_password(cleaned["password"], candidate)
            except ValidationError as exc:
                self.add_error("password", exc)
        return cleaned
