"""Settings → Security of an account (its security policy), under /a/<account id>/."""

from django.urls import path

from . import views

app_name = "security"

base = "a/<uuid:account_id>/settings/security/"
urlpatterns = [
    path(base, views.SecurityPolicyView.as_view(), name="policy"),
    path(f"{base}members/<uuid:membership_id>/reset-second-factor/", views.MfaResetView.as_view(),
         name="mfa-reset"),
    path("a/<uuid:account_id>/settings/support/", views.SupportAccessView.as_view(), name="support"),
]
