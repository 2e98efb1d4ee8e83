from django.contrib import messages
from django.contrib.auth import login
from django.shortcuts import redirect
from django.views.generic import FormView

from .forms import SignupForm
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
