"""Sign-in and the person's own sign-in settings under /accounts/ (sign-up is members.urls).

Sign-in, sign-out, re-authentication, email change and password change are django-allauth's views
(throttling, second factor, verification); sign-up, invitations and the password reset by email
stay ours. Each allauth view is listed by name (no wholesale include), so no second sign-up or reset
flow appears; the names allauth reverses (``account_*``) point at the same paths."""

from allauth.account import views as allauth_views
from django.contrib.auth import views as auth_views
from django.urls import include, path

from .views import ActivityView, PasswordResetConfirmView, SessionListView, StaffSupportView

urlpatterns = [
    path("login/", allauth_views.login, name="login"),
    path("login/", allauth_views.login, name="account_login"),
    path("logout/", allauth_views.logout, name="logout"),
    path("logout/", allauth_views.logout, name="account_logout"),
    path("inactive/", allauth_views.account_inactive, name="account_inactive"),
    path("reauthenticate/", allauth_views.reauthenticate, name="account_reauthenticate"),
    path("email/", allauth_views.email, name="account_email"),
    path("confirm-email/", allauth_views.email_verification_sent, name="account_email_verification_sent"),
    path("confirm-email/<str:key>/", allauth_views.confirm_email, name="account_confirm_email"),
    path("password/change/", allauth_views.password_change, name="account_change_password"),
    path("password/change/", allauth_views.password_change, name="password_change"),
    path("password/set/", allauth_views.password_set, name="account_set_password"),
    path("password-reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/", auth_views.PasswordResetView.as_view(), name="account_reset_password"),
    path("password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("reset/<uidb64>/<token>/", PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("activity/", ActivityView.as_view(), name="security-activity"),
    path("support-access/", StaffSupportView.as_view(), name="security-staff-support"),
    path("2fa/", include("allauth.mfa.urls")),
    path("sessions/", SessionListView.as_view(), name="usersessions_list"),  # ours: one session or all others
]
