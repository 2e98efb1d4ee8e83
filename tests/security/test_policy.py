"""Account security policy (issue 13 part 5): Settings → Security, the strictest policy of the lineage,
two-factor required (banner before the deadline, set-up after it, other sessions ended), idle timeout and
session lifetime, allowed invitation domains, and an Owner resetting a member's second factor."""

import datetime
import html

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent
from accounts.services import subaccount_set_access
from members import invitations as inv
from members.models import Invitation, Membership
from members.roles import RoleId
from security.models import SecurityEvent, SecurityPolicy
from security.policy import effective_policy
from security.services import mfa_reset, policy_update
from tests.factories import AccountFactory, MembershipFactory, UserFactory, account_chain
from tests.security.test_sessions import sign_in

pytestmark = pytest.mark.django_db

T0 = datetime.datetime(2026, 3, 10, 9, 0, tzinfo=datetime.UTC)
Scope = SecurityPolicy.MfaScope


def policy_url(account):
    return reverse("security:policy", kwargs={"account_id": account.public_id})


def reset_url(account, membership):
    return reverse("security:mfa-reset", kwargs={"account_id": account.public_id,
                                                 "membership_id": membership.public_id})


def dashboard(account):
    return reverse("accounts:dashboard", kwargs={"account_id": account.public_id})


def give_second_factor(user):
    Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={"secret": "JBSWY3DPEHPK3PXP"})


def set_policy(account, **values):
    return policy_update(account=account, by=None, **values)


def browser_for(user, ip="192.0.2.10"):
    browser = Client(REMOTE_ADDR=ip)
    browser.force_login(user)
    return browser


@pytest.fixture
def acme(make_member):
    account = AccountFactory(name="Acme")
    people = {role: make_member(account, role) for role in ("owner", "admin", "member", "viewer")}
    return account, people


# ---- the strictest policy of the lineage ---------------------------------------------------------------

def test_strictest_of_five_levels_in_one_query(django_assert_num_queries):
    chain = account_chain(5)
    set_policy(chain[0], require_mfa=Scope.ADMINS, idle_timeout_minutes=60, allowed_email_domains=["acme.test"])
    set_policy(chain[1], session_lifetime_hours=12)
    set_policy(chain[2], require_mfa=Scope.EVERYONE, mfa_deadline=T0, idle_timeout_minutes=30,
               allowed_email_domains=["acme.test", "other.test"])
    set_policy(chain[3], idle_timeout_minutes=90, session_lifetime_hours=24)
    with django_assert_num_queries(1):
        policy = effective_policy(chain[4])
    assert (policy.idle_timeout.value, policy.idle_timeout.source) == (30, chain[2])
    assert (policy.session_lifetime.value, policy.session_lifetime.source) == (12, chain[1])
    assert (policy.mfa_scope.value, policy.mfa_scope.source) == (Scope.EVERYONE, chain[2])
    # Owners and Admins: the root requires it with no deadline (at once), stricter than level 3's deadline.
    admin_rule = policy.mfa_for_role(RoleId.ADMIN)
    assert admin_rule.deadline is None and admin_rule.source == chain[0]
    member_rule = policy.mfa_for_role(RoleId.MEMBER)
    assert member_rule.deadline == T0 and member_rule.source == chain[2]
    assert policy.email_allowed("a@acme.test") and policy.email_allowed("a@eu.acme.test")
    assert not policy.email_allowed("a@other.test")  # level 3 allows it, the root does not: both apply
    # Nothing below applies upward: level 2 knows only the root's and its own.
    upper = effective_policy(chain[1])
    assert upper.idle_timeout.value == 60 and upper.mfa_for_role(RoleId.MEMBER) is None


def test_a_later_deadline_below_does_not_relax_an_earlier_one_above():
    parent = AccountFactory()
    child = AccountFactory(parent=parent)
    set_policy(parent, require_mfa=Scope.EVERYONE, mfa_deadline=T0)
    set_policy(child, require_mfa=Scope.EVERYONE, mfa_deadline=T0 + datetime.timedelta(days=30))
    assert effective_policy(child).mfa_for_role(RoleId.MEMBER).deadline == T0


