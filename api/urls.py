from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import views

app_name = "api"

A = "accounts/<uuid:account_id>/"

urlpatterns = [
    path("accounts/current", views.CurrentAccountView.as_view(), name="account-current"),
    path(A[:-1], views.AccountView.as_view(), name="account-detail"),
    path(f"{A}subaccounts", views.SubaccountListView.as_view(), name="subaccount-list"),
    path(f"{A}subaccounts/<uuid:subaccount_id>", views.SubaccountDetailView.as_view(), name="subaccount-detail"),
    path(f"{A}subaccounts/<uuid:subaccount_id>/suspend", views.SubaccountStatusView.as_view(suspended=True),
         name="subaccount-suspend"),
    path(f"{A}subaccounts/<uuid:subaccount_id>/reactivate", views.SubaccountStatusView.as_view(suspended=False),
         name="subaccount-reactivate"),
    path(f"{A}subaccounts/<uuid:subaccount_id>/billing-transfers", views.BillingTransferView.as_view(),
         name="billing-transfer-list"),
    path(f"{A}subaccounts/<uuid:subaccount_id>/billing-transfers/<uuid:transfer_id>",
         views.BillingTransferDetailView.as_view(), name="billing-transfer-detail"),
    path(f"{A}subaccounts/<uuid:subaccount_id>/billing-transfers/<uuid:transfer_id>/cancel",
         views.BillingTransferCancelView.as_view(), name="billing-transfer-cancel"),
    path(f"{A}members", views.MemberListView.as_view(), name="member-list"),
    path(f"{A}members/<uuid:membership_id>", views.MemberDetailView.as_view(), name="member-detail"),
    path(f"{A}invitations", views.InvitationListView.as_view(), name="invitation-list"),
    path(f"{A}invitations/<uuid:invitation_id>", views.InvitationDetailView.as_view(), name="invitation-detail"),
    path(f"{A}invitations/<uuid:invitation_id>/revoke", views.InvitationActionView.as_view(action="revoke"),
         name="invitation-revoke"),
    path(f"{A}invitations/<uuid:invitation_id>/resend", views.InvitationActionView.as_view(action="resend"),
         name="invitation-resend"),
    path(f"{A}agents", views.AgentListView.as_view(), name="agent-list"),
    path(f"{A}agents/<uuid:object_id>", views.AgentDetailView.as_view(), name="agent-detail"),
    path(f"{A}contacts", views.ContactListView.as_view(), name="contact-list"),
    path(f"{A}contacts/<uuid:object_id>", views.ContactDetailView.as_view(), name="contact-detail"),
    path(f"{A}conversations", views.ConversationListView.as_view(), name="conversation-list"),
    path(f"{A}conversations/<uuid:object_id>", views.ConversationDetailView.as_view(), name="conversation-detail"),
    path(f"{A}usage", views.UsageView.as_view(), name="usage"),
    path(f"{A}invoices", views.InvoiceListView.as_view(), name="invoice-list"),
    path(f"{A}invoices/<uuid:invoice_id>", views.InvoiceDetailView.as_view(), name="invoice-detail"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI from drf-spectacular-sidecar's vendored files; its init script is a separate request (CSP).
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema", template_name="api/swagger_ui.html"),
         name="docs"),
    # Last: any other path (unknown, or an id that is not a UUID) gets the API's error body, not the site's page.
    re_path(r"", views.not_found, name="not-found"),
]
