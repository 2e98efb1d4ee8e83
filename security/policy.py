"""The security policy that applies in an account: the strictest of its own and every ancestor's.

One query for the whole lineage (``account__path IN`` the account's own path and its ancestors', computed
from the path without a query). Each rule remembers the account that imposes it, so the Settings → Security
page can say where it comes from (naming it only to readers who reach it: R6).

This module reads only accounts and its own models, so the services that enforce a policy (invitations in
``members``) can ask it without an import cycle.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from accounts.baked import Baked
from accounts.models import Account

from .models import SecurityPolicy, SupportAccess

MfaScope = SecurityPolicy.MfaScope
# "Owners and Admins": the roles that administer the account. Agency Admins run a client's account like its
# Admins and meet its policy like everyone else.
PRIVILEGED_ROLES = frozenset({"owner", "admin", "agency_admin"})
_SCOPE_RANK = {MfaScope.NOBODY: 0, MfaScope.ADMINS: 1, MfaScope.EVERYONE: 2}
# Every account page asks this (``security.middleware``): compiled once (``accounts.baked``).
_lineage_support = Baked(lambda lineage_ids, account_id: (
    SupportAccess.objects.active().filter(account_id__in=lineage_ids)
    .filter(Q(account_id=account_id) | Q(include_subaccounts=True))
    .order_by("-expires_at").values_list("account_id", "level", "expires_at")))


def support_window_annotations(*, here: bool) -> dict:
    """Annotations for an Account queryset: the level and end of the active support access that applies on each
    account row, the one ending last. ``here``: on the account in view (any of its own); otherwise on an ancestor
    of it (only access that includes subaccounts). Access resolution loads the lineage with them
    (``accounts.access``), so ``effective_policy`` needs no query of its own on an account page."""
    support = SupportAccess.objects.active().filter(account=OuterRef("pk"))
    if not here:
        support = support.filter(include_subaccounts=True)
    support = support.order_by("-expires_at")
    where = "here" if here else "above"
    return {f"support_level_{where}": Subquery(support.values("level")[:1]),
            f"support_until_{where}": Subquery(support.values("expires_at")[:1])}


@dataclass(frozen=True)
class Rule:
    """One rule of the effective policy and the account that imposes it."""

    value: object
    source: Account


@dataclass(frozen=True)
class MfaRequirement:
    """Two-factor as it applies to one person: required, and from when (None: at once)."""

    deadline: datetime | None
    source: Account

    def is_due(self, now: datetime | None = None) -> bool:
        return self.deadline is None or (now or timezone.now()) >= self.deadline


@dataclass(frozen=True)
class SupportWindow:
    """Platform support access active in an account (for the banner its people see)."""

    level: object
    until: datetime
    source: Account


@dataclass(frozen=True)
class EffectivePolicy:
    account: Account
    policies: tuple[SecurityPolicy, ...] = ()  # root first; only accounts that have one
    support: tuple[SupportWindow, ...] = ()  # active support access covering the account

    @property
    def own(self) -> SecurityPolicy | None:
        return next((p for p in self.policies if p.account_id == self.account.pk), None)

    def mfa_for_role(self, role: str) -> MfaRequirement | None:
        """The strictest two-factor requirement for someone holding ``role`` here: of the policies that cover
        the role, the earliest deadline (no deadline is the earliest of all: required at once)."""
        found = None
        for p in self.policies:
            if p.require_mfa == MfaScope.EVERYONE or (p.require_mfa == MfaScope.ADMINS and role in PRIVILEGED_ROLES):
                if found is None or _earlier(p.mfa_deadline, found.deadline):
                    found = MfaRequirement(p.mfa_deadline, p.account)
        return found

    @property
    def mfa_scope(self) -> Rule | None:
        """The widest scope required here, and who requires it."""
        best = None
        for p in self.policies:
            if _SCOPE_RANK[p.require_mfa] and (best is None or _SCOPE_RANK[p.require_mfa] > _SCOPE_RANK[best.value]):
                best = Rule(MfaScope(p.require_mfa), p.account)
        return best

    def _smallest(self, attr: str) -> Rule | None:
        best = None
        for p in self.policies:
            value = getattr(p, attr)
            if value and (best is None or value < best.value):
                best = Rule(value, p.account)
        return best

    @property
    def idle_timeout(self) -> Rule | None:
        """Minutes without a request after which a session is signed out here."""
        return self._smallest("idle_timeout_minutes")

    @property
    def session_lifetime(self) -> Rule | None:
        """Hours after sign-in after which a session is signed out here."""
        return self._smallest("session_lifetime_hours")

    @property
    def domain_rules(self) -> tuple[Rule, ...]:
        """Every lineage policy that limits invitations to some domains: an address must satisfy each."""
        return tuple(Rule(tuple(p.allowed_email_domains), p.account) for p in self.policies
                     if p.allowed_email_domains)

    def email_allowed(self, email: str) -> bool:
        domain = email.rpartition("@")[2].lower()
        return all(any(domain == d or domain.endswith("." + d) for d in rule.value) for rule in self.domain_rules)

    @property
    def is_empty(self) -> bool:
        return all(p.is_empty for p in self.policies)

    def session_problem(self, *, now: float, login_at: float | None, last_active_at: float | None,
                        who: str = "this account") -> str | None:
        """Why this session must end here (idle too long, or signed in too long ago), or None. Times are
        UNIX seconds, as the session stores them. ``who`` names whose policy it is in the message."""
        lifetime = self.session_lifetime
        if lifetime and login_at is not None and now - login_at > timedelta(hours=lifetime.value).total_seconds():
            return f"Your session ended: {who} signs people out {lifetime.value} hours after they sign in."
        idle = self.idle_timeout
        if idle and last_active_at is not None and now - last_active_at > timedelta(
                minutes=idle.value).total_seconds():
            return f"Your session ended after {idle.value} minutes without activity, as {who} requires."
        return None


@dataclass(frozen=True)
class AgencyPolicy:
    """An agency's own policy as it follows its people into its clients' accounts: its two-factor requirement (for
    the role they hold in the agency) and its session limits apply there too, beside the client's own."""

    policy: EffectivePolicy
    role: str  # the person's role in the agency

    @property
    def agency(self) -> Account:
        return self.policy.account

    def session_problem(self, **times) -> str | None:
        return self.policy.session_problem(**times, who=f"{self.agency.name}, your agency,")

    def mfa(self) -> MfaRequirement | None:
        return self.policy.mfa_for_role(self.role)