# ---- the service: permission, audit ------------------------------------------------------------------

def test_policy_update_is_audited_and_idempotent(acme):
    account, people = acme
    policy_update(account=account, by=people["owner"], require_mfa=Scope.ADMINS, idle_timeout_minutes=30)
    row = AuditEvent.objects.get(account=account, action="security.policy_changed")
    assert row.actor == people["owner"]
    assert "Owners and Admins" in row.summary and "30" in row.summary
    policy_update(account=account, by=people["owner"], require_mfa=Scope.ADMINS, idle_timeout_minutes=30)
    assert AuditEvent.objects.filter(account=account, action="security.policy_changed").count() == 1


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_policy_update_refuses_a_role_without_settings_management(acme, role):
    account, people = acme
    with pytest.raises(PermissionDenied):
        policy_update(account=account, by=people[role], require_mfa=Scope.EVERYONE)
    assert not SecurityPolicy.objects.filter(account=account).exists()


def test_policy_update_refuses_another_tenant(acme):
    account, _ = acme
    stranger = UserFactory()
    MembershipFactory(user=stranger, account=AccountFactory(), role=RoleId.OWNER)
    with pytest.raises(PermissionDenied):
        policy_update(account=account, by=stranger, idle_timeout_minutes=10)


# ---- the page ----------------------------------------------------------------------------------------

def test_owner_sets_the_policy_on_the_page(client, acme):
    account, people = acme
    client.force_login(people["owner"])
    response = client.post(policy_url(account), {
        "require_mfa": Scope.EVERYONE, "mfa_deadline": "2030-01-31T12:00", "idle_timeout_minutes": "45",
        "session_lifetime_hours": "", "allowed_email_domains": "Acme.test\n@partner.test"})
    assert response.status_code == 302
    policy = SecurityPolicy.objects.get(account=account)
    assert policy.require_mfa == Scope.EVERYONE and policy.idle_timeout_minutes == 45
    assert policy.allowed_email_domains == ["acme.test", "partner.test"]
    page = client.get(policy_url(account)).content.decode()
    assert "required for every member" in page and "45 minutes" in page and "acme.test, partner.test" in page


def test_bad_input_is_refused_at_the_field(client, acme):
    account, people = acme
    client.force_login(people["owner"])
    response = client.post(policy_url(account), {"require_mfa": Scope.NOBODY, "idle_timeout_minutes": "2",
                                                 "allowed_email_domains": "not a domain"})
    assert response.status_code == 200
    assert "idle_timeout_minutes" in response.context["form"].errors
    assert "is not a domain" in str(response.context["form"].errors["allowed_email_domains"])
    assert not SecurityPolicy.objects.filter(account=account).exists()


def test_viewer_reads_but_cannot_edit(client, acme):
    account, people = acme
    client.force_login(people["viewer"])
    assert client.get(policy_url(account)).status_code == 200
    assert client.post(policy_url(account), {"require_mfa": Scope.NOBODY}).status_code == 403
    assert not SecurityPolicy.objects.filter(account=account).exists()


def test_a_role_without_settings_access_is_refused(client, make_member):
    parent = AccountFactory()
    owner = make_member(parent, RoleId.OWNER)
    sub = AccountFactory(parent=parent)
    subaccount_set_access(account=sub, matrix={"settings": "none"}, by=owner)
    member = make_member(sub, RoleId.ADMIN)
    client.force_login(member)
    assert client.get(policy_url(sub)).status_code == 403


def test_another_tenants_page_is_404(client, acme):
    account, people = acme
    other = AccountFactory()
    victim = MembershipFactory(account=other, role=RoleId.MEMBER)
    client.force_login(people["owner"])
    assert client.get(policy_url(other)).status_code == 404
    assert client.post(policy_url(other), {"require_mfa": Scope.EVERYONE}).status_code == 404
    assert client.post(reset_url(other, victim)).status_code == 404
    # and another tenant's membership under one's own account
    assert client.post(reset_url(account, victim)).status_code == 404


