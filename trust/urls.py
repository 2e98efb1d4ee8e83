"""Trust Center of an account, under /a/<account id>/trust/."""

from django.urls import path

from . import request_views, views
from .models import DataRequest

app_name = "trust"

base = "a/<uuid:account_id>/trust/"
urlpatterns = [
    path(base, views.TrustCenterView.as_view(), name="index"),
    # Data requests
    path(f"{base}requests/", request_views.DataRequestListView.as_view(), name="requests"),
    path(f"{base}requests/export/", request_views.ContactRequestView.as_view(kind=DataRequest.Kind.CONTACT_EXPORT),
         name="request-export"),
    path(f"{base}requests/erasure/",
         request_views.ContactRequestView.as_view(kind=DataRequest.Kind.CONTACT_ERASURE), name="request-erasure"),
    path(f"{base}requests/<uuid:datarequest_id>/download/", request_views.DataRequestDownloadView.as_view(),
         name="request-download"),
    path(f"{base}my-data/", request_views.MyDataView.as_view(), name="my-data"),
]
