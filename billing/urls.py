from django.urls import path

from . import transfer_views, views

app_name = "billing"

base = "a/<uuid:account_id>/billing/"
urlpatterns = [
    path(base, views.BillingOverviewView.as_view(), name="overview"),
    path(f"{base}usage/", views.UsageView.as_view(), name="usage"),
    path(f"{base}current.csv", views.CurrentStatementCsvView.as_view(), name="current-csv"),
    path(f"{base}plans/", views.PlansView.as_view(), name="plans"),
    path(f"{base}plans/change/", views.PlanChangeView.as_view(), name="plan-change"),
    path(f"{base}plans-scheduled/cancel/", views.PlanChangeCancelView.as_view(), name="plan-change-cancel"),
    path(f"{base}invoices/", views.InvoiceListView.as_view(), name="invoice-list"),
    path(f"{base}invoices/<uuid:invoice_id>/", views.InvoiceDetailView.as_view(), name="invoice-detail"),
    path(f"{base}stripe/setup/", views.StripeSetupView.as_view(), name="stripe-setup"),
    path(f"{base}stripe/payment-method/", views.PaymentMethodView.as_view(), name="payment-method"),
    path(f"{base}invoices/<uuid:invoice_id>/send/", views.InvoiceSendView.as_view(), name="invoice-send"),
    path("a/<uuid:account_id>/subaccounts/<uuid:sub_id>/transfer/", transfer_views.TransferWizardView.as_view(),
         name="transfer-start"),
    path("a/<uuid:account_id>/subaccounts/<uuid:sub_id>/transfer/<uuid:transfer_id>/cancel/",
         transfer_views.TransferCancelView.as_view(), name="transfer-cancel"),
    path("billing-transfer/<str:token>/", transfer_views.transfer_accept, name="transfer-accept"),
]