def test_the_page_names_an_ancestor_only_to_those_who_reach_it(client, make_member):
    chain = account_chain(4, prefix="Secret level")
    set_policy(chain[0], idle_timeout_minutes=20)
    set_policy(chain[2], require_mfa=Scope.ADMINS)
    owner_below = make_member(chain[2], RoleId.OWNER)
    give_second_factor(owner_below)
    client.force_login(owner_below)
    page = client.get(policy_url(chain[3])).content.decode()
    assert "Secret level 1" not in page and "an account above this one" in page
    assert "Secret level 3" in page  # theirs: named
    root_owner = make_member(chain[0], RoleId.OWNER)
    give_second_factor(root_owner)
    client.force_login(root_owner)
    assert "Secret level 1" in client.get(policy_url(chain[3])).content.decode()


def test_page_query_budget_does_not_grow_with_members(client, acme, count_queries, make_member):
    account, people = acme
    set_policy(account, require_mfa=Scope.ADMINS, idle_timeout_minutes=30)
    give_second_factor(people["owner"])
    client.force_login(people["owner"])
    client.get(policy_url(account))  # the session's first request lists it (allauth's session list)
    counts = []
    for total in (5, 40):
        while Membership.objects.filter(account=account).count() < total:
            make_member(account)
        counts.append(count_queries(lambda: client.get(policy_url(account))))
        assert count_queries.last_result.status_code == 200
    assert counts == [5, 6]  # the few members fit on the first page: no COUNT (accounts.paging.Paginator)


# ---- enforcement ---------------------------------------------------------------------------------------

def test_before_the_deadline_a_banner_after_it_the_set_up_page(acme):
    account, people = acme
    with time_machine.travel(T0, tick=False):
        set_policy(account, require_mfa=Scope.EVERYONE, mfa_deadline=T0 + datetime.timedelta(days=7))
        member = browser_for(people["member"])
        page = member.get(dashboard(account))
        assert page.status_code == 200
        assert "This account requires two-factor authentication" in page.content.decode()
        give_second_factor(people["viewer"])
        assert "requires two-factor" not in browser_for(people["viewer"]).get(dashboard(account)).content.decode()
    with time_machine.travel(T0 + datetime.timedelta(days=8), tick=False):
        response = member.get(dashboard(account))
        assert response.status_code == 302 and response["Location"] == reverse("mfa_index")
        assert member.get(reverse("mfa_index")).status_code == 200  # the set-up pages stay open
        assert member.post(policy_url(account), {"require_mfa": Scope.NOBODY}).status_code == 302
        assert SecurityPolicy.objects.get(account=account).require_mfa == Scope.EVERYONE  # nothing done
        assert Membership.objects.filter(account=account, user=people["member"]).exists()  # still a member
        give_second_factor(people["member"])
        assert member.get(dashboard(account)).status_code == 200


def test_after_the_deadline_other_sessions_end(acme, password):
    account, people = acme
    set_policy(account, require_mfa=Scope.EVERYONE)
    laptop = sign_in(people["member"], password, "192.0.2.10", "Firefox/140.0")
    phone = sign_in(people["member"], password, "192.0.2.20", "Safari/605.1")
    assert phone.get(reverse("profile")).status_code == 200  # listed in the session list
    assert laptop.get(dashboard(account)).status_code == 302
    assert phone.get(reverse("profile")).status_code == 302  # signed out
    assert laptop.get(reverse("profile")).status_code == 200  # this one stays, to set a factor up
    assert SecurityEvent.objects.filter(user=people["member"],
                                        kind=SecurityEvent.Kind.SESSIONS_ENDED_BY_POLICY).exists()


