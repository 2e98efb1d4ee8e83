from django import forms

from .models import PublicTrustPage
from .public import SLUG_HELP


class ListField(forms.CharField):
    """One entry per line."""

    widget = forms.Textarea(attrs={"rows": 4})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        return [line.strip() for line in (value or "").splitlines() if line.strip()]


class PublicPageForm(forms.ModelForm):
    slug = forms.CharField(label="Address", max_length=50, help_text=SLUG_HELP)
    privacy_policy_url = forms.URLField(label="Privacy policy link", max_length=500, required=False,
                                        assume_scheme="https")
    terms_url = forms.URLField(label="Terms link", max_length=500, required=False, assume_scheme="https")
    subprocessors = ListField(required=False, help_text="One per line, e.g. “Stripe — payments”.")
    ai_providers = ListField(label="AI providers", required=False,
                             help_text="One per line, e.g. “OpenAI — language model”.")

    class Meta:
        model = PublicTrustPage
        fields = ["is_enabled", "slug", "company_name", "show_company_name", "privacy_policy_url", "terms_url",
                  "show_legal_links", "subprocessors", "show_subprocessors", "ai_providers", "show_ai_providers",
                  "show_retention", "security_contact", "show_security_contact", "show_last_updated"]
        labels = {"show_company_name": "Show the company name", "show_legal_links": "Show the privacy and terms links",
                  "show_subprocessors": "Show the subprocessors", "show_ai_providers": "Show the AI providers",
                  "show_retention": "Show the data retention summary (from the live policy)",
                  "show_security_contact": "Show the security contact",
                  "show_last_updated": "Show when the page last changed"}

    def clean_slug(self):
        return self.cleaned_data["slug"].strip().lower()

    def page_fields(self) -> dict:
        return {k: v for k, v in self.cleaned_data.items() if k != "slug"}
