from allauth.account.forms import LoginForm as AllauthLoginForm
from django import forms
from django.core.exceptions import ValidationError

from accounts.models import Account
from accounts.params import uuid_or_none
from members.emails import clean_email

from .models import SecurityPolicy, SupportAccess


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


MAX_DOMAINS = 50


class SecurityPolicyForm(forms.Form):
    """Settings → Security: the account's own policy (what applies is the strictest of it and its ancestors')."""

    require_mfa = forms.ChoiceField(label="Require two-factor authentication", choices=SecurityPolicy.MfaScope.choices,
                                    widget=forms.RadioSelect)
    mfa_deadline = forms.DateTimeField(
        label="Deadline", required=False, input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Optional, in your time zone. Until then, people without a second factor see a reminder; "
                  "afterwards every page of this account sends them to set one up and their other sessions end. "
                  "Without a deadline it applies at once.")
    idle_timeout_minutes = forms.IntegerField(
        label="Sign out after inactivity (minutes)", required=False, min_value=5, max_value=60 * 24 * 30,
        help_text="Empty: no idle timeout. At least 5 minutes.")
    session_lifetime_hours = forms.IntegerField(
        label="Sign out after (hours since sign-in)", required=False, min_value=1, max_value=24 * 90,
        help_text="Empty: sessions last until they are signed out or expire.")
    allowed_email_domains = forms.CharField(
        label="Allowed email domains for invitations", required=False, widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line (subdomains included). Empty: any domain.")

    def clean_allowed_email_domains(self):
        domains = []
        text = self.cleaned_data["allowed_email_domains"]
        for line, raw in enumerate(text.replace(",", "\n").splitlines(), start=1):
            domain = raw.strip().lstrip("@").rstrip(".")
            if not domain:
                continue
            try:
                domain = clean_email(f"x@{domain}").rpartition("@")[2]
            except ValidationError as exc:
                raise forms.ValidationError(f"Line {line}: “{raw.strip()[:80]}” is not a domain "
                                            f"({' '.join(exc.messages)})") from exc
            domains.append(domain)
        if len(set(domains)) > MAX_DOMAINS:
            raise forms.ValidationError(f"At most {MAX_DOMAINS} domains.")
        return sorted(set(domains))

    def clean(self):
        data = super().clean()
        if data.get("require_mfa") == SecurityPolicy.MfaScope.NOBODY:
            data["mfa_deadline"] = None
        return data

    @staticmethod
    def initial_from(policy: SecurityPolicy | None) -> dict:
        if policy is None:
            return {"require_mfa": SecurityPolicy.MfaScope.NOBODY}
        return {"require_mfa": policy.require_mfa, "mfa_deadline": policy.mfa_deadline,
                "idle_timeout_minutes": policy.idle_timeout_minutes,
                "session_lifetime_hours": policy.session_lifetime_hours,
                "allowed_email_domains": "\n".join(policy.allowed_email_domains)}


class SupportRequestForm(forms.Form):
    """Platform staff ask for support access to one account (its id, as the admin shows it)."""

    account = forms.CharField(label="Account ID", help_text="The account's ID (Settings → Account, or the admin).")
    level = forms.ChoiceField(choices=SupportAccess.Level.choices, widget=forms.RadioSelect,
                              initial=SupportAccess.Level.READ)
    hours = forms.IntegerField(
        label="For how many hours", min_value=1, max_value=SupportAccess.MAX_HOURS, initial=4,
        help_text=f"At most {SupportAccess.MAX_HOURS}; the clock starts when the Owner approves.")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), min_length=10, max_length=500,
                             help_text="The Owner reads it before deciding; it is kept in the account's audit trail.")

    def clean_account(self):
        parsed = uuid_or_none(self.cleaned_data["account"].strip())
        account = Account.objects.filter(public_id=parsed).first() if parsed else None
        if account is None:
            raise forms.ValidationError("No account has this ID.")
        return account
