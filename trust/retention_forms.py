from django import forms

from .models import ANONYMISABLE, DATA_TYPE_HELP, DataType, ExpiryAction, Period, allowed_periods
from .retention import Choice

FOLLOW = "follow"


class RetentionForm(forms.Form):
    """One row per data type: this account's own period (or follow the account above), the action on expiry
    where the type can be anonymised, and whether subaccounts are bound by it. Types an account above locked
    are shown disabled."""

    def __init__(self, *args, effective, is_root: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.rows = []
        follow_label = "Not set (keep forever)" if is_root else "Follow the account above"
        for data_type in DataType.values:
            rule, own = effective[data_type], effective.own.get(data_type)
            locked = rule.locked_by is not None
            period = forms.ChoiceField(
                label=DataType(data_type).label, help_text=DATA_TYPE_HELP[data_type], disabled=locked,
                choices=[(FOLLOW, follow_label), *((p, Period(p).label) for p in allowed_periods(data_type))],
                initial=own.period if own else FOLLOW)
            self.fields[f"{data_type}_period"] = period
            if data_type in ANONYMISABLE:
                self.fields[f"{data_type}_action"] = forms.ChoiceField(
                    label="On expiry", choices=ExpiryAction.choices, disabled=locked,
                    initial=own.action if own else ExpiryAction.DELETE)
            self.fields[f"{data_type}_locked"] = forms.BooleanField(
                label="Lock for subaccounts", required=False, disabled=locked, initial=own.is_locked if own else False)
            self.rows.append({"type": data_type, "rule": rule, "locked": locked,
                              "period": self[f"{data_type}_period"],
                              "action": self[f"{data_type}_action"] if data_type in ANONYMISABLE else None,
                              "lock": self[f"{data_type}_locked"]})

    def choices(self) -> dict[str, Choice | None]:
        out = {}
        for data_type in DataType.values:
            period = self.cleaned_data[f"{data_type}_period"]
            if period == FOLLOW:
                out[data_type] = None
                continue
            action = self.cleaned_data.get(f"{data_type}_action") or ExpiryAction.DELETE
            out[data_type] = Choice(period, action, bool(self.cleaned_data.get(f"{data_type}_locked")))
        return out
