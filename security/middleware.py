import time

from allauth.usersessions.models import UserSession
from django.conf import settings

SEEN_KEY = "_security_seen_at"


def session_seen(request) -> None:
    """Records this session (browser, IP, last activity) in allauth's session list, and notes when, in the
    session itself, so the next write is due only after ``SESSION_ACTIVITY_INTERVAL_SECONDS``."""
    if request.META.get("REMOTE_ADDR") or request.META.get("HTTP_X_FORWARDED_FOR"):
        UserSession.objects.create_from_request(request)
    request.session[SEEN_KEY] = int(time.time())


class SessionActivityMiddleware:
    """Keeps the session list's "last activity" current at no cost per request: one write at most every
    few minutes per session (allauth's own tracking writes on every request)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated and request.session.session_key:
            seen = request.session.get(SEEN_KEY, 0)
            if time.time() - seen >= settings.SESSION_ACTIVITY_INTERVAL_SECONDS:
                session_seen(request)
        return self.get_response(request)
