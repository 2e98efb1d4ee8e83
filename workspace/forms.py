from django import forms
from django.utils import timezone

from .models import Agent, Contact, Conversation


class AgentForm(forms.ModelForm):
    class Meta:
        model = Agent
        fields = ["name", "description", "language", "status"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}


class ContactForm(forms.ModelForm):
    class Meta:
        model = Contact
        fields = ["name", "phone", "email"]
        help_texts = {"phone": "International format, e.g. +14155550123. A phone number or an email is needed."}


class ConversationForm(forms.ModelForm):
    """Recording a conversation by hand (the platform records real calls the same way)."""

    started_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                                     help_text="In UTC.")
    duration_seconds = forms.IntegerField(min_value=1, max_value=6 * 3600, label="Duration (seconds)")

    class Meta:
        model = Conversation
        fields = ["agent", "contact", "direction", "started_at", "duration_seconds", "summary"]
        widgets = {"summary": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, account, **kwargs):
        super().__init__(*args, **kwargs)
        # Only this account's agents and contacts can be chosen (another tenant's id is "not a valid choice").
        self.fields["agent"].queryset = Agent.objects.in_account(account)
        self.fields["contact"].queryset = Contact.objects.in_account(account)
        self.fields["started_at"].initial = timezone.now().replace(second=0, microsecond=0)

    def clean_started_at(self):
        value = self.cleaned_data["started_at"]
        if value > timezone.now():
            raise forms.ValidationError("A conversation cannot start in the future.")
        return value


class ConversationEditForm(forms.ModelForm):
    class Meta:
        model = Conversation
        fields = ["direction", "summary"]
        widgets = {"summary": forms.Textarea(attrs={"rows": 4})}
