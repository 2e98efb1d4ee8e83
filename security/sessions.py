"""What a session remembers about itself for security: when it signed in, its last activity, when it was
last written to allauth's session list. Times are UNIX seconds."""

import time

from allauth.usersessions.models import UserSession

SEEN_KEY = "_security_seen_at"
LOGIN_AT_KEY = "_security_login_at"  # when this session signed in (UNIX seconds)
ACTIVE_AT_KEY = "_security_active_at"  # this session's last request, to SESSION_IDLE_RESOLUTION_SECONDS
SESSIONS_ENDED_KEY = "_security_policy_ended_others"
# The strictest idle timeout (seconds) of the accounts this session has opened: it holds on every later request,
# wherever it goes, so a page outside an account (home, profile, the switcher) cannot restart the idle clock.
IDLE_LIMIT_KEY = "_security_idle_limit"


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


BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
            ("Chromium/", "Chromium"), ("Safari/", "Safari"))
SYSTEMS = (("iPhone", "iPhone"), ("iPad", "iPad"), ("Android", "Android"), ("CrOS", "ChromeOS"),
           ("Windows", "Windows"), ("Mac OS X", "macOS"), ("Macintosh", "macOS"), ("Linux", "Linux"))


def device_name(user_agent: str) -> str:
    """"Firefox on Linux", "Safari on iPhone": enough to recognise one's own devices (the raw string is kept
    for a title). The first match wins, in an order where Edge and Opera are not mistaken for Chrome."""
    agent = user_agent or ""
    browser = next((name for token, name in BROWSERS if token in agent), "")
    system = next((name for token, name in SYSTEMS if token in agent), "")
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or (agent[:40] if agent else "Unknown browser")


def sessions_of(request) -> list:
    """The person's live sessions (dead ones are purged from the list), this one first, then by last activity."""
    current = request.session.session_key
    sessions = UserSession.objects.purge_and_list(request.user)
    for s in sessions:
        s.device = device_name(s.user_agent)
        s.is_this_one = s.session_key == current
    return sorted(sessions, key=lambda s: (not s.is_this_one, -(s.last_seen_at or s.created_at).timestamp()))


def end_session(request, session_id) -> "UserSession | None":
    """Signs one of the person's other sessions out; None when there is no such session of theirs (another
    person's id, an ended one, or this very session, which "Sign out" ends instead)."""
    found = (UserSession.objects.filter(user=request.user, pk=session_id)
             .exclude(session_key=request.session.session_key).first())
    if found is not None:
        found.end()
    return found
