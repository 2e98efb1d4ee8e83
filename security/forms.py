from allauth.account.forms import LoginForm as AllauthLoginForm
from django import forms


class LoginForm(AllauthLoginForm):
    """allauth's sign-in form, its address field taking any text: an address that is not one simply signs
    nobody in, and every stored address, whichever rule it was accepted under (a UTF-8 local part, which
    Django's email validator refuses), can sign in."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["login"] = forms.CharField(
            label="Email", max_length=254,
            widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}))
        self.order_fields(["login", "password", "remember"])