def test_owners_and_admins_only(acme):
    account, people = acme
    set_policy(account, require_mfa=Scope.ADMINS)
    assert browser_for(people["member"]).get(dashboard(account)).status_code == 200
    assert browser_for(people["admin"]).get(dashboard(account)).status_code == 302
    assert browser_for(people["owner"]).get(dashboard(account)).status_code == 302


def test_an_ancestors_policy_applies_below_and_not_on_other_accounts(make_member):
    parent = AccountFactory()
    child = AccountFactory(parent=parent)
    elsewhere = AccountFactory()
    person = make_member(child, RoleId.MEMBER)
    make_member(elsewhere, RoleId.MEMBER, user=person)
    set_policy(parent, require_mfa=Scope.EVERYONE)
    browser = browser_for(person)
    assert browser.get(dashboard(child)).status_code == 302
    assert browser.get(dashboard(elsewhere)).status_code == 200


def test_agency_users_meet_the_clients_policy(client):
    from agency import services as agency

    ag = AccountFactory(name="Agency")
    ag_person = UserFactory()
    MembershipFactory(user=ag_person, account=ag, role=RoleId.OWNER)
    client_account = AccountFactory(name="Client")
    client_owner = UserFactory()
    MembershipFactory(user=client_owner, account=client_account, role=RoleId.OWNER)
    grant = agency.access_request(agency=ag, client=client_account, by=ag_person)
    agency.access_decide(grant=grant, approve=True, by=client_owner)
    set_policy(client_account, require_mfa=Scope.ADMINS)
    browser = browser_for(ag_person)
    assert browser.get(dashboard(client_account)).status_code == 302
    assert browser.get(dashboard(ag)).status_code == 200  # the agency's own account has no policy
    # ... and never set it: the client's own people do.
    give_second_factor(ag_person)
    assert browser.get(policy_url(client_account)).status_code == 200
    assert browser.post(policy_url(client_account), {"require_mfa": Scope.NOBODY}).status_code == 403
    with pytest.raises(PermissionDenied):
        policy_update(account=client_account, by=ag_person, require_mfa=Scope.NOBODY)
    assert SecurityPolicy.objects.get(account=client_account).require_mfa == Scope.ADMINS


@pytest.fixture
def agency_world(make_member):
    """Agency X (its Owner and a Member, both with agency access to Client), Client (its own Owner), and Agency Y
    with agency access to Client too."""
    from agency import services as agency

    x, y, client_account = (AccountFactory(name=n) for n in ("Agency X", "Agency Y", "Client"))
    people = {"x_owner": make_member(x, RoleId.OWNER), "x_member": make_member(x, RoleId.MEMBER),
              "y_owner": make_member(y, RoleId.OWNER), "client_owner": make_member(client_account, RoleId.OWNER)}
    for agency_account, requester, extra in ((x, people["x_owner"], people["x_member"]), (y, people["y_owner"], None)):
        grant = agency.access_request(agency=agency_account, client=client_account, by=requester)
        agency.access_decide(grant=grant, approve=True, by=people["client_owner"])
        if extra is not None:
            agency.agency_member_add(grant=grant, user=extra, by=requester)
    return x, client_account, people


def test_an_agencys_two_factor_requirement_follows_its_people_into_clients(agency_world):
    """Agency X requires two-factor of everyone: its people are sent to set it up in Client too, named as their
    agency's rule; Client's own people and Agency Y's are not; with a factor set up, they work on."""
    x, client_account, people = agency_world
    set_policy(x, require_mfa=Scope.EVERYONE)
    browser = browser_for(people["x_member"])
    response = browser.get(dashboard(client_account), follow=True)
    assert response.redirect_chain[0] == (reverse("mfa_index"), 302)
    assert ("Agency X requires two-factor authentication of its people, in its clients' accounts too"
            in html.unescape(response.content.decode()))
    for who in ("client_owner", "y_owner"):
        assert browser_for(people[who]).get(dashboard(client_account)).status_code == 200, who
    give_second_factor(people["x_member"])
    assert browser.get(dashboard(client_account)).status_code == 200


