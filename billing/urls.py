from django.urls import path

from . import views

app_name = "billing"

urlpatterns = [
    path("a/<uuid:account_id>/billing/", views.BillingOverviewView.as_view(), name="overview"),
]
