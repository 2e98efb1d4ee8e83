from django.urls import path

from .views import SignupView

# Sign-up stays ours (it creates the person's account); allauth reverses "account_signup".
urlpatterns = [
    path("signup/", SignupView.as_view(), name="signup"),
    path("signup/", SignupView.as_view(), name="account_signup"),
]
