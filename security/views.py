from django.contrib.auth import views as auth_views

from . import throttle
from .activity import event_record
from .models import SecurityEvent


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's reset-by-email link; a successful reset is recorded and lifts the address's sign-in lockout
    (whoever reads the mailbox has proved more than a password would)."""

    def form_valid(self, form):
        response = super().form_valid(form)
        throttle.clear(email=self.user.email)
        event_record(kind=SecurityEvent.Kind.PASSWORD_RESET, request=self.request, user=self.user)
        return response
