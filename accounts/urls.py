from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("a/<uuid:account_id>/", views.DashboardView.as_view(), name="dashboard"),
    path("a/<uuid:account_id>/settings/", views.AccountSettingsView.as_view(), name="settings"),
    path("switcher/", views.SwitcherView.as_view(), name="switcher"),
    path("switch/", views.switch, name="switch"),
    path("new-account/", views.AccountCreateView.as_view(), name="create"),
]
