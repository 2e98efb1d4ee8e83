from allauth.mfa.utils import is_mfa_enabled
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.mixins import LoginRequiredMixin
from django.shortcuts import redirect
from django.urls import reverse_lazy
from django.views.generic import FormView, UpdateView

from .forms import ProfileForm, SignupForm
from .services import user_signup


class SignupView(FormView):
    template_name = "registration/signup.html"
    form_class = SignupForm

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            return redirect("home")
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form):
        data = form.cleaned_data
        user, account = user_signup(email=data["email"], name=data["name"], password=data["password"],
                                    account_name=data["account_name"], request=self.request)
        login(self.request, user, backend="django.contrib.auth.backends.ModelBackend")
        self.request.session["last_account"] = str(account.public_id)
        messages.success(self.request, f"Welcome! {account.name} is ready, and you are its Owner.")
        return redirect(account)


class ProfileView(LoginRequiredMixin, UpdateView):
    """The signed-in person's own profile (from the user menu): name, time zone, date format, and the way to
    their email, password, second factors, sessions and login activity. Only ever their own row."""

    template_name = "members/profile.html"
    form_class = ProfileForm
    success_url = reverse_lazy("profile")

    def get_object(self, queryset=None):
        return self.request.user

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "mfa_enabled": is_mfa_enabled(self.request.user)}

    def form_valid(self, form):
        messages.success(self.request, "Profile saved.")
        return super().form_valid(form)
