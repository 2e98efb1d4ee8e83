"""Trust Center of an account, under /a/<account id>/trust/, and the public trust pages at /trust/<slug>/."""

from django.urls import path

from . import public_views, retention_views, views

app_name = "trust"

base = "a/<uuid:account_id>/trust/"
urlpatterns = [
    path(base, views.TrustCenterView.as_view(), name="index"),
    path(base + "retention/", retention_views.RetentionView.as_view(), name="retention"),
    path(base + "public/", public_views.PublicPageSettingsView.as_view(), name="public-settings"),
    # Public, no sign-in: an account's published trust page (not a tenant page: its slug is the account's
    # public address, tests/trust/test_public.py).
    path("trust/<slug:slug>/", public_views.public_page, name="public-page"),
]
