from django import forms


class ContactRequestForm(forms.Form):
    subject = forms.CharField(label="Phone number or email", max_length=254,
                              help_text="The person's phone number in the international format (e.g. +14155550123) "
                                        "or their email address.")
    include_subaccounts = forms.BooleanField(
        required=False, label="Include subaccounts",
        help_text="Also the subaccounts below this one where you may manage the Trust Center.")

    def __init__(self, *args, has_subaccounts: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if not has_subaccounts:
            del self.fields["include_subaccounts"]
