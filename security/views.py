from datetime import timedelta

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.utils import timezone
from django.views.generic import ListView

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


class ActivityView(LoginRequiredMixin, ListView):
    """The signed-in person's login activity over the last SECURITY_ACTIVITY_DAYS: sign-ins (and attempts on
    their address), password and email changes, factors added or removed. Only their own events."""

    template_name = "security/activity.html"
    paginate_by = 50

    def get_queryset(self):
        since = timezone.now() - timedelta(days=settings.SECURITY_ACTIVITY_DAYS)
        return (SecurityEvent.objects.filter(user=self.request.user, created_at__gte=since)
                .select_related("by").order_by("-created_at", "-pk"))

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "days": settings.SECURITY_ACTIVITY_DAYS}
