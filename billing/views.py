from django.views.generic import TemplateView

from accounts.mixins import AccountViewMixin
from accounts.models import Account

from .selectors import minutes_used_in_subtrees, plan_for


class BillingOverviewView(AccountViewMixin, TemplateView):
    """Settings → Billing: the plan and this period's minutes. A subaccount on parent billing
    sees its own usage, never the parent's invoice or prices."""

    permission_required = "view_billing"
    template_name = "billing/overview.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        account = self.account
        ctx["plan"] = plan_for(account) if not account.is_subaccount else None
        ctx["payer"] = Account.objects.get(path=account.root_path) if account.is_subaccount else account
        ctx["minutes_used"] = minutes_used_in_subtrees([account])[account.pk]
        return ctx