def test_the_agencys_rule_applies_by_the_role_held_in_the_agency(agency_world):
    """"Owners and Admins" of the agency: its Owner, an Agency Admin in Client, must have a factor there; its
    Member, an Agency Admin in Client too, need not (the client's own rule would count the Agency Admin role)."""
    x, client_account, people = agency_world
    set_policy(x, require_mfa=Scope.ADMINS)
    assert browser_for(people["x_owner"]).get(dashboard(client_account)).status_code == 302
    assert browser_for(people["x_member"]).get(dashboard(client_account)).status_code == 200


def test_before_the_agencys_deadline_a_banner_names_it(agency_world):
    x, client_account, people = agency_world
    with time_machine.travel(T0, tick=False):
        set_policy(x, require_mfa=Scope.EVERYONE, mfa_deadline=T0 + datetime.timedelta(days=7))
        html = browser_for(people["x_member"]).get(dashboard(client_account)).content.decode()
        assert "Agency X, your agency, requires two-factor authentication from" in html
        # the earlier deadline wins: the client's own, sooner
        set_policy(client_account, require_mfa=Scope.EVERYONE, mfa_deadline=T0 + datetime.timedelta(days=2))
        html = browser_for(people["x_member"]).get(dashboard(client_account)).content.decode()
        assert "This account requires two-factor authentication from" in html


def test_the_agencys_earlier_deadline_wins_over_the_clients_later_one(agency_world):
    """Client requires a factor from next month, the agency at once: its people must set one up now."""
    x, client_account, people = agency_world
    with time_machine.travel(T0, tick=False):
        set_policy(client_account, require_mfa=Scope.EVERYONE, mfa_deadline=T0 + datetime.timedelta(days=30))
        set_policy(x, require_mfa=Scope.EVERYONE)
        assert browser_for(people["x_member"]).get(dashboard(client_account)).status_code == 302
        assert browser_for(people["client_owner"]).get(dashboard(client_account)).status_code == 200  # a banner


def test_the_agencys_session_lifetime_signs_its_people_out_of_clients(agency_world):
    x, client_account, people = agency_world
    set_policy(x, session_lifetime_hours=8)
    with time_machine.travel(T0, tick=False) as clock:
        browser, own = browser_for(people["x_member"]), browser_for(people["client_owner"])
        clock.shift(datetime.timedelta(hours=9))
        response = browser.get(dashboard(client_account), follow=True)
        assert "Agency X, your agency, signs people out 8 hours after they sign in" in response.content.decode()
        assert browser.get(reverse("profile")).status_code == 302  # signed out
        assert own.get(dashboard(client_account)).status_code == 200


def test_the_agencys_idle_timeout_holds_everywhere_once_a_client_was_opened(agency_world):
    """As an account's own idle timeout does: after a client's page, 31 idle minutes end the session on any page."""
    x, client_account, people = agency_world
    set_policy(x, idle_timeout_minutes=30)
    with time_machine.travel(T0, tick=False) as clock:
        browser = browser_for(people["x_member"])
        assert browser.get(dashboard(client_account)).status_code == 200
        clock.shift(datetime.timedelta(minutes=31))
        response = browser.get(reverse("profile"))
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_an_agency_users_api_key_meets_the_agencys_requirement(agency_world):
    from developers.services import apikey_create

    x, client_account, people = agency_world
    _, raw = apikey_create(account=client_account, by=people["x_owner"], label="ci")
    url = f"/api/v1/accounts/{client_account.public_id}"
    assert Client().get(url, HTTP_X_API_KEY=raw).status_code == 200
    set_policy(x, require_mfa=Scope.ADMINS)
    response = Client().get(url, HTTP_X_API_KEY=raw)
    assert response.status_code == 403 and "Agency X requires two-factor" in response.content.decode()


