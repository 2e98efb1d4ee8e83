"""Trust Center of an account, under /a/<account id>/trust/, and the public trust pages at /trust/<slug>/."""

from django.urls import path

from . import public_views, request_views, retention_views, views
from .models import DataRequest

app_name = "trust"

base = "a/<uuid:account_id>/trust/"
urlpatterns = [
    path(base, views.TrustCenterView.as_view(), name="index"),
    path(base + "retention/", retention_views.RetentionView.as_view(), name="retention"),
    path(base + "public/", public_views.PublicPageSettingsView.as_view(), name="public-settings"),
    # Data requests
    path(f"{base}requests/", request_views.DataRequestListView.as_view(), name="requests"),
    path(f"{base}requests/export/", request_views.ContactRequestView.as_view(kind=DataRequest.Kind.CONTACT_EXPORT),
         name="request-export"),
    path(f"{base}requests/erasure/",
         request_views.ContactRequestView.as_view(kind=DataRequest.Kind.CONTACT_ERASURE), name="request-erasure"),
    path(f"{base}requests/<uuid:datarequest_id>/download/", request_views.DataRequestDownloadView.as_view(),
         name="request-download"),
    path(f"{base}my-data/", request_views.MyDataView.as_view(), name="my-data"),
    # Public, no sign-in: an account's published trust page (not a tenant page: its slug is the account's
    # public address, tests/trust/test_public.py).
    path("trust/<slug:slug>/", public_views.public_page, name="public-page"),
]
