from django.urls import path

from . import subaccount_views as sub
from . import views

app_name = "accounts"

urlpatterns = [
    path("a/<uuid:account_id>/", views.DashboardView.as_view(), name="dashboard"),
    path("a/<uuid:account_id>/settings/", views.AccountSettingsView.as_view(), name="settings"),
    path("a/<uuid:account_id>/first-steps/dismiss/", views.OnboardingDismissView.as_view(), name="onboarding-dismiss"),
    path("switcher/", views.SwitcherView.as_view(), name="switcher"),
    path("switch/", views.switch, name="switch"),
    path("new-account/", views.AccountCreateView.as_view(), name="create"),
    path("a/<uuid:account_id>/subaccounts/", sub.SubaccountListView.as_view(), name="subaccount-list"),
    path("a/<uuid:account_id>/subaccounts/new/", sub.SubaccountCreateView.as_view(), name="subaccount-create"),
    path("a/<uuid:account_id>/subaccounts/defaults/", sub.SubaccountDefaultsView.as_view(),
         name="subaccount-defaults"),
    path("a/<uuid:account_id>/subaccounts/<uuid:sub_id>/", sub.SubaccountOverviewView.as_view(),
         name="subaccount-overview"),
    path("a/<uuid:account_id>/subaccounts/<uuid:sub_id>/members/", sub.SubaccountMembersView.as_view(),
         name="subaccount-members"),
    path("a/<uuid:account_id>/subaccounts/<uuid:sub_id>/permissions/", sub.SubaccountPermissionsView.as_view(),
         name="subaccount-permissions"),
    path("a/<uuid:account_id>/subaccounts/<uuid:sub_id>/limits/", sub.SubaccountLimitsView.as_view(),
         name="subaccount-limits"),
    path("a/<uuid:account_id>/subaccounts/<uuid:sub_id>/billing/", sub.SubaccountBillingView.as_view(),
         name="subaccount-billing"),
    path("a/<uuid:account_id>/subaccounts/<uuid:sub_id>/status/", sub.SubaccountStatusView.as_view(),
         name="subaccount-status"),
    path("a/<uuid:account_id>/subaccounts/<uuid:sub_id>/move/", sub.SubaccountMoveView.as_view(),
         name="subaccount-move"),
    path("a/<uuid:account_id>/audit/", sub.AuditLogView.as_view(), name="audit-log"),
]