def test_the_agencys_policy_costs_agency_users_one_query(agency_world, count_queries, monkeypatch):
    """One query on a client's page, for agency users only, with or without a policy in the agency."""
    x, client_account, people = agency_world
    browser, own = browser_for(people["x_member"]), browser_for(people["client_owner"])
    browser.get(dashboard(client_account))
    own.get(dashboard(client_account))
    before, own_before = (count_queries(lambda b=b: b.get(dashboard(client_account))) for b in (browser, own))
    with monkeypatch.context() as patched:
        patched.setattr("security.middleware.agency_policy", lambda access: None)
        assert count_queries(lambda: browser.get(dashboard(client_account))) == before - 1
    set_policy(x, require_mfa=Scope.ADMINS, idle_timeout_minutes=600)
    browser.get(dashboard(client_account))  # (notes the idle limit in the session once)
    assert count_queries(lambda: browser.get(dashboard(client_account))) == before
    assert count_queries(lambda: own.get(dashboard(client_account))) == own_before


def test_mfa_reset_budget_does_not_grow_with_the_persons_memberships(client, acme, count_queries, make_member):
    account, people = acme
    counts = []
    for subaccounts in (1, 12):
        person = make_member(account, RoleId.MEMBER)
        for _ in range(subaccounts):
            make_member(AccountFactory(parent=account), RoleId.MEMBER, user=person)
        give_second_factor(person)
        membership = Membership.objects.get(account=account, user=person)
        client.force_login(people["owner"])
        client.get(dashboard(account))
        counts.append(count_queries(lambda m=membership: client.post(reset_url(account, m))))
        assert not Authenticator.objects.filter(user=person).exists()
    assert counts[0] == counts[1] == 11, counts


def test_idle_timeout(acme):
    account, people = acme
    set_policy(account, idle_timeout_minutes=30)
    with time_machine.travel(T0, tick=False) as clock:
        browser = browser_for(people["member"])
        assert browser.get(dashboard(account)).status_code == 200
        clock.shift(datetime.timedelta(minutes=20))
        assert browser.get(dashboard(account)).status_code == 200  # activity moves the window
        clock.shift(datetime.timedelta(minutes=25))
        assert browser.get(dashboard(account)).status_code == 200
        clock.shift(datetime.timedelta(minutes=31))
        response = browser.get(dashboard(account))
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
        assert browser.get(reverse("profile")).status_code == 302  # signed out, not only turned away
    assert SecurityEvent.objects.filter(user=people["member"],
                                        kind=SecurityEvent.Kind.SESSION_EXPIRED_BY_POLICY).exists()


@pytest.mark.parametrize("first", ["home", "profile", "switcher", "an account without the policy"])
def test_the_idle_clock_is_not_restarted_by_a_page_outside_the_account(acme, make_member, first):
    """A hostile review: every signed-in request noted activity, and only account pages checked it, so after a
    long absence the brand link (home), the profile, the switcher or another account restarted the clock and
    the account's page found a fresh "last active"."""
    account, people = acme
    set_policy(account, idle_timeout_minutes=30)
    elsewhere = AccountFactory(name="No policy")
    make_member(elsewhere, RoleId.MEMBER, user=people["member"])
    url, headers = {"home": (reverse("home"), {}), "profile": (reverse("profile"), {}),
                    "switcher": (reverse("accounts:switcher"), {"HTTP_HX_REQUEST": "true"}),
                    "an account without the policy": (dashboard(elsewhere), {})}[first]
    with time_machine.travel(T0, tick=False) as clock:
        browser = browser_for(people["member"])
        assert browser.get(dashboard(account)).status_code == 200
        clock.shift(datetime.timedelta(minutes=29))
        assert browser.get(url, **headers).status_code in (200, 302)  # within the window: activity
        clock.shift(datetime.timedelta(minutes=29))
        assert browser.get(dashboard(account)).status_code == 200  # the window moved
        clock.shift(datetime.timedelta(minutes=31))
        response = browser.get(url, **headers)
        if headers:
            assert response.status_code == 204 and response["HX-Redirect"] == reverse("login")
        else:
            assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
        assert browser.get(dashboard(account)).status_code == 302  # signed out, not only turned away
    assert SecurityEvent.objects.filter(user=people["member"],
                                        kind=SecurityEvent.Kind.SESSION_EXPIRED_BY_POLICY).count() == 1


