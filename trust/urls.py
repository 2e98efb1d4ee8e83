"""Trust Center of an account, under /a/<account id>/trust/."""

from django.urls import path

from . import views

app_name = "trust"

base = "a/<uuid:account_id>/trust/"
urlpatterns = [
    path(base, views.TrustCenterView.as_view(), name="index"),
]
