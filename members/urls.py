from django.urls import path

from .views import ProfileView, SignupView

# Sign-up stays ours (it creates the person's account); allauth reverses "account_signup".
urlpatterns = [
    path("signup/", SignupView.as_view(), name="signup"),
    path("signup/", SignupView.as_view(), name="account_signup"),
    path("profile/", ProfileView.as_view(), name="profile"),
]