def test_session_lifetime(acme):
    account, people = acme
    set_policy(account, session_lifetime_hours=8)
    with time_machine.travel(T0, tick=False) as clock:
        browser = browser_for(people["member"])
        for _ in range(7):
            clock.shift(datetime.timedelta(hours=1))
            assert browser.get(dashboard(account)).status_code == 200
        clock.shift(datetime.timedelta(hours=1, minutes=1))
        assert browser.get(dashboard(account)).status_code == 302
        assert browser.get(reverse("profile")).status_code == 302


def test_the_policy_costs_one_query_per_account_page(acme, count_queries):
    account, people = acme
    browser = browser_for(people["member"])
    browser.get(dashboard(account))
    without = count_queries(lambda: browser.get(dashboard(account)))
    set_policy(account, idle_timeout_minutes=30, session_lifetime_hours=8, allowed_email_domains=["x.test"],
               require_mfa=Scope.ADMINS)
    # the first page under an idle timeout notes it in the session once (a session write), then nothing more
    assert count_queries(lambda: browser.get(dashboard(account))) > without
    assert count_queries(lambda: browser.get(dashboard(account))) == without  # the same lineage query
    set_policy(account, require_mfa=Scope.EVERYONE, mfa_deadline=T0 + datetime.timedelta(days=3650))
    give_second_factor(people["member"])
    assert count_queries(lambda: browser.get(dashboard(account))) == without + 1  # their factors, only here


# ---- allowed email domains for invitations ---------------------------------------------------------------

def test_invitations_outside_the_allowed_domains_are_refused(acme):
    account, people = acme
    set_policy(account, allowed_email_domains=["acme.test"])
    inv.invitation_create(account=account, email="new@acme.test", role=RoleId.MEMBER, by=people["owner"])
    inv.invitation_create(account=account, email="new@eu.acme.test", role=RoleId.MEMBER, by=people["owner"])
    with pytest.raises(ValidationError) as exc:
        inv.invitation_create(account=account, email="someone@gmail.test", role=RoleId.MEMBER, by=people["owner"])
    assert "someone@gmail.test is not at a domain allowed for invitations here (allowed: acme.test)" in str(exc.value)
    with pytest.raises(ValidationError):
        inv.invitation_create(account=account, email="x@notacme.test", role=RoleId.MEMBER, by=people["owner"])


def test_bulk_invitations_name_each_line_outside_the_domains(acme):
    account, people = acme
    set_policy(account, allowed_email_domains=["acme.test"])
    with pytest.raises(inv.BulkInviteError) as exc:
        inv.invitations_create_bulk(account=account, text="a@acme.test\nb@else.test\nc@acme.test\nd@else.test",
                                    role=RoleId.MEMBER, by=people["owner"])
    assert [(e.line, e.email) for e in exc.value.line_errors] == [(2, "b@else.test"), (4, "d@else.test")]
    assert "allowed: acme.test" in exc.value.line_errors[0].message
    assert not Invitation.objects.filter(account=account).exists()  # all or nothing


def test_an_ancestors_domains_apply_to_invitations_below_without_naming_it(make_member):
    parent = AccountFactory(name="Hidden Parent")
    child = AccountFactory(parent=parent)
    owner = make_member(child, RoleId.OWNER)
    set_policy(parent, allowed_email_domains=["corp.test"])
    with pytest.raises(ValidationError) as exc:
        inv.invitation_create(account=child, email="x@elsewhere.test", role=RoleId.MEMBER, by=owner)
    assert "Hidden Parent" not in str(exc.value)


