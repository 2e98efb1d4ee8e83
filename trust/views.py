from django.views.generic import TemplateView

from accounts.mixins import AccountViewMixin


class TrustCenterView(AccountViewMixin, TemplateView):
    """Trust Center → its sections (data retention, data requests, public trust page)."""

    template_name = "trust/index.html"
    permission_required = "view_trust_center"