def agency_policy(access) -> AgencyPolicy | None:
    """For a person here as an agency user (``access.is_agency``): their agency's policy, when it has one that
    binds them; None otherwise. One query, for agency users only (an agency is a root: its policy is its own)."""
    if not access.is_agency:
        return None
    from members.models import Membership

    m = access.effective_membership
    role = Membership.objects.filter(account=OuterRef("pk"), user_id=m.user_id, is_agency=False).values("role")[:1]
    agency = (Account.objects.filter(pk=m.agency_account_id).select_related("security_policy")
              .annotate(agency_role=Subquery(role)).first())
    if agency is None or agency.agency_role is None or not _has_policy(agency) or agency.security_policy.is_empty:
        return None
    policy = agency.security_policy
    policy.account = agency
    return AgencyPolicy(EffectivePolicy(agency, (policy,)), agency.agency_role)


def mfa_requirement(access, policy: EffectivePolicy, agency: AgencyPolicy | None) -> MfaRequirement | None:
    """The strictest two-factor requirement on the person here: the account's policy for their role, and their
    agency's for their role there when they are here as an agency user (``agency_policy``)."""
    found = policy.mfa_for_role(access.role.id)
    theirs = agency.mfa() if agency is not None else None
    if theirs is not None and (found is None or _earlier(theirs.deadline, found.deadline)):
        return theirs
    return found


def _earlier(a: datetime | None, b: datetime | None) -> bool:
    if a is None:
        return b is not None
    return b is not None and a < b


def effective_policy(account: Account, ancestors: tuple[Account, ...] | None = None) -> EffectivePolicy:
    """The policy that applies in ``account``, and the platform support access active there (its own, or an
    ancestor's that includes subaccounts). One query whatever the depth: with the lineage as access resolution
    loads it (``ancestors`` given, policies joined: ``accounts.access.LINEAGE_RELATED``), only the support access;
    otherwise the lineage's accounts with their policies and support access in one go. No query at all when the
    lineage came with its support windows too (``support_window_annotations``: as access resolution loads it)."""
    lineage = (*ancestors, account) if ancestors is not None else ()
    if (lineage and all(Account.security_policy.is_cached(a) for a in lineage)
            and hasattr(account, "support_level_here") and all(hasattr(a, "support_level_above") for a in ancestors)):
        rows = [(a, a.support_level_above, a.support_until_above) for a in ancestors]
        rows.append((account, account.support_level_here, account.support_until_here))
    elif lineage and all(Account.security_policy.is_cached(a) for a in lineage):
        found = {}
        for account_id, level, until in _lineage_support([a.pk for a in lineage], account.pk):
            found.setdefault(account_id, (level, until))
        rows = [(a, *found.get(a.pk, (None, None))) for a in lineage]
    else:
        support = (SupportAccess.objects.active().filter(account=OuterRef("pk"))
                   .filter(Q(account_id=account.pk) | Q(include_subaccounts=True)).order_by("-expires_at"))
        rows = [(row, row.support_level, row.support_until) for row in (
            Account.objects.filter(path__in=account.lineage_paths).select_related("security_policy")
            .annotate(support_level=Subquery(support.values("level")[:1]),
                      support_until=Subquery(support.values("expires_at")[:1]))
            .order_by("depth"))]
    policies, windows = [], []
    for row, support_level, support_until in rows:
        lineage_account = account if row.pk == account.pk else row
        policy = row.security_policy if _has_policy(row) else None
        if policy is not None:
            policy.account = lineage_account
            policies.append(policy)
        if support_level:
            windows.append(SupportWindow(SupportAccess.Level(support_level), support_until, lineage_account))
    return EffectivePolicy(account, tuple(policies), tuple(windows))


def _has_policy(row: Account) -> bool:
    try:
        row.security_policy  # noqa: B018  (joined: no query)
    except SecurityPolicy.DoesNotExist:
        return False
    return True


def domain_problem(account: Account, email: str, policy: EffectivePolicy | None = None) -> str | None:
    """Why ``email`` may not be invited to ``account`` (its domain is outside the allowed ones), or None.
    Names the domains, never the account above that imposes them (R6)."""
    policy = policy or effective_policy(account)
    if policy.email_allowed(email):
        return None
    allowed = sorted({d for rule in policy.domain_rules for d in rule.value})
    if len(policy.domain_rules) > 1:
        return ("is not at a domain allowed for invitations here (several policies apply; each allows "
                f"only some of: {', '.join(allowed)}).")
    return f"is not at a domain allowed for invitations here (allowed: {', '.join(allowed)})."