def test_the_invite_page_shows_the_domain_error(client, acme):
    account, people = acme
    set_policy(account, allowed_email_domains=["acme.test"])
    client.force_login(people["owner"])
    response = client.post(reverse("members:invite", kwargs={"account_id": account.public_id}),
                           {"email": "x@else.test", "role": RoleId.MEMBER})
    assert response.status_code == 200
    assert "not at a domain allowed for invitations here" in response.content.decode()


def test_an_invitation_sent_before_the_domains_were_limited_stops_working(client, acme):
    account, people = acme
    invitation = inv.invitation_create(account=account, email="late@else.test", role=RoleId.MEMBER,
                                       by=people["owner"])
    token = inv.invitation_token(invitation)
    set_policy(account, allowed_email_domains=["acme.test"])
    with pytest.raises(inv.InvitationInvalid, match="not at one of them"):
        inv.invitation_from_token(token)
    invitee = UserFactory(email="late@else.test")
    with pytest.raises(ValidationError, match="not at one of them"):
        inv.invitation_accept(invitation=invitation, user=invitee)
    assert not Membership.objects.filter(account=account, user=invitee).exists()


# ---- an Owner resets a member's second factor ---------------------------------------------------------

def test_owner_resets_a_members_second_factor(client, acme, django_capture_on_commit_callbacks):
    account, people = acme
    give_second_factor(people["member"])
    membership = Membership.objects.get(account=account, user=people["member"])
    client.force_login(people["owner"])
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reset_url(account, membership)).status_code == 302
    assert not Authenticator.objects.filter(user=people["member"]).exists()
    assert AuditEvent.objects.filter(account=account, action="security.mfa_reset", actor=people["owner"]).exists()
    event = SecurityEvent.objects.get(user=people["member"], kind=SecurityEvent.Kind.MFA_RESET_BY_OWNER)
    assert event.by == people["owner"]
    assert [m.to for m in mail.outbox] == [[people["member"].email]]
    assert "reset your two-factor authentication" in mail.outbox[0].body


@pytest.mark.parametrize("role", ["admin", "member", "viewer"])
def test_only_an_owner_resets(client, acme, role):
    account, people = acme
    give_second_factor(people["member"])
    membership = Membership.objects.get(account=account, user=people["member"])
    with pytest.raises(PermissionDenied):
        mfa_reset(membership=membership, by=people[role])
    client.force_login(people[role])
    assert client.post(reset_url(account, membership)).status_code == 403
    assert Authenticator.objects.filter(user=people["member"]).exists()


def test_an_owner_cannot_reset_another_owner_or_themselves(acme, make_member):
    account, people = acme
    other_owner = make_member(account, RoleId.OWNER)
    for person in (other_owner, people["owner"]):
        give_second_factor(person)
        membership = Membership.objects.get(account=account, user=person)
        with pytest.raises((PermissionDenied, ValidationError)):
            mfa_reset(membership=membership, by=people["owner"])
        assert Authenticator.objects.filter(user=person).exists()


def test_never_across_tenants(acme, make_member):
    account, people = acme
    elsewhere = AccountFactory(name="Someone else")
    make_member(elsewhere, RoleId.MEMBER, user=people["member"])  # the member also belongs elsewhere
    give_second_factor(people["member"])
    membership = Membership.objects.get(account=account, user=people["member"])
    with pytest.raises(PermissionDenied, match="outside yours"):
        mfa_reset(membership=membership, by=people["owner"])
    assert Authenticator.objects.filter(user=people["member"]).exists()
    # The platform resets in the admin, never through this service.
    with pytest.raises(PermissionDenied):
        mfa_reset(membership=membership, by=None)


def test_an_owner_above_resets_in_a_subaccount(make_member):
    parent = AccountFactory()
    child = AccountFactory(parent=parent)
    owner = make_member(parent, RoleId.OWNER)
    person = make_member(child, RoleId.ADMIN)
    give_second_factor(person)
    mfa_reset(membership=Membership.objects.get(account=child, user=person), by=owner)
    assert not Authenticator.objects.filter(user=person).exists()
