"""What a session remembers about itself for security: when it signed in, its last activity, when it was
last written to allauth's session list. Times are UNIX seconds."""

import time

from allauth.usersessions.models import UserSession

SEEN_KEY = "_security_seen_at"
LOGIN_AT_KEY = "_security_login_at"  # when this session signed in (UNIX seconds)
ACTIVE_AT_KEY = "_security_active_at"  # this session's last request, to SESSION_IDLE_RESOLUTION_SECONDS
SESSIONS_ENDED_KEY = "_security_policy_ended_others"


def session_seen(request) -> None:
    """Records this session (browser, IP, last activity) in allauth's session list, and notes when, in the
    session itself, so the next write is due only after ``SESSION_ACTIVITY_INTERVAL_SECONDS``."""
    if request.META.get("REMOTE_ADDR") or request.META.get("HTTP_X_FORWARDED_FOR"):
        UserSession.objects.create_from_request(request)
    request.session[SEEN_KEY] = int(time.time())


def session_started(request) -> None:
    """A sign-in: the session's login time (for an account's session lifetime) and its first activity."""
    now = int(time.time())
    request.session[LOGIN_AT_KEY] = now
    request.session[ACTIVE_AT_KEY] = now
    session_seen(request)


def end_other_sessions(request) -> int:
    """Signs the person out everywhere but here (allauth's session list); returns how many ended."""
    others = UserSession.objects.filter(user=request.user).exclude(session_key=request.session.session_key)
    ended = 0
    for s in others:
        s.end()
        ended += 1
    return ended
