import time

from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from accounts.access import access_or_404
from accounts.audit import audit

from .activity import event_record
from .models import SecurityEvent, SupportAccess
from .policy import agency_policy, effective_policy, mfa_requirement
from .sessions import (
    ACTIVE_AT_KEY,
    IDLE_LIMIT_KEY,
    LOGIN_AT_KEY,
    SEEN_KEY,
    SESSIONS_ENDED_KEY,
    end_other_sessions,
    session_seen,
)

SECOND_FACTORS = [Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN]


class SessionActivityMiddleware:
    """Keeps the session list's "last activity" current at no cost per request: one write at most every
    few minutes per session (allauth's own tracking writes on every request). Notes the session's own last
    activity too, at most once per ``SESSION_IDLE_RESOLUTION_SECONDS``, for accounts' idle timeouts; the
    previous value is left on the request (``security_last_active_at``) for ``AccountPolicyMiddleware``.

    A session that has opened an account with an idle timeout keeps the strictest such timeout
    (``IDLE_LIMIT_KEY``): a request after that long without activity ends the session here, before the
    activity is noted, whatever page it asks for. Otherwise any page outside an account (the brand link to
    home, the profile, the switcher, an account without the policy) would restart the clock and the account's
    next page would find a fresh "last active" (found by a hostile review)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.security_last_active_at = None
        if request.user.is_authenticated and request.session.session_key:
            now = time.time()
            session = request.session
            active = session.get(ACTIVE_AT_KEY)
            request.security_last_active_at = active
            limit = session.get(IDLE_LIMIT_KEY)
            if limit and active is not None and now - active > limit:
                return end_session(request, f"Your session ended after {limit // 60} minutes without activity, "
                                            "as an account you work in requires.", "idle")
            if LOGIN_AT_KEY not in session:  # signed in before sessions recorded it: count from now
                session[LOGIN_AT_KEY] = int(now)
            if active is None or now - active >= settings.SESSION_IDLE_RESOLUTION_SECONDS:
                session[ACTIVE_AT_KEY] = int(now)
            if now - session.get(SEEN_KEY, 0) >= settings.SESSION_ACTIVITY_INTERVAL_SECONDS:
                session_seen(request)
        return self.get_response(request)


def end_session(request, problem: str, where: str):
    """Sign the session out for a security policy (recorded as a security event), back to the sign-in page."""
    event_record(kind=SecurityEvent.Kind.SESSION_EXPIRED_BY_POLICY, request=request, user=request.user,
                 detail=f"{problem} ({where})")
    path = request.get_full_path()
    logout(request)
    messages.info(request, problem)
    if _is_htmx(request):
        return _redirect(request, reverse("login"))
    return redirect_to_login(path)


def _is_htmx(request) -> bool:
    """A fragment request, also before HtmxMiddleware has run (SessionActivityMiddleware sits above it)."""
    return getattr(request, "htmx", False) or request.headers.get("HX-Request") == "true"


def _redirect(request, url: str):
    if _is_htmx(request):  # a fragment request: have htmx load the whole page
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


class AccountPolicyMiddleware:
    """Applies the security policy of the account in the URL (``account_id``), the strictest of its own and
    its ancestors' (``security.policy``), before the view runs: sessions idle too long or signed in too long
    ago end; a person who must have a second factor and has none sees a banner before the deadline, and after
    it is sent to set one up (their other sessions end once). Platform staff here through support access are
    audited on every request and kept read-only when that is what the Owner approved. Costs no query of its
    own on an account page (the lineage's policies and support windows came with the lineage when the person's
    access was resolved, once and cached for the view), only one for the person's factors where two-factor is
    required of them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        account_id = view_kwargs.get("account_id")
        if account_id is None or not request.user.is_authenticated:
            return None
        try:
            access = access_or_404(request.user, account_id)
        except Http404:
            return None  # the view answers (404, or home when it was the last account)
        if access.is_locked_out:
            return None
        policy = request.security_policy = effective_policy(access.account, access.ancestors)
        if access.is_support:
            self._support_request(request, access)
        # here as an agency user: the agency's own policy binds its people in its clients' accounts too
        agency = agency_policy(access)
        if not policy.policies and agency is None:
            return None
        times = {"now": time.time(), "login_at": request.session.get(LOGIN_AT_KEY),
                 "last_active_at": request.security_last_active_at}
        problem = policy.session_problem(**times) or (agency.session_problem(**times) if agency else None)
        if problem:
            return end_session(request, problem, access.account.name)
        for idle in (policy.idle_timeout, agency.policy.idle_timeout if agency else None):
            if idle:  # from now on this session's idle clock holds everywhere (SessionActivityMiddleware)
                seconds = idle.value * 60
                if seconds < request.session.get(IDLE_LIMIT_KEY, seconds + 1):
                    request.session[IDLE_LIMIT_KEY] = seconds
        requirement = mfa_requirement(access, policy, agency)
        if requirement is None or is_mfa_enabled(request.user, SECOND_FACTORS):
            return None
        if not requirement.is_due():
            request.security_notice = requirement
            return None
        # (named: the URL's account, or the person's own agency, never an account above they may not reach: R6)
        by_agency = agency is not None and requirement.source.pk == agency.agency.pk
        name = agency.agency.name if by_agency else access.account.name
        if not request.session.get(SESSIONS_ENDED_KEY):
            request.session[SESSIONS_ENDED_KEY] = True
            ended = end_other_sessions(request)
            if ended:
                event_record(kind=SecurityEvent.Kind.SESSIONS_ENDED_BY_POLICY, request=request, user=request.user,
                             detail=f"{ended} other session(s): {name} requires two-factor")
        who = (f"{name} requires two-factor authentication of its people, in its clients' accounts too" if by_agency
               else f"{name} requires two-factor authentication")
        messages.warning(request, f"{who}. Set up an authenticator app or a passkey to continue.")
        return _redirect(request, reverse("mfa_index"))

    @staticmethod
    def _support_request(request, access) -> None:
        """Platform staff here through support access: every request is audited as support, and read-only
        access changes nothing, whatever a view would allow (PermissionDenied: a 403)."""
        refused = access.support.level == SupportAccess.Level.READ and request.method not in ("GET", "HEAD", "OPTIONS")
        audit(account=access.account, actor=request.user, request=request, action="support.request",
              summary=f"{request.method} {request.path}{' (refused: read-only)' if refused else ''}"[:255],
              via_support=access.support.get_level_display())
        if refused:
            raise PermissionDenied("Read-only support access changes nothing in this account.")
