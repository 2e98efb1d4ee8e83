from django.views.generic import TemplateView

from accounts.mixins import AccountViewMixin

from .models import PublicTrustPage


class TrustCenterView(AccountViewMixin, TemplateView):
    """Trust Center → its sections (data retention, data requests, public trust page)."""

    template_name = "trust/index.html"
    permission_required = "view_trust_center"

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            trust_page=PublicTrustPage.objects.filter(account=self.account).only("is_enabled").first(), **kwargs)
