"""Forms of the billing-transfer wizard and of the customer's acceptance. Each step is validated on
the server; the service checks everything again when the transfer starts."""

import datetime

from django import forms
from django.utils import timezone

from members.forms import EmailAddressField

from .models import BillingTransfer, Plan

NEW = "new"


class OwnerStep(forms.Form):
    """1. Who will own and pay for the account: one of its own people, or a new email (invited as Owner)."""

    owner = forms.ChoiceField(label="Billing owner", widget=forms.RadioSelect)
    email = EmailAddressField(label="New person's email", required=False,
                            help_text="They get a link to sign up, review the transfer and accept it.")

    def __init__(self, *args, people=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].choices = [*((str(u.pk), f"{u.display_name} <{u.email}>") for u in people),
                                        (NEW, "Someone new (by email)")]
        self.people = {str(u.pk): u for u in people}

    def clean(self):
        cleaned = super().clean()
        owner = cleaned.get("owner")
        if owner == NEW and not cleaned.get("email"):
            self.add_error("email", "Enter the email address of the person who will own the account.")
        if owner and owner != NEW:
            cleaned["email"] = self.people[owner].email
        return cleaned


class PlanStep(forms.Form):
    """2. The plan after the transfer (the customer sees its prices) and the cut-over."""

    plan = forms.ModelChoiceField(queryset=Plan.objects.all(), widget=forms.RadioSelect, empty_label=None)
    cutover = forms.ChoiceField(choices=BillingTransfer.Cutover.choices, widget=forms.RadioSelect,
                                initial=BillingTransfer.Cutover.NOW, label="When it takes effect")

    def __init__(self, *args, account=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.account = account
        self.fields["plan"].label_from_instance = lambda p: (
            f"{p.name}: {p.monthly_price_cents / 100:.2f} a month, {p.included_minutes} minutes included, "
            f"then {p.overage_cents_per_minute / 100:.2f} a minute" + (", subaccounts" if p.allows_subaccounts else ""))

    def clean_plan(self):
        from .transfers import plan_refusal

        plan = self.cleaned_data["plan"]
        refusal = plan_refusal(self.account, plan) if self.account is not None else None
        if refusal:
            raise forms.ValidationError(refusal)
        return plan


class AccessStep(forms.Form):
    """3. Access after the transfer: keep agency access (who, until when) or none."""

    keep = forms.ChoiceField(label="Access after the transfer", widget=forms.RadioSelect, initial="keep", choices=[
        ("keep", "Keep agency access: the chosen people stay in as agency members"),
        ("none", "No access: the account's own people only"),
    ])
    people = forms.MultipleChoiceField(label="Who keeps access", required=False,
                                       widget=forms.CheckboxSelectMultiple)
    expires_on = forms.DateField(label="Agency access ends on (optional)", required=False,
                                 widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, people=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.people = {str(u.pk): u for u in people}
        self.fields["people"].choices = [(str(u.pk), f"{u.display_name} <{u.email}>") for u in people]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("keep") == "keep" and not cleaned.get("people"):
            self.add_error("people", "Choose at least one person, or keep no access.")
        day = cleaned.get("expires_on")
        if day is not None and day <= timezone.now().date():
            self.add_error("expires_on", "Choose a day after today.")
        return cleaned

    def chosen(self):
        data = self.cleaned_data
        if data.get("keep") != "keep":
            return False, [], None
        day = data.get("expires_on")
        expires = datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.UTC) if day else None
        return True, [self.people[pk] for pk in data.get("people", [])], expires


class ReviewStep(forms.Form):
    """4. Review, stated plainly; confirm."""

    confirm = forms.BooleanField(label="I have read what changes, and want to send this to the billing owner.")


class AcceptForm(forms.Form):
    """The customer's billing details (without Stripe: a billing contact) and their decision."""

    contact_name = forms.CharField(label="Billing contact name", max_length=150)
    contact_email = EmailAddressField(label="Billing contact email")


class AcceptSignupForm(AcceptForm):
    """For a billing owner without an account yet: who they are and a password, then the same."""

    name = forms.CharField(label="Your name", max_length=150)
    password = forms.CharField(label="Choose a password", widget=forms.PasswordInput(
        attrs={"autocomplete": "new-password"}))

    def __init__(self, *args, email, **kwargs):
        self.email = email
        super().__init__(*args, **kwargs)

    def clean(self):
        cleaned = super().clean()
        from members.forms import check_new_password

        check_new_password(self, email=self.email, name=cleaned.get("name", ""))
        return cleaned
