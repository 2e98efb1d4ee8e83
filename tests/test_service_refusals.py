"""Every service that writes refuses the actors it must refuse when it is called directly, not only through its view.

Each refusal test calls the service with ``by`` = someone who must be refused and checks that
(a) it raises the service's own refusal (PermissionDenied, its subclass GrantRefused, or ValidationError where the
    service refuses that way) with a message a person can read, and
(b) nothing changed in the database: every row of every table a service writes (accounts, memberships, permission
    rows, audit events, invitations, agency grants / settings / baselines, agents, contacts, conversations, usage,
    invoices, subscriptions, users) is the same before and after.
Each service also has a test where the right actor succeeds, so that the refusals mean something.

Services with no acting person (``by``) are not here: ``account_create`` (anyone may open an account),
``user_signup``, ``subscription_start``, ``usage_record_conversation``, ``record_expiries``, ``record_payment`` and
every ``billing.stripe_sync`` function (called by the platform, webhooks and ``invoice_close``, never by a person).

A refusal that a service does not make is marked ``xfail(strict=True, reason="BUG: ...")`` until the service checks
(then the unexpected pass fails the run and the marker must go). None is left: the ones this file found (account
deletion, switching, closing a period, turning agency access on, keeping it after a transfer, partial matrices, the
baseline rewriting clients' settings, the transfer not re-checked at acceptance and at the switch) are fixed.

Access is cached on the user object, so every call gets a fresh user (``fresh``), as a new request would.
"""

import datetime
import re
from types import SimpleNamespace

import pytest
from allauth.mfa.models import Authenticator
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone

from accounts import services as account_services
from accounts.access import resolve_access
from accounts.models import Account, AccountUserObjectPermission, AuditEvent
from accounts.permissions import CATEGORIES
from agency import services as agency_services
from agency.models import AgencyBaseline, AgencyGrant, AgencySettings
from billing import services as billing_services
from billing import transfers
from billing.models import BillingTransfer, Invoice, InvoiceLine, Subscription, UsageRecord, period_start
from members import invitations
from members import services as member_services
from members.grants import GrantRefused
from members.models import Invitation, Membership, User
from members.roles import RoleId
from security import services as security_services
from security.models import SecurityPolicy
from tests.factories import AccountFactory, UserFactory, plan, sent_earlier
from workspace import services as workspace_services
from workspace.models import Agent, Contact, Conversation

pytestmark = pytest.mark.django_db

OWNER, ADMIN, AGENCY_ADMIN, MEMBER, VIEWER = (RoleId.OWNER, RoleId.ADMIN, RoleId.AGENCY_ADMIN, RoleId.MEMBER,
                                              RoleId.VIEWER)

# A matrix within anyone's own holdings (everything None): where it is refused, only the actor check refuses it.
NOTHING = {category.key: "none" for category in CATEGORIES}

NO_ACCESS = r"^You do not have access to this account\.$"
NOT_MEMBERS = r"does not include managing members"
NOT_OWNER_ROLE = r"As Admin you cannot grant the Owner role"
DELEGATED_GIVES = r"Access given through an agency can add people as Member or Viewer only"
DELEGATED_TOUCHES = r"Access given through an agency can change or remove Members and Viewers only"
NOT_GOVERNOR = r"Only the Owner or an Admin of Client \(not one added through an agency\) decides on agency access"
NOT_AGENCY_MANAGER = r"Your role in Agency X does not allow managing agency access\."
NOT_INVITING = r"does not allow this \(manage members and invitations\)"


# --- what "nothing changed" means --------------------------------------------------------------------------------

TRACKED = (Account, Membership, AccountUserObjectPermission, AuditEvent, Invitation, User, AgencyGrant, AgencySettings,
           AgencyBaseline, Agent, Contact, Conversation, UsageRecord, Invoice, InvoiceLine, Subscription,
           BillingTransfer, SecurityPolicy, Authenticator)


def db_state() -> dict:
    """Every row of every table a service writes, in a comparable form."""
    return {model._meta.label: list(model._default_manager.order_by("pk").values()) for model in TRACKED}


def message_of(exc: Exception) -> str:
    return " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)


def assert_readable(message: str) -> None:
    """A sentence for a person: capitalised (or opening with an email address), ends with a full stop, no Python
    reprs or placeholders."""
    assert message and (message[0].isupper() or re.match(r"\S+@\S+ ", message)) and message.endswith("."), message
    assert not re.search(r"<\w|object at 0x|[{}\[\]]|\bNone\b|Traceback", message), message


def refused(call, exc=PermissionDenied, match: str | None = None):
    """``call`` raises ``exc`` with a readable message matching ``match``, and writes nothing."""
    before = db_state()
    with pytest.raises(exc) as info:
        call()
    message = message_of(info.value)
    assert_readable(message)
    if match:
        assert re.search(match, message), f"{message!r} does not say {match!r}"
    assert db_state() == before, "a refused call changed the database"
    return info.value


def succeeds(call):
    """The happy path: ``call`` returns and writes something."""
    before = db_state()
    result = call()
    assert db_state() != before, "the call changed nothing"
    return result


def fresh(user) -> User:
    """The person as the next request sees them (access is cached per user object)."""
    return User.objects.get(pk=user.pk)


def membership(user, account) -> Membership:
    return Membership.objects.select_related("account", "user").get(user=user, account=account)


def holds(user, account, codename: str) -> bool:
    access = resolve_access(fresh(user), account)
    return access is not None and access.has(codename)


# --- worlds -------------------------------------------------------------------------------------------------------

@pytest.fixture
def tree(make_member):
    """Reseller (root) with subaccounts Alpha and Beta, and another tenant, Elsewhere.

    r_* are people of Reseller (two Owners, so that only the rank rule protects an Owner), a_* of Alpha, b_owner of
    Beta (Alpha's sibling), o_owner of Elsewhere."""
    root = AccountFactory(name="Reseller")
    alpha = AccountFactory(parent=root, name="Alpha")
    beta = AccountFactory(parent=root, name="Beta")
    other = AccountFactory(name="Elsewhere")
    t = SimpleNamespace(root=root, alpha=alpha, beta=beta, other=other)
    for key, account, role in (("r_owner", root, OWNER), ("r_owner2", root, OWNER), ("r_admin", root, ADMIN),
                               ("r_member", root, MEMBER), ("r_viewer", root, VIEWER), ("a_owner", alpha, OWNER),
                               ("a_admin", alpha, ADMIN), ("a_member", alpha, MEMBER), ("b_owner", beta, OWNER),
                               ("o_owner", other, OWNER)):
        setattr(t, key, make_member(account, role))
    for account in (root, alpha, beta):
        account.refresh_from_db()
    return t


@pytest.fixture
def ag(make_member):
    """Agency X has active agency access to Client (approved by Client's Owner).

    ax_admin (Admin of Agency X, who asked) and ax_member (a Member of Agency X, added by ax_admin) are agency users
    in Client. ``delegated`` was added to Client by ax_admin as Member and later made Admin by Client's Owner: a
    non-agency Admin whose membership an agency user created. Client has a subaccount ("Client branch") with a
    Member. Agency Y (ay_admin) and Elsewhere (o_owner) are other tenants."""
    agency = AccountFactory(name="Agency X")
    client = AccountFactory(name="Client")
    g = SimpleNamespace(agency=agency, client=client, other=AccountFactory(name="Elsewhere"),
                        other_agency=AccountFactory(name="Agency Y"))
    for key, account, role in (("ax_owner", agency, OWNER), ("ax_admin", agency, ADMIN), ("ax_member", agency, MEMBER),
                               ("c_owner", client, OWNER), ("c_admin", client, ADMIN), ("c_member", client, MEMBER),
                               ("c_viewer", client, VIEWER), ("o_owner", g.other, OWNER),
                               ("ay_admin", g.other_agency, ADMIN)):
        setattr(g, key, make_member(account, role))
    g.grant = agency_services.access_request(agency=agency, client=client, by=fresh(g.ax_admin))
    agency_services.access_decide(grant=g.grant, approve=True, by=fresh(g.c_owner))
    agency_services.agency_member_add(grant=g.grant, user=g.ax_member, by=fresh(g.ax_admin))
    g.delegated = UserFactory()
    added = member_services.membership_add(account=client, user=g.delegated, role=MEMBER, by=fresh(g.ax_admin))
    member_services.membership_change_role(membership=added, role=ADMIN, by=fresh(g.c_owner))
    g.sub = AccountFactory(parent=client, name="Client branch")
    g.s_member = make_member(g.sub, MEMBER)
    g.grant.refresh_from_db()
    client.refresh_from_db()
    assert membership(g.delegated, client).via_agency and membership(g.ax_admin, client).is_agency
    return g


def cap_subaccount(account, **levels) -> None:
    """The platform sets a subaccount's access categories (the parent's cap on its own members)."""
    account_services.subaccount_set_access(account=account, matrix=levels, by=None)


def cap_client(g, **levels) -> None:
    """Client's Owner sets the agency settings (the cap on every non-agency member while agency access is on)."""
    agency_services.settings_update(client=g.client, matrix=levels, by=fresh(g.c_owner))


def expire(g) -> None:
    AgencyGrant.objects.filter(pk=g.grant.pk).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))


def revoke(g) -> None:
    agency_services.access_revoke(grant=g.grant, by=fresh(g.c_owner))


def mark_revoked(g) -> None:
    """Only the grant's status says revoked (an agency membership row was left behind)."""
    AgencyGrant.objects.filter(pk=g.grant.pk).update(status=AgencyGrant.Status.REVOKED)


def leave_agency(g) -> None:
    """The agency user leaves the agency itself (the grant stays active)."""
    member_services.membership_remove(membership=membership(g.ax_admin, g.agency), by=fresh(g.ax_owner))


# the grant ends
ENDED = {"revoked": revoke, "expired": expire, "marked_revoked": mark_revoked}
ENDED_IDS = ["grant_revoked", "grant_expired", "grant_marked_revoked_membership_left_behind"]
# the agency user's access ends: the grant ends, or they leave the agency
GONE = {**ENDED, "left_agency": leave_agency}
GONE_IDS = [*ENDED_IDS, "agency_user_left_the_agency"]

# (actor, account) of the tree that must be refused wherever a right *in* that account is needed
TREE_OUTSIDERS = [
    pytest.param("a_owner", "root", id="subaccount_owner_on_the_parent"),
    pytest.param("b_owner", "alpha", id="sibling_owner"),
    pytest.param("o_owner", "root", id="other_tenant"),
]


def who(world, key):
    return fresh(getattr(world, key))


# --- accounts/services.py -----------------------------------------------------------------------------------------

class TestAccountServices:
    # subaccount_create -- refuses with ValidationError(code="refused") naming what is missing
    def test_a_subaccount_manager_creates_a_subaccount(self, tree):
        sub = succeeds(lambda: account_services.subaccount_create(parent=tree.root, name="Gamma",
                                                                  by=fresh(tree.r_admin)))
        assert sub.parent == tree.root and not sub.memberships.exists()

    @pytest.mark.parametrize("actor,parent", [
        pytest.param("r_member", "root", id="member"),
        pytest.param("r_viewer", "root", id="viewer"),
        *TREE_OUTSIDERS,
    ])
    def test_only_subaccount_managers_of_the_parent_create_subaccounts(self, tree, actor, parent):
        refused(lambda: account_services.subaccount_create(parent=getattr(tree, parent), name="Gamma",
                                                           by=who(tree, actor)),
                ValidationError, r"does not allow creating subaccounts")

    def test_a_subaccounts_access_categories_bind_its_own_admin_when_creating_below_it(self, tree):
        cap_subaccount(tree.alpha, subaccounts="read")
        refused(lambda: account_services.subaccount_create(parent=tree.alpha, name="Alpha one",
                                                           by=fresh(tree.a_admin)),
                ValidationError, r"Your role in Alpha does not allow creating subaccounts")
        succeeds(lambda: account_services.subaccount_create(parent=tree.alpha, name="Alpha one",
                                                            by=fresh(tree.r_admin)))

    def test_an_admin_cannot_invite_the_owner_of_a_new_subaccount(self, tree):
        refused(lambda: account_services.subaccount_create(parent=tree.root, name="Gamma", by=fresh(tree.r_admin),
                                                           invite_email="boss@example.test", invite_role=OWNER),
                GrantRefused, NOT_OWNER_ROLE)

    def test_an_owner_invites_the_owner_of_a_new_subaccount(self, tree):
        sub = succeeds(lambda: account_services.subaccount_create(
            parent=tree.root, name="Gamma", by=fresh(tree.r_owner), invite_email="boss@example.test",
            invite_role=OWNER))
        assert sub.invitations.get().role == OWNER

    def test_only_the_platform_names_a_subaccount_owner_directly(self, tree):
        someone = UserFactory()
        refused(lambda: account_services.subaccount_create(parent=tree.root, name="Gamma", by=fresh(tree.r_owner),
                                                           owner=someone),
                ValidationError, r"Only the platform names an Owner directly")

    # account_rename
    @pytest.mark.parametrize("actor,account", [
        pytest.param("r_admin", "root", id="admin"),
        pytest.param("r_admin", "alpha", id="admin_of_the_parent"),
        pytest.param("a_admin", "alpha", id="admin_of_the_subaccount"),
    ])
    def test_a_settings_manager_renames_the_account(self, tree, actor, account):
        target = getattr(tree, account)
        succeeds(lambda: account_services.account_rename(account=target, name="Renamed", by=who(tree, actor)))
        target.refresh_from_db()
        assert target.name == "Renamed"

    @pytest.mark.parametrize("actor,account,message", [
        pytest.param("r_member", "root", r"does not allow this \(edit account settings\)", id="member"),
        pytest.param("r_viewer", "root", r"does not allow this \(edit account settings\)", id="viewer"),
        pytest.param("a_owner", "root", NO_ACCESS, id="subaccount_owner_on_the_parent"),
        pytest.param("b_owner", "alpha", NO_ACCESS, id="sibling_owner"),
        pytest.param("o_owner", "root", NO_ACCESS, id="other_tenant"),
    ])
    def test_only_settings_managers_rename_an_account(self, tree, actor, account, message):
        refused(lambda: account_services.account_rename(account=getattr(tree, account), name="Renamed",
                                                        by=who(tree, actor)),
                PermissionDenied, message)

    def test_a_subaccounts_access_categories_bind_its_own_owner_when_renaming(self, tree):
        cap_subaccount(tree.alpha, settings="read")
        refused(lambda: account_services.account_rename(account=tree.alpha, name="Renamed", by=fresh(tree.a_owner)),
                PermissionDenied, r"Account settings is read-only here \(edit account settings\): the account above "
                                  r"limits what Alpha's members can do")

    # account_delete -- not self-service: the Django admin (platform staff) and the platform (by=None) only
    @pytest.mark.parametrize("staff", [False, True], ids=["platform", "platform_staff"])
    def test_the_platform_deletes_a_subaccount_without_subaccounts(self, tree, staff):
        by = UserFactory(is_staff=True) if staff else None
        succeeds(lambda: account_services.account_delete(account=tree.beta, by=by and fresh(by)))
        assert not Account.objects.filter(pk=tree.beta.pk).exists()

    @pytest.mark.parametrize("actor", [
        pytest.param("r_owner", id="owner_of_the_parent"),
        pytest.param("b_owner", id="the_accounts_own_owner"),
        pytest.param("r_viewer", id="viewer_of_the_parent"),
        pytest.param("a_owner", id="sibling_owner"),
        pytest.param("o_owner", id="other_tenant"),
    ])
    def test_only_platform_staff_delete_an_account(self, tree, actor):
        refused(lambda: account_services.account_delete(account=tree.beta, by=who(tree, actor)), PermissionDenied,
                r"^Deleting an account is done by platform staff: contact support\.$")

    # account_switched -- the acting person is ``user``
    def test_switching_records_the_choice(self, tree):
        succeeds(lambda: account_services.account_switched(user=fresh(tree.r_member), to=tree.alpha))
        assert fresh(tree.r_member).last_account == tree.alpha

    def test_nobody_switches_to_an_account_they_cannot_reach(self, tree):
        refused(lambda: account_services.account_switched(user=fresh(tree.o_owner), to=tree.root),
                (PermissionDenied, Http404), NO_ACCESS)

    # subaccount_set_access
    def test_a_subaccount_manager_of_the_parent_sets_a_subaccounts_access(self, tree):
        assert holds(tree.a_owner, tree.alpha, "view_billing")
        succeeds(lambda: account_services.subaccount_set_access(account=tree.alpha, matrix={"billing": "none"},
                                                                by=fresh(tree.r_admin)))
        assert not holds(tree.a_owner, tree.alpha, "view_billing")

    @pytest.mark.parametrize("actor,message", [
        pytest.param("r_member", r"Your role in Reseller does not allow this \(create and manage subaccounts\)",
                     id="member_of_the_parent"),
        pytest.param("r_viewer", r"Your role in Reseller does not allow this \(create and manage subaccounts\)",
                     id="viewer_of_the_parent"),
        pytest.param("a_owner", NO_ACCESS, id="the_subaccounts_own_owner"),
        pytest.param("b_owner", NO_ACCESS, id="sibling_owner"),
        pytest.param("o_owner", NO_ACCESS, id="other_tenant"),
    ])
    def test_only_subaccount_managers_of_the_parent_set_a_subaccounts_access(self, tree, actor, message):
        refused(lambda: account_services.subaccount_set_access(account=tree.alpha, matrix=NOTHING,
                                                               by=who(tree, actor)),
                PermissionDenied, message)

    def test_a_parent_cannot_give_a_child_more_than_it_has_itself(self, tree):
        cap_subaccount(tree.alpha, billing="read")
        grandchild = AccountFactory(parent=tree.alpha, name="Alpha one")
        refused(lambda: account_services.subaccount_set_access(account=grandchild, matrix={"billing": "full"},
                                                               by=fresh(tree.r_owner)),
                GrantRefused, r"cannot grant more than you hold yourself: Billing\.")

    def test_nobody_gives_a_subaccount_more_access_than_they_hold(self, ag):
        cap_client(ag, billing="none")
        refused(lambda: account_services.subaccount_set_access(account=ag.sub, matrix={"billing": "read"},
                                                               by=fresh(ag.c_admin)),
                GrantRefused, r"cannot grant more than you hold yourself: Billing\.")

    def test_an_agency_user_cannot_give_a_subaccount_more_than_agency_admin_holds(self, ag):
        refused(lambda: account_services.subaccount_set_access(account=ag.sub, matrix={"billing": "full"},
                                                               by=fresh(ag.ax_admin)),
                GrantRefused, r"cannot grant more than you hold yourself: Billing\.")

    # subaccount_set_limits
    def test_a_subaccount_manager_of_the_parent_sets_a_subaccounts_limits(self, tree):
        succeeds(lambda: account_services.subaccount_set_limits(account=tree.alpha, limits={"agents": 5},
                                                                by=fresh(tree.r_admin)))
        tree.alpha.refresh_from_db()
        assert tree.alpha.limit_agents == 5

    @pytest.mark.parametrize("actor,message", [
        pytest.param("r_member", r"does not allow this \(create and manage subaccounts\)", id="member_of_the_parent"),
        pytest.param("r_viewer", r"does not allow this \(create and manage subaccounts\)", id="viewer_of_the_parent"),
        pytest.param("a_owner", NO_ACCESS, id="the_subaccounts_own_owner"),
        pytest.param("b_owner", NO_ACCESS, id="sibling_owner"),
        pytest.param("o_owner", NO_ACCESS, id="other_tenant"),
    ])
    def test_only_subaccount_managers_of_the_parent_set_a_subaccounts_limits(self, tree, actor, message):
        refused(lambda: account_services.subaccount_set_limits(account=tree.alpha, limits={"agents": 500},
                                                               by=who(tree, actor)),
                PermissionDenied, message)

    def test_a_subaccount_gets_no_higher_limit_than_its_parent_has_itself(self, tree):
        account_services.subaccount_set_limits(account=tree.alpha, limits={"agents": 5}, by=None)
        grandchild = AccountFactory(parent=tree.alpha, name="Alpha one")
        refused(lambda: account_services.subaccount_set_limits(account=grandchild, limits={"agents": 10},
                                                               by=fresh(tree.a_admin)),
                GrantRefused, r"A subaccount cannot get more than this account has itself: agents at most 5\.")

    # subaccount_set_defaults
    def test_a_subaccount_manager_sets_the_defaults_for_new_subaccounts(self, tree):
        succeeds(lambda: account_services.subaccount_set_defaults(account=tree.root, matrix={"billing": "none"},
                                                                  limits={"agents": 3}, by=fresh(tree.r_admin)))
        tree.root.refresh_from_db()
        assert tree.root.default_limit_agents == 3 and tree.root.default_access_categories == {"billing": "none"}

    @pytest.mark.parametrize("actor,account,message", [
        pytest.param("r_member", "root", r"does not allow this \(create and manage subaccounts\)", id="member"),
        pytest.param("r_viewer", "root", r"does not allow this \(create and manage subaccounts\)", id="viewer"),
        pytest.param("a_owner", "root", NO_ACCESS, id="subaccount_owner_on_the_parent"),
        pytest.param("b_owner", "alpha", NO_ACCESS, id="sibling_owner"),
        pytest.param("o_owner", "root", NO_ACCESS, id="other_tenant"),
    ])
    def test_only_subaccount_managers_set_the_defaults_for_new_subaccounts(self, tree, actor, account, message):
        refused(lambda: account_services.subaccount_set_defaults(account=getattr(tree, account), matrix=NOTHING,
                                                                 limits={"agents": 3}, by=who(tree, actor)),
                PermissionDenied, message)

    def test_defaults_never_give_more_than_the_account_has_itself(self, tree):
        cap_subaccount(tree.alpha, billing="read")
        refused(lambda: account_services.subaccount_set_defaults(account=tree.alpha, matrix={"billing": "full"},
                                                                 limits={}, by=fresh(tree.r_owner)),
                GrantRefused, r"cannot grant more than you hold yourself: Billing\.")

    def test_defaults_never_give_more_than_the_setter_holds(self, ag):
        cap_client(ag, billing="none")
        refused(lambda: account_services.subaccount_set_defaults(account=ag.client, matrix={"billing": "read"},
                                                                 limits={}, by=fresh(ag.c_admin)),
                GrantRefused, r"cannot grant more than you hold yourself: Billing\.")

    def test_default_limits_never_exceed_the_accounts_own(self, tree):
        account_services.subaccount_set_limits(account=tree.alpha, limits={"agents": 5}, by=None)
        refused(lambda: account_services.subaccount_set_defaults(account=tree.alpha, matrix={},
                                                                 limits={"agents": 10}, by=fresh(tree.a_admin)),
                GrantRefused, r"agents at most 5\.")

    # subaccount_set_status
    def test_a_subaccount_manager_of_the_parent_suspends_a_subaccount(self, tree):
        succeeds(lambda: account_services.subaccount_set_status(account=tree.alpha, suspended=True,
                                                                by=fresh(tree.r_admin)))
        tree.alpha.refresh_from_db()
        assert tree.alpha.is_suspended

    @pytest.mark.parametrize("actor,message", [
        pytest.param("r_member", r"does not allow this \(create and manage subaccounts\)", id="member_of_the_parent"),
        pytest.param("r_viewer", r"does not allow this \(create and manage subaccounts\)", id="viewer_of_the_parent"),
        pytest.param("a_owner", NO_ACCESS, id="the_subaccounts_own_owner"),
        pytest.param("b_owner", NO_ACCESS, id="sibling_owner"),
        pytest.param("o_owner", NO_ACCESS, id="other_tenant"),
    ])
    def test_only_subaccount_managers_of_the_parent_suspend_a_subaccount(self, tree, actor, message):
        refused(lambda: account_services.subaccount_set_status(account=tree.alpha, suspended=True,
                                                               by=who(tree, actor)),
                PermissionDenied, message)

    def test_a_suspended_subaccounts_own_owner_cannot_reactivate_it(self, tree):
        account_services.subaccount_set_status(account=tree.alpha, suspended=True, by=None)
        tree.alpha.refresh_from_db()
        refused(lambda: account_services.subaccount_set_status(account=tree.alpha, suspended=False,
                                                               by=fresh(tree.a_owner)),
                PermissionDenied, NO_ACCESS)


    # subaccount_move: subaccount management on the current parent and on the new one
    def test_a_subaccount_manager_of_both_parents_moves_a_subaccount(self, tree):
        child = AccountFactory(parent=tree.alpha, name="Alpha one")
        succeeds(lambda: account_services.subaccount_move(account=child, new_parent=tree.beta,
                                                          by=fresh(tree.r_admin)))
        assert Account.objects.get(pk=child.pk).parent_id == tree.beta.pk

    @pytest.mark.parametrize("actor,message", [
        pytest.param("r_member", r"does not allow this \(create and manage subaccounts\)", id="member_of_the_root"),
        pytest.param("r_viewer", r"does not allow this \(create and manage subaccounts\)", id="viewer_of_the_root"),
        pytest.param("a_admin", NO_ACCESS, id="admin_of_the_old_parent_only"),
        pytest.param("b_owner", NO_ACCESS, id="owner_of_the_new_parent_only"),
        pytest.param("o_owner", NO_ACCESS, id="other_tenant"),
    ])
    def test_only_subaccount_managers_of_both_parents_move_a_subaccount(self, tree, actor, message):
        child = AccountFactory(parent=tree.alpha, name="Alpha one")
        refused(lambda: account_services.subaccount_move(account=child, new_parent=tree.beta, by=who(tree, actor)),
                PermissionDenied, message)

    def test_a_subaccounts_owner_cannot_move_it_under_a_sibling(self, tree):
        refused(lambda: account_services.subaccount_move(account=tree.alpha, new_parent=tree.beta,
                                                         by=fresh(tree.a_owner)),
                PermissionDenied, NO_ACCESS)

# --- members/services.py ------------------------------------------------------------------------------------------

class TestMemberServices:
    # membership_add
    def test_a_member_manager_adds_a_person(self, tree):
        person = UserFactory()
        succeeds(lambda: member_services.membership_add(account=tree.root, user=person, role=ADMIN,
                                                        by=fresh(tree.r_admin)))
        assert membership(person, tree.root).role == ADMIN

    def test_an_agency_user_adds_a_member_and_the_membership_says_so(self, ag):
        person = UserFactory()
        succeeds(lambda: member_services.membership_add(account=ag.client, user=person, role=MEMBER,
                                                        by=fresh(ag.ax_admin)))
        added = membership(person, ag.client)
        assert added.via_agency and added.via_grant_id == ag.grant.pk

    @pytest.mark.parametrize("actor,account,role,exc,message", [
        pytest.param("r_viewer", "root", VIEWER, GrantRefused, NOT_MEMBERS, id="viewer"),
        pytest.param("r_member", "root", VIEWER, GrantRefused, NOT_MEMBERS, id="member"),
        pytest.param("a_owner", "root", MEMBER, PermissionDenied, NO_ACCESS, id="subaccount_owner_on_the_parent"),
        pytest.param("b_owner", "alpha", MEMBER, PermissionDenied, NO_ACCESS, id="sibling_owner"),
        pytest.param("o_owner", "root", MEMBER, PermissionDenied, NO_ACCESS, id="other_tenant"),
        pytest.param("r_admin", "root", OWNER, GrantRefused, NOT_OWNER_ROLE, id="admin_gives_owner"),
        pytest.param("r_admin", "alpha", AGENCY_ADMIN, GrantRefused, r"Only the Owner or an Admin of Alpha brings",
                     id="inherited_admin_brings_an_agency_in"),
    ])
    def test_nobody_adds_a_role_they_may_not_give(self, tree, actor, account, role, exc, message):
        person = UserFactory()
        refused(lambda: member_services.membership_add(account=getattr(tree, account), user=person, role=role,
                                                       by=who(tree, actor)),
                exc, message)

    @pytest.mark.parametrize("actor,role", [
        pytest.param("ax_admin", ADMIN, id="agency_user_gives_admin"),
        pytest.param("ax_admin", OWNER, id="agency_user_gives_owner"),
        pytest.param("ax_admin", AGENCY_ADMIN, id="agency_user_gives_agency_admin"),
        pytest.param("delegated", ADMIN, id="agency_added_admin_gives_admin"),
        pytest.param("delegated", AGENCY_ADMIN, id="agency_added_admin_gives_agency_admin"),
    ])
    def test_delegated_access_adds_members_and_viewers_only(self, ag, actor, role):
        person = UserFactory()
        refused(lambda: member_services.membership_add(account=ag.client, user=person, role=role,
                                                       by=who(ag, actor)),
                GrantRefused, DELEGATED_GIVES)

    def test_nobody_adds_a_role_that_holds_more_than_they_do(self, ag):
        cap_client(ag, billing="none")
        person = UserFactory()
        refused(lambda: member_services.membership_add(account=ag.sub, user=person, role=ADMIN, by=fresh(ag.c_admin)),
                GrantRefused, r"A Admin here would get more than you hold yourself: Billing\.")

    def test_agency_access_adds_nobody_to_the_clients_subaccounts(self, ag):
        person = UserFactory()
        refused(lambda: member_services.membership_add(account=ag.sub, user=person, role=MEMBER,
                                                       by=fresh(ag.ax_admin)),
                PermissionDenied, NO_ACCESS)

    @pytest.mark.parametrize("end", list(GONE), ids=GONE_IDS)
    def test_agency_users_add_nobody_once_the_grant_ended(self, ag, end):
        GONE[end](ag)
        person = UserFactory()
        refused(lambda: member_services.membership_add(account=ag.client, user=person, role=MEMBER,
                                                       by=fresh(ag.ax_admin)),
                PermissionDenied, NO_ACCESS)

    # membership_change_role
    def test_a_member_manager_changes_a_role_within_their_rank(self, tree):
        target = membership(tree.r_member, tree.root)
        succeeds(lambda: member_services.membership_change_role(membership=target, role=ADMIN,
                                                                by=fresh(tree.r_admin)))
        assert membership(tree.r_member, tree.root).role == ADMIN

    def test_an_agency_user_changes_a_member_to_viewer(self, ag):
        target = membership(ag.c_member, ag.client)
        succeeds(lambda: member_services.membership_change_role(membership=target, role=VIEWER,
                                                                by=fresh(ag.ax_admin)))

    @pytest.mark.parametrize("actor,target,account,role,exc,message", [
        pytest.param("r_viewer", "r_member", "root", VIEWER, GrantRefused, NOT_MEMBERS, id="viewer"),
        pytest.param("r_member", "r_viewer", "root", MEMBER, GrantRefused, NOT_MEMBERS, id="member"),
        pytest.param("r_admin", "r_member", "root", OWNER, GrantRefused, NOT_OWNER_ROLE, id="admin_promotes_to_owner"),
        pytest.param("r_admin", "r_owner", "root", ADMIN, GrantRefused,
                     r"As Admin you cannot grant the Owner role, so you cannot change or remove someone who has it",
                     id="admin_demotes_an_owner"),
        pytest.param("a_owner", "r_member", "root", VIEWER, PermissionDenied, NO_ACCESS,
                     id="subaccount_owner_on_the_parent"),
        pytest.param("b_owner", "a_member", "alpha", VIEWER, PermissionDenied, NO_ACCESS, id="sibling_owner"),
        pytest.param("o_owner", "r_member", "root", VIEWER, PermissionDenied, NO_ACCESS, id="other_tenant"),
    ])
    def test_nobody_changes_a_role_beyond_their_rank(self, tree, actor, target, account, role, exc, message):
        target_membership = membership(getattr(tree, target), getattr(tree, account))
        refused(lambda: member_services.membership_change_role(membership=target_membership, role=role,
                                                               by=who(tree, actor)),
                exc, message)

    @pytest.mark.parametrize("actor,target,role,message", [
        pytest.param("ax_admin", "c_member", ADMIN, DELEGATED_GIVES, id="agency_user_promotes_to_admin"),
        pytest.param("ax_admin", "c_member", OWNER, DELEGATED_GIVES, id="agency_user_promotes_to_owner"),
        pytest.param("ax_admin", "c_admin", MEMBER, DELEGATED_TOUCHES, id="agency_user_demotes_an_admin"),
        pytest.param("ax_admin", "c_owner", MEMBER, DELEGATED_TOUCHES, id="agency_user_demotes_the_owner"),
        pytest.param("delegated", "c_member", ADMIN, DELEGATED_GIVES, id="agency_added_admin_promotes_to_admin"),
        pytest.param("delegated", "c_admin", MEMBER, DELEGATED_TOUCHES, id="agency_added_admin_demotes_an_admin"),
    ])
    def test_delegated_access_changes_members_and_viewers_only(self, ag, actor, target, role, message):
        target_membership = membership(getattr(ag, target), ag.client)
        refused(lambda: member_services.membership_change_role(membership=target_membership, role=role,
                                                               by=who(ag, actor)),
                GrantRefused, message)

    def test_nobody_promotes_to_a_role_that_holds_more_than_they_do(self, ag):
        cap_client(ag, billing="none")
        target = membership(ag.s_member, ag.sub)
        refused(lambda: member_services.membership_change_role(membership=target, role=ADMIN, by=fresh(ag.c_admin)),
                GrantRefused, r"would get more than you hold yourself: Billing\.")

    @pytest.mark.parametrize("end", list(GONE), ids=GONE_IDS)
    def test_agency_users_change_no_role_once_the_grant_ended(self, ag, end):
        GONE[end](ag)
        target = membership(ag.c_member, ag.client)
        refused(lambda: member_services.membership_change_role(membership=target, role=VIEWER, by=fresh(ag.ax_admin)),
                PermissionDenied, NO_ACCESS)

    # ownership_transfer
    def test_an_owner_hands_ownership_on(self, tree):
        to = membership(tree.r_admin, tree.root)
        succeeds(lambda: member_services.ownership_transfer(account=tree.root, to=to, by=fresh(tree.r_owner)))
        assert membership(tree.r_admin, tree.root).role == OWNER
        assert membership(tree.r_owner, tree.root).role == ADMIN

    def test_agency_settings_never_stop_the_owner_handing_ownership_on(self, ag):
        cap_client(ag, members="none", settings="none")
        to = membership(ag.c_admin, ag.client)
        succeeds(lambda: member_services.ownership_transfer(account=ag.client, to=to, by=fresh(ag.c_owner)))

    @pytest.mark.parametrize("world,actor,account,to", [
        pytest.param("tree", "r_admin", "root", "r_member", id="admin"),
        pytest.param("tree", "r_owner", "alpha", "a_admin", id="owner_of_the_parent_on_a_subaccount"),
        pytest.param("tree", "a_owner", "root", "r_member", id="subaccount_owner_on_the_parent"),
        pytest.param("tree", "o_owner", "root", "r_admin", id="other_tenant"),
        pytest.param("ag", "ax_admin", "client", "c_member", id="agency_user"),
    ])
    def test_only_a_direct_owner_transfers_ownership(self, request, world, actor, account, to):
        w = request.getfixturevalue(world)
        target = membership(getattr(w, to), getattr(w, account))
        refused(lambda: member_services.ownership_transfer(account=getattr(w, account), to=target,
                                                           by=who(w, actor)),
                PermissionDenied, r"^Only an Owner of this account can transfer ownership\.$")

    def test_an_owner_an_agency_user_created_cannot_hand_ownership_on(self, ag):
        agency_made_owner = UserFactory()
        member_services.membership_add(account=ag.client, user=agency_made_owner, role=OWNER, by=None,
                                       via_agency=True, via_grant=ag.grant)
        to = membership(ag.c_admin, ag.client)
        refused(lambda: member_services.ownership_transfer(account=ag.client, to=to, by=fresh(agency_made_owner)),
                GrantRefused, DELEGATED_GIVES)

    def test_people_who_joined_through_an_agency_are_never_promoted_to_owner(self, ag):
        target = membership(ag.delegated, ag.client)
        refused(lambda: member_services.membership_change_role(membership=target, role=OWNER, by=fresh(ag.c_owner)),
                ValidationError, r"People who joined through an agency cannot become Owner")

    def test_people_who_joined_through_an_agency_never_become_owner(self, ag):
        to = membership(ag.delegated, ag.client)
        refused(lambda: member_services.ownership_transfer(account=ag.client, to=to, by=fresh(ag.c_owner)),
                ValidationError, r"People who joined through an agency cannot become Owner")

    # membership_remove
    def test_a_member_manager_removes_a_person_and_anyone_may_leave(self, tree):
        succeeds(lambda: member_services.membership_remove(membership=membership(tree.r_member, tree.root),
                                                           by=fresh(tree.r_admin)))
        succeeds(lambda: member_services.membership_remove(membership=membership(tree.r_viewer, tree.root),
                                                           by=fresh(tree.r_viewer)))
        assert not Membership.objects.filter(user__in=[tree.r_member, tree.r_viewer]).exists()

    def test_an_agency_user_removes_a_member(self, ag):
        succeeds(lambda: member_services.membership_remove(membership=membership(ag.c_member, ag.client),
                                                           by=fresh(ag.ax_admin)))

    @pytest.mark.parametrize("actor,target,account,exc,message", [
        pytest.param("r_viewer", "r_member", "root", GrantRefused, NOT_MEMBERS, id="viewer"),
        pytest.param("r_member", "r_viewer", "root", GrantRefused, NOT_MEMBERS, id="member"),
        pytest.param("r_admin", "r_owner", "root", GrantRefused, r"so you cannot change or remove someone who has it",
                     id="admin_removes_an_owner"),
        pytest.param("a_owner", "r_member", "root", PermissionDenied, NO_ACCESS, id="subaccount_owner_on_the_parent"),
        pytest.param("b_owner", "a_member", "alpha", PermissionDenied, NO_ACCESS, id="sibling_owner"),
        pytest.param("o_owner", "r_member", "root", PermissionDenied, NO_ACCESS, id="other_tenant"),
    ])
    def test_nobody_removes_someone_beyond_their_rank(self, tree, actor, target, account, exc, message):
        target_membership = membership(getattr(tree, target), getattr(tree, account))
        refused(lambda: member_services.membership_remove(membership=target_membership, by=who(tree, actor)),
                exc, message)

    @pytest.mark.parametrize("actor,target", [
        pytest.param("ax_admin", "c_admin", id="agency_user_removes_an_admin"),
        pytest.param("ax_admin", "c_owner", id="agency_user_removes_the_owner"),
        pytest.param("delegated", "c_admin", id="agency_added_admin_removes_an_admin"),
    ])
    def test_delegated_access_removes_members_and_viewers_only(self, ag, actor, target):
        target_membership = membership(getattr(ag, target), ag.client)
        refused(lambda: member_services.membership_remove(membership=target_membership, by=who(ag, actor)),
                GrantRefused, DELEGATED_TOUCHES)

    @pytest.mark.parametrize("end", list(GONE), ids=GONE_IDS)
    def test_agency_users_remove_nobody_once_the_grant_ended(self, ag, end):
        GONE[end](ag)
        target = membership(ag.c_member, ag.client)
        refused(lambda: member_services.membership_remove(membership=target, by=fresh(ag.ax_admin)),
                PermissionDenied, NO_ACCESS)

    def test_removing_someone_below_too_needs_rank_there(self, tree, make_member):
        person = make_member(tree.root, MEMBER)
        make_member(tree.alpha, OWNER, user=person)
        top, below = membership(person, tree.root), membership(person, tree.alpha)
        refused(lambda: member_services.membership_remove(membership=top, also=[below], by=fresh(tree.r_admin)),
                GrantRefused, r"As Admin you cannot grant the Owner role, so you cannot change or remove")

    def test_only_the_same_persons_memberships_below_are_removed_with_it(self, tree):
        top, stranger = membership(tree.r_member, tree.root), membership(tree.a_member, tree.alpha)
        refused(lambda: member_services.membership_remove(membership=top, also=[stranger], by=fresh(tree.r_owner)),
                ValidationError, r"Only the same person's memberships in subaccounts below")


# --- members/invitations.py ---------------------------------------------------------------------------------------

INVITE_REFUSALS_TREE = [
    pytest.param("r_viewer", "root", MEMBER, PermissionDenied, NOT_INVITING, id="viewer"),
    pytest.param("r_member", "root", MEMBER, PermissionDenied, NOT_INVITING, id="member"),
    pytest.param("a_owner", "root", MEMBER, PermissionDenied, NO_ACCESS, id="subaccount_owner_on_the_parent"),
    pytest.param("b_owner", "alpha", MEMBER, PermissionDenied, NO_ACCESS, id="sibling_owner"),
    pytest.param("o_owner", "root", MEMBER, PermissionDenied, NO_ACCESS, id="other_tenant"),
    pytest.param("r_admin", "root", OWNER, GrantRefused, NOT_OWNER_ROLE, id="admin_invites_an_owner"),
]
INVITE_REFUSALS_AGENCY = [
    pytest.param("ax_admin", ADMIN, DELEGATED_GIVES, id="agency_user_invites_an_admin"),
    pytest.param("ax_admin", OWNER, DELEGATED_GIVES, id="agency_user_invites_an_owner"),
    pytest.param("delegated", ADMIN, DELEGATED_GIVES, id="agency_added_admin_invites_an_admin"),
    pytest.param("delegated", OWNER, DELEGATED_GIVES, id="agency_added_admin_invites_an_owner"),
]


@pytest.fixture
def pending(tree, ag):
    """Pending invitations sent by each account's Owner."""
    def invite(account, email, role, sender):
        return sent_earlier(invitations.invitation_create(account=account, email=email, role=role, by=fresh(sender)))

    return SimpleNamespace(
        root_member=invite(tree.root, "rm@example.test", MEMBER, tree.r_owner),
        root_owner=invite(tree.root, "ro@example.test", OWNER, tree.r_owner),
        client_member=invite(ag.client, "cm@example.test", MEMBER, ag.c_owner),
        client_admin=invite(ag.client, "ca@example.test", ADMIN, ag.c_owner),
    )


class TestInvitationServices:
    # invitation_create
    def test_a_member_manager_invites(self, tree):
        succeeds(lambda: invitations.invitation_create(account=tree.root, email="new@example.test", role=ADMIN,
                                                       by=fresh(tree.r_admin)))

    def test_an_agency_user_invites_a_member_and_the_invitation_says_so(self, ag):
        invitation = succeeds(lambda: invitations.invitation_create(account=ag.client, email="new@example.test",
                                                                    role=MEMBER, by=fresh(ag.ax_admin)))
        assert invitation.via_agency and invitation.via_grant_id == ag.grant.pk

    def test_the_owner_invites_an_agency_user(self, ag):
        succeeds(lambda: invitations.invitation_create(account=ag.client, email="pat@agency.test", role=AGENCY_ADMIN,
                                                       is_agency=True, by=fresh(ag.c_owner)))

    @pytest.mark.parametrize("actor,account,role,exc,message", INVITE_REFUSALS_TREE)
    def test_nobody_invites_to_a_role_they_may_not_give(self, tree, actor, account, role, exc, message):
        refused(lambda: invitations.invitation_create(account=getattr(tree, account), email="new@example.test",
                                                      role=role, by=who(tree, actor)),
                exc, message)

    @pytest.mark.parametrize("actor,role,message", INVITE_REFUSALS_AGENCY)
    def test_delegated_access_invites_members_and_viewers_only(self, ag, actor, role, message):
        refused(lambda: invitations.invitation_create(account=ag.client, email="new@example.test", role=role,
                                                      by=who(ag, actor)),
                GrantRefused, message)

    @pytest.mark.parametrize("actor", [pytest.param("ax_admin", id="agency_user"),
                                       pytest.param("delegated", id="agency_added_admin")])
    def test_delegated_access_never_brings_an_agency_in(self, ag, actor):
        refused(lambda: invitations.invitation_create(account=ag.client, email="pat@agency.test", role=AGENCY_ADMIN,
                                                      is_agency=True, by=who(ag, actor)),
                GrantRefused, DELEGATED_GIVES)

    def test_nobody_invites_to_a_role_that_holds_more_than_they_do(self, ag):
        cap_client(ag, billing="none")
        refused(lambda: invitations.invitation_create(account=ag.sub, email="new@example.test", role=ADMIN,
                                                      by=fresh(ag.c_admin)),
                GrantRefused, r"would get more than you hold yourself: Billing\.")

    def test_agency_settings_cap_the_owners_member_management_too(self, ag):
        cap_client(ag, members="read")
        refused(lambda: invitations.invitation_create(account=ag.client, email="new@example.test", role=MEMBER,
                                                      by=fresh(ag.c_owner)),
                PermissionDenied, r"Members is read-only here \(manage members and invitations\): while agency access "
                                  r"is on, Client's agency settings limit")

    @pytest.mark.parametrize("end", list(GONE), ids=GONE_IDS)
    def test_agency_users_invite_nobody_once_the_grant_ended(self, ag, end):
        GONE[end](ag)
        refused(lambda: invitations.invitation_create(account=ag.client, email="new@example.test", role=MEMBER,
                                                      by=fresh(ag.ax_admin)),
                PermissionDenied, NO_ACCESS)

    # invitations_create_bulk
    def test_a_member_manager_invites_many(self, tree):
        created = succeeds(lambda: invitations.invitations_create_bulk(
            account=tree.root, text="one@example.test\ntwo@example.test", role=MEMBER, by=fresh(tree.r_admin)))
        assert len(created) == 2

    @pytest.mark.parametrize("actor,account,role,exc,message", INVITE_REFUSALS_TREE)
    def test_nobody_bulk_invites_to_a_role_they_may_not_give(self, tree, actor, account, role, exc, message):
        refused(lambda: invitations.invitations_create_bulk(account=getattr(tree, account),
                                                            text="one@example.test\ntwo@example.test", role=role,
                                                            by=who(tree, actor)),
                exc, message)

    @pytest.mark.parametrize("actor,role,message", INVITE_REFUSALS_AGENCY)
    def test_delegated_access_bulk_invites_members_and_viewers_only(self, ag, actor, role, message):
        refused(lambda: invitations.invitations_create_bulk(account=ag.client, text="one@example.test", role=role,
                                                            by=who(ag, actor)),
                GrantRefused, message)

    @pytest.mark.parametrize("end", list(GONE), ids=GONE_IDS)
    def test_agency_users_bulk_invite_nobody_once_the_grant_ended(self, ag, end):
        GONE[end](ag)
        refused(lambda: invitations.invitations_create_bulk(account=ag.client, text="one@example.test", role=MEMBER,
                                                            by=fresh(ag.ax_admin)),
                PermissionDenied, NO_ACCESS)

    # invitation_resend / invitation_revoke
    @pytest.mark.parametrize("service", [invitations.invitation_resend, invitations.invitation_revoke],
                             ids=["resend", "revoke"])
    @pytest.mark.parametrize("actor,invitation", [
        pytest.param("r_admin", "root_member", id="admin"),
        pytest.param("ax_admin", "client_member", id="agency_user_on_a_member_invitation"),
    ])
    def test_a_member_manager_resends_or_withdraws_an_invitation(self, tree, ag, pending, service, actor, invitation):
        world = tree if actor.startswith("r_") else ag
        succeeds(lambda: service(invitation=getattr(pending, invitation), by=who(world, actor)))

    @pytest.mark.parametrize("service", [invitations.invitation_resend, invitations.invitation_revoke],
                             ids=["resend", "revoke"])
    @pytest.mark.parametrize("world,actor,invitation,exc,message", [
        pytest.param("tree", "r_viewer", "root_member", PermissionDenied, r"manage members and invitations",
                     id="viewer"),
        pytest.param("tree", "a_owner", "root_member", PermissionDenied, NO_ACCESS,
                     id="subaccount_owner_on_the_parent"),
        pytest.param("tree", "o_owner", "root_member", PermissionDenied, NO_ACCESS, id="other_tenant"),
        pytest.param("tree", "r_admin", "root_owner", GrantRefused, NOT_OWNER_ROLE, id="admin_on_an_owner_invitation"),
        pytest.param("ag", "ax_admin", "client_admin", GrantRefused, DELEGATED_GIVES,
                     id="agency_user_on_an_admin_invitation"),
        pytest.param("ag", "delegated", "client_admin", GrantRefused, DELEGATED_GIVES,
                     id="agency_added_admin_on_an_admin_invitation"),
    ])
    def test_nobody_resends_or_withdraws_an_invitation_they_could_not_send(self, request, pending, service, world,
                                                                          actor, invitation, exc, message):
        w = request.getfixturevalue(world)
        refused(lambda: service(invitation=getattr(pending, invitation), by=who(w, actor)), exc, message)

    @pytest.mark.parametrize("service", [invitations.invitation_resend, invitations.invitation_revoke],
                             ids=["resend", "revoke"])
    @pytest.mark.parametrize("end", list(GONE), ids=GONE_IDS)
    def test_agency_users_resend_or_withdraw_nothing_once_the_grant_ended(self, ag, pending, service, end):
        GONE[end](ag)
        refused(lambda: service(invitation=pending.client_member, by=fresh(ag.ax_admin)), PermissionDenied, NO_ACCESS)

    # invitation_accept / invitation_accept_signup: the acting person is the one accepting
    def test_the_invited_person_accepts(self, tree):
        person = UserFactory(email="new@example.test")
        invitation = invitations.invitation_create(account=tree.root, email="new@example.test", role=ADMIN,
                                                   by=fresh(tree.r_admin))
        succeeds(lambda: invitations.invitation_accept(invitation=invitation, user=fresh(person)))
        assert membership(person, tree.root).role == ADMIN

    def test_only_the_invited_person_accepts(self, tree):
        UserFactory(email="new@example.test")
        invitation = invitations.invitation_create(account=tree.root, email="new@example.test", role=MEMBER,
                                                   by=fresh(tree.r_admin))
        refused(lambda: invitations.invitation_accept(invitation=invitation, user=fresh(tree.o_owner)),
                ValidationError, r"This invitation is for new@example\.test, but you are signed in as")

    def test_an_invitation_dies_with_its_senders_right_to_give_the_role(self, tree):
        person = UserFactory(email="new@example.test")
        invitation = invitations.invitation_create(account=tree.root, email="new@example.test", role=ADMIN,
                                                   by=fresh(tree.r_admin))
        member_services.membership_change_role(membership=membership(tree.r_admin, tree.root), role=MEMBER,
                                               by=fresh(tree.r_owner))
        refused(lambda: invitations.invitation_accept(invitation=invitation, user=fresh(person)),
                ValidationError, r"This invitation can no longer be used: the person who sent it can no longer add")

    @pytest.mark.parametrize("end", list(GONE), ids=GONE_IDS)
    def test_an_agency_users_invitation_dies_with_the_grant(self, ag, end):
        person = UserFactory(email="new@example.test")
        invitation = invitations.invitation_create(account=ag.client, email="new@example.test", role=MEMBER,
                                                   by=fresh(ag.ax_admin))
        GONE[end](ag)
        refused(lambda: invitations.invitation_accept(invitation=invitation, user=fresh(person)),
                ValidationError, r"This invitation can no longer be used")

    def test_an_agency_user_joins_only_for_an_agency_where_they_manage_members(self, ag, make_member):
        pat = make_member(ag.agency, MEMBER, user=UserFactory(email="pat@agency.test"))
        invitation = invitations.invitation_create(account=ag.client, email="pat@agency.test", role=AGENCY_ADMIN,
                                                   is_agency=True, by=fresh(ag.c_owner))
        refused(lambda: invitations.invitation_accept(invitation=invitation, user=fresh(pat), agency_account=ag.agency),
                ValidationError, r"Choose the agency account you work for")

    def test_a_new_person_signs_up_from_an_invitation(self, tree):
        invitation = invitations.invitation_create(account=tree.root, email="new@example.test", role=MEMBER,
                                                   by=fresh(tree.r_admin))
        succeeds(lambda: invitations.invitation_accept_signup(invitation=invitation, name="New",
                                                              password="a-good-long-secret"))

    def test_a_new_person_cannot_sign_up_through_an_invitation_whose_sender_lost_the_right(self, tree):
        invitation = invitations.invitation_create(account=tree.root, email="new@example.test", role=ADMIN,
                                                   by=fresh(tree.r_admin))
        member_services.membership_change_role(membership=membership(tree.r_admin, tree.root), role=VIEWER,
                                               by=fresh(tree.r_owner))
        refused(lambda: invitations.invitation_accept_signup(invitation=invitation, name="New",
                                                             password="a-good-long-secret"),
                ValidationError, r"This invitation can no longer be used")


# --- agency/services.py -------------------------------------------------------------------------------------------

@pytest.fixture
def request_z(ag, make_member):
    """Agency Z asks Client for agency access (pending)."""
    agency_z = AccountFactory(name="Agency Z")
    az_admin = make_member(agency_z, ADMIN)
    grant = agency_services.access_request(agency=agency_z, client=ag.client, by=fresh(az_admin))
    return SimpleNamespace(agency=agency_z, admin=az_admin, grant=grant)


NON_GOVERNORS = [
    pytest.param("ax_admin", id="agency_user"),
    pytest.param("ax_member", id="agency_user_without_member_management_in_the_agency"),
    pytest.param("delegated", id="admin_added_through_an_agency"),
    pytest.param("c_member", id="member"),
    pytest.param("c_viewer", id="viewer"),
    pytest.param("o_owner", id="other_tenant"),
    pytest.param("ay_admin", id="another_agencys_admin"),
]


class TestAgencyServices:
    # access_request
    def test_an_agency_admin_asks_for_access(self, ag, make_member):
        prospect = AccountFactory(name="Prospect")
        succeeds(lambda: agency_services.access_request(agency=ag.agency, client=prospect, by=fresh(ag.ax_admin)))

    @pytest.mark.parametrize("actor", [
        pytest.param("ax_member", id="member_of_the_agency"),
        pytest.param("c_owner", id="client_owner_for_an_agency_they_are_not_in"),
        pytest.param("o_owner", id="other_tenant"),
    ])
    def test_only_the_agencys_member_managers_ask_for_access(self, ag, actor):
        prospect = AccountFactory(name="Prospect")
        refused(lambda: agency_services.access_request(agency=ag.agency, client=prospect, by=who(ag, actor)),
                PermissionDenied, NOT_AGENCY_MANAGER)

    # access_decide
    @pytest.mark.parametrize("approve", [True, False], ids=["approve", "decline"])
    @pytest.mark.parametrize("actor", ["c_owner", "c_admin"])
    def test_the_clients_owner_or_admin_decides(self, ag, request_z, approve, actor):
        grant = succeeds(lambda: agency_services.access_decide(grant=request_z.grant, approve=approve,
                                                               by=who(ag, actor)))
        assert grant.status == ("active" if approve else "declined")

    def test_agency_settings_never_stop_the_owner_deciding(self, ag, request_z):
        cap_client(ag, **{k: "none" for k in ("agents", "conversations", "contacts", "settings", "members",
                                              "subaccounts", "trust_center", "developer_tools", "billing", "usage")})
        succeeds(lambda: agency_services.access_decide(grant=request_z.grant, approve=True, by=fresh(ag.c_owner)))

    @pytest.mark.parametrize("approve", [True, False], ids=["approve", "decline"])
    @pytest.mark.parametrize("actor", [*NON_GOVERNORS, pytest.param("requester", id="the_requesting_agency_admin")])
    def test_only_the_clients_governors_decide_on_agency_access(self, ag, request_z, approve, actor):
        by = fresh(request_z.admin) if actor == "requester" else who(ag, actor)
        refused(lambda: agency_services.access_decide(grant=request_z.grant, approve=approve, by=by,
                                                      matrix=NOTHING if approve else None),
                PermissionDenied, NOT_GOVERNOR)

    @pytest.mark.parametrize("approve", [True, False], ids=["approve", "decline"])
    def test_an_admin_without_member_management_does_not_govern_agency_access(self, ag, request_z, approve):
        cap_client(ag, members="read")
        refused(lambda: agency_services.access_decide(grant=request_z.grant, approve=approve, by=fresh(ag.c_admin),
                                                      matrix=NOTHING if approve else None),
                PermissionDenied, NOT_GOVERNOR)

    def test_approval_never_gives_the_agency_more_than_the_approver_holds(self, ag, request_z):
        cap_client(ag, billing="none")
        refused(lambda: agency_services.access_decide(grant=request_z.grant, approve=True, by=fresh(ag.c_admin),
                                                      matrix={"billing": "read"}),
                GrantRefused, r"cannot grant more than you hold yourself: Billing\.")

    def test_approval_never_gives_the_agency_more_than_agency_admin(self, ag, request_z):
        refused(lambda: agency_services.access_decide(grant=request_z.grant, approve=True, by=fresh(ag.c_owner),
                                                      matrix={"billing": "full"}),
                GrantRefused, r"cannot grant more than you hold yourself: Billing\.")

    # access_update
    @pytest.mark.parametrize("actor", ["c_owner", "c_admin"])
    def test_the_clients_owner_or_admin_narrows_and_extends(self, ag, actor):
        until = timezone.now() + datetime.timedelta(days=30)
        succeeds(lambda: agency_services.access_update(grant=ag.grant, by=who(ag, actor), expires_at=until,
                                                       matrix={"developer_tools": "none"}))
        assert not holds(ag.ax_admin, ag.client, "view_developer_tools")

    @pytest.mark.parametrize("actor", NON_GOVERNORS)
    def test_only_the_clients_governors_narrow_or_extend_agency_access(self, ag, actor):
        until = timezone.now() + datetime.timedelta(days=365)
        refused(lambda: agency_services.access_update(grant=ag.grant, by=who(ag, actor), expires_at=until,
                                                      matrix=NOTHING),
                PermissionDenied, NOT_GOVERNOR)

    def test_an_agency_user_cannot_extend_its_own_expired_access(self, ag):
        expire(ag)
        until = timezone.now() + datetime.timedelta(days=365)
        refused(lambda: agency_services.access_update(grant=ag.grant, by=fresh(ag.ax_admin), expires_at=until,
                                                      matrix=NOTHING),
                PermissionDenied, NOT_GOVERNOR)

    def test_narrowing_never_gives_the_agency_more_than_the_governor_holds(self, ag):
        cap_client(ag, billing="none")
        refused(lambda: agency_services.access_update(grant=ag.grant, by=fresh(ag.c_admin), expires_at=None,
                                                      matrix={"billing": "read"}),
                GrantRefused, r"cannot grant more than you hold yourself: Billing\.")

    def test_narrowing_never_gives_the_agency_more_than_agency_admin(self, ag):
        refused(lambda: agency_services.access_update(grant=ag.grant, by=fresh(ag.c_owner), expires_at=None,
                                                      matrix={"billing": "full"}),
                GrantRefused, r"cannot grant more than you hold yourself: Billing\.")

    # access_revoke
    @pytest.mark.parametrize("actor", [pytest.param("c_owner", id="client_owner"),
                                       pytest.param("c_admin", id="client_admin"),
                                       pytest.param("ax_admin", id="the_agencys_admin")])
    def test_the_client_or_the_agency_ends_agency_access(self, ag, actor):
        succeeds(lambda: agency_services.access_revoke(grant=ag.grant, by=who(ag, actor)))
        assert resolve_access(fresh(ag.ax_member), ag.client) is None

    def test_agency_settings_never_stop_the_owner_revoking(self, ag):
        cap_client(ag, members="none", settings="none")
        succeeds(lambda: agency_services.access_revoke(grant=ag.grant, by=fresh(ag.c_owner)))

    @pytest.mark.parametrize("actor", [p for p in NON_GOVERNORS if p.values[0] != "ax_admin"])
    def test_only_the_clients_governors_or_the_agencys_admins_end_agency_access(self, ag, actor):
        refused(lambda: agency_services.access_revoke(grant=ag.grant, by=who(ag, actor)),
                PermissionDenied, r"Only the client's Owner or Admins, or the agency's admins, can end agency access\.")

    def test_revoking_removes_only_members_the_agency_added(self, ag):
        refused(lambda: agency_services.access_revoke(grant=ag.grant, by=fresh(ag.c_owner),
                                                      remove=[membership(ag.c_member, ag.client)]),
                ValidationError, r"Only members that the agency's people added can be removed with its access\.")

    # agency_member_add
    def test_an_agency_admin_gives_another_of_its_people_access(self, ag, make_member):
        colleague = make_member(ag.agency, MEMBER)
        succeeds(lambda: agency_services.agency_member_add(grant=ag.grant, user=colleague, by=fresh(ag.ax_admin)))
        assert membership(colleague, ag.client).is_agency

    @pytest.mark.parametrize("actor", [
        pytest.param("ax_member", id="member_of_the_agency"),
        pytest.param("c_owner", id="client_owner"),
        pytest.param("delegated", id="admin_added_through_an_agency"),
        pytest.param("o_owner", id="other_tenant"),
        pytest.param("ay_admin", id="another_agencys_admin"),
    ])
    def test_only_the_agencys_member_managers_give_its_people_access(self, ag, make_member, actor):
        colleague = make_member(ag.agency, MEMBER)
        refused(lambda: agency_services.agency_member_add(grant=ag.grant, user=colleague, by=who(ag, actor)),
                PermissionDenied, NOT_AGENCY_MANAGER)

    @pytest.mark.parametrize("end", list(ENDED), ids=ENDED_IDS)
    def test_nobody_joins_through_an_ended_grant(self, ag, make_member, end):
        colleague = make_member(ag.agency, MEMBER)
        ENDED[end](ag)
        refused(lambda: agency_services.agency_member_add(grant=ag.grant, user=colleague, by=fresh(ag.ax_admin)),
                ValidationError, r"Access to Client is not active\.")

    def test_only_the_agencys_own_people_join_through_its_grant(self, ag):
        refused(lambda: agency_services.agency_member_add(grant=ag.grant, user=ag.o_owner, by=fresh(ag.ax_admin)),
                ValidationError, r"is not a member of Agency X\.")

    # agency_member_remove
    @pytest.mark.parametrize("actor", [pytest.param("c_owner", id="client_owner"),
                                       pytest.param("c_admin", id="client_admin"),
                                       pytest.param("ax_admin", id="the_agencys_admin")])
    def test_the_client_or_the_agency_removes_an_agency_user(self, ag, actor):
        succeeds(lambda: agency_services.agency_member_remove(membership=membership(ag.ax_member, ag.client),
                                                              by=who(ag, actor)))

    @pytest.mark.parametrize("actor", [
        pytest.param("ax_member", id="agency_user_without_member_management_in_the_agency"),
        pytest.param("delegated", id="admin_added_through_an_agency"),
        pytest.param("c_member", id="member"),
        pytest.param("c_viewer", id="viewer"),
        pytest.param("o_owner", id="other_tenant"),
        pytest.param("ay_admin", id="another_agencys_admin"),
    ])
    def test_only_the_clients_governors_or_the_agencys_admins_remove_an_agency_user(self, ag, actor):
        target = membership(ag.ax_admin, ag.client)
        refused(lambda: agency_services.agency_member_remove(membership=target, by=who(ag, actor)),
                PermissionDenied, NOT_AGENCY_MANAGER)

    # settings_update
    @pytest.mark.parametrize("actor", ["c_owner", "c_admin"])
    def test_the_clients_owner_or_admin_sets_the_agency_settings(self, ag, actor):
        succeeds(lambda: agency_services.settings_update(client=ag.client, matrix={"agents": "read"},
                                                         by=who(ag, actor)))
        assert not holds(ag.c_member, ag.client, "manage_agents")

    def test_the_owner_lifts_agency_settings_that_cap_the_owner(self, ag):
        cap_client(ag, billing="none")
        succeeds(lambda: agency_services.settings_update(client=ag.client, matrix={"billing": "full"},
                                                         by=fresh(ag.c_owner)))
        assert holds(ag.c_owner, ag.client, "manage_billing")

    def test_agency_settings_never_lock_the_owner_out_of_them(self, ag):
        cap_client(ag, members="none", settings="none")
        succeeds(lambda: agency_services.settings_update(client=ag.client, matrix={}, by=fresh(ag.c_owner)))

    @pytest.mark.parametrize("actor", NON_GOVERNORS)
    def test_only_the_clients_governors_edit_agency_settings(self, ag, actor):
        refused(lambda: agency_services.settings_update(client=ag.client, matrix=NOTHING,
                                                        by=who(ag, actor)),
                PermissionDenied, NOT_GOVERNOR)

    def test_an_admin_without_member_management_does_not_edit_agency_settings(self, ag):
        cap_client(ag, members="read")
        refused(lambda: agency_services.settings_update(client=ag.client, matrix=NOTHING,
                                                        by=fresh(ag.c_admin)),
                PermissionDenied, NOT_GOVERNOR)

    def test_agency_settings_never_give_more_than_the_governor_holds(self, ag):
        cap_client(ag, billing="none")
        refused(lambda: agency_services.settings_update(client=ag.client, matrix={"billing": "full"},
                                                        by=fresh(ag.c_admin)),
                GrantRefused, r"cannot grant more than you hold yourself: Billing\.")

    # baseline_update
    def test_an_agency_admin_sets_the_baseline_for_new_clients(self, ag):
        succeeds(lambda: agency_services.baseline_update(agency=ag.agency, matrix={"billing": "none"},
                                                         by=fresh(ag.ax_admin), apply_to_existing=False))
        assert AgencyBaseline.objects.get(account=ag.agency).matrix == {"billing": "none"}

    @pytest.mark.parametrize("actor", [
        pytest.param("ax_member", id="member_of_the_agency"),
        pytest.param("c_owner", id="client_owner"),
        pytest.param("o_owner", id="other_tenant"),
        pytest.param("ay_admin", id="another_agencys_admin"),
    ])
    def test_only_the_agencys_member_managers_set_its_baseline(self, ag, actor):
        refused(lambda: agency_services.baseline_update(agency=ag.agency, matrix=NOTHING,
                                                        by=who(ag, actor), apply_to_existing=True),
                PermissionDenied, NOT_AGENCY_MANAGER)

    def test_the_baseline_never_gives_more_than_its_setter_holds(self, tree):
        cap_subaccount(tree.alpha, billing="read")
        refused(lambda: agency_services.baseline_update(agency=tree.alpha, matrix={"billing": "full"},
                                                        by=fresh(tree.a_admin), apply_to_existing=False),
                GrantRefused, r"cannot grant more than you hold yourself: Billing\.")

    def test_an_agency_cannot_rewrite_a_clients_agency_settings_through_its_baseline(self, ag):
        """DESIGN rule 8: a client's agency settings are governed by its Owner and non-agency Admins only."""
        cap_client(ag, billing="none")
        try:
            changed = agency_services.baseline_update(agency=ag.agency, matrix={"billing": "full"},
                                                      by=fresh(ag.ax_admin), apply_to_existing=True)
        except PermissionDenied:
            changed = []
        assert changed == []
        assert AgencySettings.objects.get(account=ag.client).matrix == {"billing": "none"}
        assert not holds(ag.c_admin, ag.client, "view_billing")

    # access_activate_for_invitation: invitation_accept calls it; what counts is who sent the invitation
    def test_an_agency_invitation_from_a_governor_turns_agency_access_on(self, ag, make_member):
        agency_z = AccountFactory(name="Agency Z")
        pat = make_member(agency_z, ADMIN)
        grant = succeeds(lambda: agency_services.access_activate_for_invitation(
            client=ag.client, agency=agency_z, by=fresh(pat), granted_by=fresh(ag.c_owner)))
        assert grant.status == AgencyGrant.Status.ACTIVE

    @pytest.mark.parametrize("sender", [pytest.param(None, id="nobody"),
                                        pytest.param("c_member", id="a_member"),
                                        pytest.param("delegated", id="an_admin_added_through_an_agency"),
                                        pytest.param("ax_admin", id="an_agency_user")])
    def test_only_an_invitation_from_a_governor_turns_agency_access_on(self, ag, sender):
        agency_z = AccountFactory(name="Agency Z")
        refused(lambda: agency_services.access_activate_for_invitation(
            client=ag.client, agency=agency_z, by=fresh(ag.ax_admin),
            granted_by=who(ag, sender) if sender else None),
                PermissionDenied, r"^Only the Owner or an Admin of Client brings an agency in\.$")


class TestPartialMatrices:
    """A category left out of a matrix is uncapped where the matrix is applied (``cap``), so check_grant must count it
    at its top level (or, for an agency grant, at Agency Admin's) when comparing it with the granter's own: otherwise a
    capped granter lifts a cap they are under by leaving the category out."""

    def test_agency_settings_left_out_never_lift_the_governors_own_cap(self, ag):
        cap_client(ag, billing="none")
        refused(lambda: agency_services.settings_update(client=ag.client, matrix={"agents": "full"},
                                                        by=fresh(ag.c_admin)),
                GrantRefused, r"cannot grant more than you hold yourself: Billing\.")

    def test_subaccount_access_left_out_never_gives_more_than_the_setter_holds(self, ag):
        cap_client(ag, billing="none")
        cap_subaccount(ag.sub, billing="none")
        refused(lambda: account_services.subaccount_set_access(account=ag.sub, matrix={"agents": "full"},
                                                               by=fresh(ag.c_admin)),
                GrantRefused, r"cannot grant more than you hold yourself: Billing\.")

    def test_defaults_left_out_never_give_more_than_the_setter_holds(self, ag):
        cap_client(ag, billing="none")
        refused(lambda: account_services.subaccount_set_defaults(account=ag.client, matrix={"agents": "full"},
                                                                 limits={}, by=fresh(ag.c_admin)),
                GrantRefused, r"cannot grant more than you hold yourself: Billing\.")

    def test_a_grant_left_unnarrowed_never_gives_the_agency_more_than_the_governor_holds(self, ag):
        agency_services.access_update(grant=ag.grant, by=fresh(ag.c_owner), expires_at=None,
                                      matrix={"billing": "none"})
        cap_client(ag, billing="none")
        refused(lambda: agency_services.access_update(grant=ag.grant, by=fresh(ag.c_admin), expires_at=None,
                                                      matrix={}),
                GrantRefused, r"cannot grant more than you hold yourself: Billing\.")
        assert not holds(ag.ax_admin, ag.client, "view_billing")

    def test_approving_without_narrowing_never_gives_the_agency_more_than_the_approver_holds(self, ag, request_z):
        """The Approve button sends no matrix (agency/views.py DecideView)."""
        cap_client(ag, billing="none")
        refused(lambda: agency_services.access_decide(grant=request_z.grant, approve=True, by=fresh(ag.c_admin)),
                GrantRefused, r"cannot grant more than you hold yourself: Billing\.")


# --- workspace/services.py ----------------------------------------------------------------------------------------

def _stock(account) -> SimpleNamespace:
    """An agent and a contact in use by a conversation, and a spare agent and contact (deletable)."""
    agent = workspace_services.agent_create(account=account, by=None, name="Receptionist")
    contact = workspace_services.contact_create(account=account, by=None, name="Pat Caller",
                                                 email="pat@caller.test")
    return SimpleNamespace(
        account=account, agent=agent, contact=contact,
        spare_agent=workspace_services.agent_create(account=account, by=None, name="Spare agent"),
        spare_contact=workspace_services.contact_create(account=account, by=None, name="Spare contact",
                                                                  email="spare@caller.test"),
        conversation=workspace_services.conversation_record(
            account=account, agent=agent, contact=contact, by=None, duration_seconds=90,
            started_at=timezone.now() - datetime.timedelta(hours=2)),
    )


WORKSPACE_OPS = {
    "agent_create": lambda s, by: workspace_services.agent_create(account=s.account, by=by, name="Another agent"),
    "agent_update": lambda s, by: workspace_services.agent_update(agent=s.agent, by=by, name="Renamed agent"),
    "agent_delete": lambda s, by: workspace_services.agent_delete(agent=s.spare_agent, by=by),
    "contact_create": lambda s, by: workspace_services.contact_create(account=s.account, by=by, name="Another",
                                                                                email="another@caller.test"),
    "contact_update": lambda s, by: workspace_services.contact_update(contact=s.contact, by=by, name="Renamed"),
    "contact_delete": lambda s, by: workspace_services.contact_delete(contact=s.spare_contact, by=by),
    "conversation_record": lambda s, by: workspace_services.conversation_record(
        account=s.account, agent=s.agent, contact=s.contact, by=by, duration_seconds=60,
        started_at=timezone.now() - datetime.timedelta(hours=1)),
    "conversation_update": lambda s, by: workspace_services.conversation_update(conversation=s.conversation, by=by,
                                                                                summary="Edited"),
    "conversation_delete": lambda s, by: workspace_services.conversation_delete(conversation=s.conversation, by=by),
}
DELETES = ("agent_delete", "contact_delete", "conversation_delete")
READ_ONLY_WORK = {"agents": "read", "contacts": "read", "conversations": "read"}


@pytest.fixture
def stock(tree):
    return {"root": _stock(tree.root), "alpha": _stock(tree.alpha)}


class TestWorkspaceServices:
    @pytest.mark.parametrize("op", list(WORKSPACE_OPS))
    def test_people_with_the_permission_write(self, tree, stock, op):
        actor = tree.r_admin if op in DELETES else tree.r_member
        succeeds(lambda: WORKSPACE_OPS[op](stock["root"], fresh(actor)))

    @pytest.mark.parametrize("op", list(WORKSPACE_OPS))
    def test_a_subaccounts_caps_bind_its_own_people_not_the_parents(self, tree, stock, op):
        cap_subaccount(tree.alpha, **READ_ONLY_WORK)
        refused(lambda: WORKSPACE_OPS[op](stock["alpha"], fresh(tree.a_owner)), PermissionDenied,
                r"is read-only here \(.*\): the account above limits what Alpha's members can do")
        succeeds(lambda: WORKSPACE_OPS[op](stock["alpha"], fresh(tree.r_admin)))

    @pytest.mark.parametrize("op", list(WORKSPACE_OPS))
    @pytest.mark.parametrize("actor,where,message", [
        pytest.param("r_viewer", "root", r"^Your role in Reseller does not allow this \(", id="viewer"),
        pytest.param("a_owner", "root", NO_ACCESS, id="subaccount_owner_on_the_parent"),
        pytest.param("b_owner", "alpha", NO_ACCESS, id="sibling_owner"),
        pytest.param("o_owner", "root", NO_ACCESS, id="other_tenant"),
    ])
    def test_only_people_with_the_permission_write(self, tree, stock, op, actor, where, message):
        refused(lambda: WORKSPACE_OPS[op](stock[where], who(tree, actor)), PermissionDenied, message)

    @pytest.mark.parametrize("op", DELETES)
    def test_members_do_not_delete(self, tree, stock, op):
        refused(lambda: WORKSPACE_OPS[op](stock["root"], fresh(tree.r_member)), PermissionDenied,
                r"does not allow this \(delete ")

    @pytest.mark.parametrize("op", list(WORKSPACE_OPS))
    def test_agency_settings_cap_the_clients_owner_but_not_the_agency(self, ag, op):
        s = _stock(ag.client)
        cap_client(ag, **READ_ONLY_WORK)
        refused(lambda: WORKSPACE_OPS[op](s, fresh(ag.c_owner)), PermissionDenied,
                r"is read-only here \(.*\): while agency access is on, Client's agency settings limit what its own "
                r"members can do")
        succeeds(lambda: WORKSPACE_OPS[op](s, fresh(ag.ax_admin)))

    @pytest.mark.parametrize("op", list(WORKSPACE_OPS))
    def test_agency_access_does_not_reach_the_clients_subaccounts(self, ag, op):
        s = _stock(ag.sub)
        refused(lambda: WORKSPACE_OPS[op](s, fresh(ag.ax_admin)), PermissionDenied, NO_ACCESS)
        succeeds(lambda: WORKSPACE_OPS[op](s, fresh(ag.c_owner)))

    @pytest.mark.parametrize("op", list(WORKSPACE_OPS))
    @pytest.mark.parametrize("end", list(GONE), ids=GONE_IDS)
    def test_agency_users_write_nothing_once_the_grant_ended(self, ag, op, end):
        s = _stock(ag.client)
        GONE[end](ag)
        refused(lambda: WORKSPACE_OPS[op](s, fresh(ag.ax_admin)), PermissionDenied, NO_ACCESS)


# --- billing/services.py ------------------------------------------------------------------------------------------

def _last_period():
    return period_start(period_start() - datetime.timedelta(days=1))


class TestBillingServices:
    @pytest.mark.parametrize("actor", [pytest.param(None, id="platform"), pytest.param("staff", id="platform_staff"),
                                       pytest.param("r_admin", id="billing_manager")])
    def test_the_platform_or_a_billing_manager_closes_a_period(self, tree, actor):
        by = UserFactory(is_staff=True) if actor == "staff" else (getattr(tree, actor) if actor else None)
        invoice, created = succeeds(lambda: billing_services.invoice_close(root=tree.root, period=_last_period(),
                                                                           by=by and fresh(by)))
        assert created and invoice.account == tree.root

    @pytest.mark.parametrize("actor,message", [
        pytest.param("r_member", r"does not allow this \(manage billing\)", id="member"),
        pytest.param("r_viewer", r"does not allow this \(manage billing\)", id="viewer"),
        pytest.param("a_owner", NO_ACCESS, id="subaccount_owner_on_the_parent"),
        pytest.param("o_owner", NO_ACCESS, id="other_tenant"),
    ])
    def test_only_billing_managers_or_the_platform_close_a_period(self, tree, actor, message):
        refused(lambda: billing_services.invoice_close(root=tree.root, period=_last_period(), by=who(tree, actor)),
                PermissionDenied, message)


# --- billing/transfers.py (and agency.services.access_keep_after_transfer, which it calls) ------------------------

def start_transfer(tree, by, **kwargs):
    return transfers.transfer_start(**{"account": tree.alpha, "by": by, "billing_owner_email": tree.a_owner.email,
                                       "plan": plan("pro"), **kwargs})


TRANSFER_OUTSIDERS = [
    pytest.param("r_member", id="member_of_the_parent"),
    pytest.param("r_viewer", id="viewer_of_the_parent"),
    pytest.param("a_owner", id="the_subaccounts_own_owner"),
    pytest.param("b_owner", id="sibling_owner"),
    pytest.param("o_owner", id="other_tenant"),
]


class TestBillingTransferServices:
    # transfer_start
    def test_a_billing_and_subaccount_manager_of_the_parent_proposes_a_transfer(self, tree):
        transfer = succeeds(lambda: start_transfer(tree, fresh(tree.r_admin)))
        assert transfer.status == BillingTransfer.Status.PENDING

    @pytest.mark.parametrize("actor", TRANSFER_OUTSIDERS)
    def test_only_billing_and_subaccount_managers_of_the_parent_propose_a_transfer(self, tree, actor):
        refused(lambda: start_transfer(tree, who(tree, actor)), PermissionDenied,
                r"^Starting a billing transfer takes billing and subaccount management in Reseller; your access "
                r"there does not include both\.$")

    @pytest.mark.parametrize("actor,cap", [
        pytest.param("ax_admin", {}, id="agency_user"),
        pytest.param("c_admin", {"billing": "read"}, id="admin_capped_by_agency_settings"),
    ])
    def test_billing_is_transferred_only_by_those_who_manage_it(self, ag, make_member, actor, cap):
        sub_owner = make_member(ag.sub, OWNER)  # naming an existing Owner: only the billing rule can refuse
        if cap:
            cap_client(ag, **cap)
        refused(lambda: transfers.transfer_start(account=ag.sub, by=who(ag, actor), billing_owner_email=sub_owner.email,
                                                 plan=plan("pro")),
                PermissionDenied, r"takes billing and subaccount management in Client")

    def test_an_admin_cannot_make_a_new_owner_through_a_transfer(self, tree):
        refused(lambda: start_transfer(tree, fresh(tree.r_admin), billing_owner_email="new-boss@example.test"),
                PermissionDenied, r"^The billing owner becomes Owner of Alpha, a role you cannot give")

    def test_an_owner_makes_a_new_owner_through_a_transfer(self, tree):
        succeeds(lambda: start_transfer(tree, fresh(tree.r_owner), billing_owner_email="new-boss@example.test"))

    def test_choosing_who_keeps_agency_access_takes_member_management(self, ag, make_member):
        sub_owner = make_member(ag.sub, OWNER)
        cap_client(ag, members="read")
        refused(lambda: transfers.transfer_start(account=ag.sub, by=fresh(ag.c_admin),
                                                 billing_owner_email=sub_owner.email, plan=plan("pro"),
                                                 keep_agency_access=True, agency_people=[ag.c_owner]),
                PermissionDenied, r"Choosing who keeps access takes member management in the parent account\.")

    @pytest.mark.parametrize("person", [pytest.param("r_member", id="a_member_of_the_parent"),
                                        pytest.param("o_owner", id="another_tenants_owner")])
    def test_only_owners_and_admins_of_the_parent_keep_agency_access(self, tree, person):
        refused(lambda: start_transfer(tree, fresh(tree.r_admin), keep_agency_access=True,
                                       agency_people=[getattr(tree, person)]),
                ValidationError, r"can keep access as agency members\.$")

    def test_people_an_agency_added_never_keep_agency_access(self, ag):
        refused(lambda: transfers.transfer_start(account=ag.sub, by=fresh(ag.c_owner), billing_owner_email="x@y.test",
                                                 plan=plan("pro"), keep_agency_access=True,
                                                 agency_people=[ag.delegated]),
                ValidationError, r"can keep access as agency members\.$")

    # transfer_cancel
    def test_a_billing_and_subaccount_manager_of_the_parent_cancels_a_transfer(self, tree):
        transfer = start_transfer(tree, fresh(tree.r_owner))
        succeeds(lambda: transfers.transfer_cancel(transfer=transfer, by=fresh(tree.r_admin)))

    @pytest.mark.parametrize("actor", TRANSFER_OUTSIDERS)
    def test_only_billing_and_subaccount_managers_of_the_parent_cancel_a_transfer(self, tree, actor):
        transfer = start_transfer(tree, fresh(tree.r_owner))
        refused(lambda: transfers.transfer_cancel(transfer=transfer, by=who(tree, actor)), PermissionDenied,
                r"^Cancelling a billing transfer takes billing and subaccount management in Reseller\.$")

    # transfer_decline / transfer_accept: the acting person is the billing owner
    @pytest.mark.parametrize("service", [transfers.transfer_decline, transfers.transfer_accept],
                             ids=["decline", "accept"])
    def test_the_billing_owner_declines_or_accepts(self, tree, service):
        transfer = start_transfer(tree, fresh(tree.r_owner))
        succeeds(lambda: service(transfer=transfer, user=fresh(tree.a_owner)))

    @pytest.mark.parametrize("service", [transfers.transfer_decline, transfers.transfer_accept],
                             ids=["decline", "accept"])
    @pytest.mark.parametrize("actor", [pytest.param("r_admin", id="the_parents_admin"),
                                       pytest.param("a_member", id="another_person_of_the_subaccount"),
                                       pytest.param("o_owner", id="other_tenant")])
    def test_only_the_billing_owner_declines_or_accepts(self, tree, service, actor):
        transfer = start_transfer(tree, fresh(tree.r_owner))
        refused(lambda: service(transfer=transfer, user=who(tree, actor)), ValidationError,
                rf"^This transfer is for {re.escape(tree.a_owner.email)}, but you are signed in as ")

    @pytest.mark.parametrize("cutover", list(BillingTransfer.Cutover.values))
    def test_a_transfer_dies_with_its_starters_right_to_start_it(self, tree, cutover):
        transfer = start_transfer(tree, fresh(tree.r_admin), cutover=cutover)
        member_services.membership_change_role(membership=membership(tree.r_admin, tree.root), role=MEMBER,
                                               by=fresh(tree.r_owner))
        refused(lambda: transfers.transfer_accept(transfer=transfer, user=fresh(tree.a_owner)),
                (ValidationError, PermissionDenied), r"no longer has the rights")

    def test_a_scheduled_transfer_dies_with_its_starters_right_at_the_switch(self, tree):
        transfer = start_transfer(tree, fresh(tree.r_admin), cutover=BillingTransfer.Cutover.PERIOD_END)
        transfers.transfer_accept(transfer=transfer, user=fresh(tree.a_owner))
        member_services.membership_change_role(membership=membership(tree.r_admin, tree.root), role=MEMBER,
                                               by=fresh(tree.r_owner))
        refused(lambda: transfers.transfer_apply(transfer=transfer), ValidationError, r"no longer has the rights")

    @pytest.mark.parametrize("change", ["removed", "demoted"])
    def test_agency_access_kept_after_a_transfer_dies_with_its_source(self, tree, change):
        transfer = start_transfer(tree, fresh(tree.r_owner), keep_agency_access=True, agency_people=[tree.r_owner2])
        source = membership(tree.r_owner2, tree.root)
        if change == "removed":
            member_services.membership_remove(membership=source, by=fresh(tree.r_owner))
        else:
            member_services.membership_change_role(membership=source, role=MEMBER, by=fresh(tree.r_owner))
        try:
            transfers.transfer_accept(transfer=transfer, user=fresh(tree.a_owner))
        except (ValidationError, PermissionDenied):
            pass
        assert resolve_access(fresh(tree.r_owner2), Account.objects.get(pk=tree.alpha.pk)) is None

    # access_keep_after_transfer: only for a transfer that chose it, as it switches
    @pytest.mark.parametrize("which", ["not_yet_switching", "done_without_keeping_access"])
    def test_only_a_billing_transfer_keeps_agency_access(self, tree, which):
        keep = which == "not_yet_switching"
        transfer = start_transfer(tree, fresh(tree.r_owner), keep_agency_access=keep,
                                  agency_people=[tree.r_admin] if keep else [])
        if not keep:
            transfers.transfer_accept(transfer=transfer, user=fresh(tree.a_owner))
            transfer = BillingTransfer.objects.select_related("account", "from_root").get(pk=transfer.pk)
            assert transfer.status == BillingTransfer.Status.COMPLETED and transfer.account.is_root()
        refused(lambda: agency_services.access_keep_after_transfer(transfer=transfer, people=[tree.r_admin]),
                PermissionDenied, r"^Agency access is kept only by a billing transfer that chose it, as it switches\.$")


# --- security/services.py -----------------------------------------------------------------------------------------

def second_factor(user) -> None:
    Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={"secret": "JBSWY3DPEHPK3PXP"})


class TestSecurityServices:
    # policy_update: settings management, and access of one's own (never an agency's)
    @pytest.mark.parametrize("actor,where", [("r_admin", "root"), ("a_admin", "alpha"), ("r_owner", "alpha")])
    def test_a_settings_manager_sets_the_policy(self, tree, actor, where):
        succeeds(lambda: security_services.policy_update(account=getattr(tree, where), by=who(tree, actor),
                                                         require_mfa=SecurityPolicy.MfaScope.EVERYONE))

    @pytest.mark.parametrize("actor,where,match", [
        pytest.param("r_member", "root", r"\(edit account settings\)\.", id="member"),
        pytest.param("r_viewer", "root", r"\(edit account settings\)\.", id="viewer"),
        pytest.param("a_owner", "root", NO_ACCESS, id="upward"),
        pytest.param("b_owner", "alpha", NO_ACCESS, id="sibling"),
        pytest.param("o_owner", "root", NO_ACCESS, id="other_tenant"),
    ])
    def test_others_do_not_set_the_policy(self, tree, actor, where, match):
        refused(lambda: security_services.policy_update(account=getattr(tree, where), by=who(tree, actor),
                                                        idle_timeout_minutes=30), PermissionDenied, match)

    def test_an_agency_user_does_not_set_the_clients_policy(self, ag):
        refused(lambda: security_services.policy_update(account=ag.client, by=fresh(ag.ax_admin),
                                                        require_mfa=SecurityPolicy.MfaScope.NOBODY),
                PermissionDenied, r"^The account's own Owners and Admins set its security policy")

    # mfa_reset: an Owner, of people they outrank, never across tenants
    def test_an_owner_resets_a_members_second_factor(self, tree):
        second_factor(tree.a_member)
        succeeds(lambda: security_services.mfa_reset(membership=membership(tree.a_member, tree.alpha),
                                                     by=fresh(tree.r_owner)))

    @pytest.mark.parametrize("actor,target,where,match", [
        pytest.param("r_admin", "r_member", "root", r"^Only an Owner of this account", id="admin"),
        pytest.param("r_member", "r_viewer", "root", r"\(manage members and invitations\)\.", id="member"),
        pytest.param("a_owner", "r_member", "root", NO_ACCESS, id="upward"),
        pytest.param("b_owner", "a_member", "alpha", NO_ACCESS, id="sibling"),
        pytest.param("o_owner", "r_member", "root", NO_ACCESS, id="other_tenant"),
        pytest.param("r_owner", "r_owner2", "root", r"is an Owner: you can only reset", id="another_owner"),
        pytest.param("r_owner", "a_owner", "alpha", r"is an Owner: you can only reset", id="a_subaccount_owner"),
    ])
    def test_others_do_not_reset(self, tree, actor, target, where, match):
        second_factor(getattr(tree, target))
        refused(lambda: security_services.mfa_reset(membership=membership(getattr(tree, target), getattr(tree, where)),
                                                    by=who(tree, actor)), PermissionDenied, match)

    def test_nobody_resets_their_own_here(self, tree):
        second_factor(tree.a_admin)
        refused(lambda: security_services.mfa_reset(membership=membership(tree.a_admin, tree.alpha),
                                                    by=fresh(tree.a_admin)), (PermissionDenied, ValidationError))

    def test_never_across_tenants(self, ag):
        # The client's Owner does not reset an agency user's factor (it guards the agency's own account too).
        second_factor(ag.ax_member)
        refused(lambda: security_services.mfa_reset(membership=membership(ag.ax_member, ag.client),
                                                    by=fresh(ag.c_owner)), PermissionDenied, r"outside yours")
        # nor the platform, through this service (staff use the admin)
        refused(lambda: security_services.mfa_reset(membership=membership(ag.c_member, ag.client), by=None),
                PermissionDenied, r"^Platform staff reset second factors in the admin")



class TestStaffActingForThePlatform:
    """``staff=`` names the staff member who acts for the platform (``by=None``) in the admin: only an active staff
    member may be named, never beside a person acting (``by``), and a refusal writes nothing."""

    @staticmethod
    def calls(tree, person):
        from billing.plans import plan_change

        owner = membership(tree.a_owner, tree.alpha)
        return {
            "membership_add": lambda staff, by=None: member_services.membership_add(
                account=tree.root, user=person, role=MEMBER, by=by, staff=staff),
            "membership_change_role": lambda staff, by=None: member_services.membership_change_role(
                membership=membership(tree.r_member, tree.root), role=VIEWER, by=by, staff=staff),
            "membership_remove": lambda staff, by=None: member_services.membership_remove(
                membership=owner, by=by, staff=staff),
            "plan_change": lambda staff, by=None: plan_change(account=tree.other, plan=plan("pro"), by=by,
                                                             staff=staff),
            "subaccount_create": lambda staff, by=None: account_services.subaccount_create(
                parent=tree.root, name="Gamma", by=by, staff=staff),
            "account_rename": lambda staff, by=None: account_services.account_rename(
                account=tree.alpha, name="Alpha Two", by=by, staff=staff),
            "subaccount_set_access": lambda staff, by=None: account_services.subaccount_set_access(
                account=tree.alpha, matrix=tree.alpha.access_categories, by=by, staff=staff),
            "subaccount_set_limits": lambda staff, by=None: account_services.subaccount_set_limits(
                account=tree.alpha, limits={}, by=by, staff=staff),
            "subaccount_set_defaults": lambda staff, by=None: account_services.subaccount_set_defaults(
                account=tree.root, matrix=tree.root.default_access_categories, limits={}, by=by, staff=staff),
        }

    # the service and the account whose trail it writes to
    SERVICES = {"membership_add": "root", "membership_change_role": "root", "membership_remove": "alpha",
                "plan_change": "other", "subaccount_create": "root", "account_rename": "alpha",
                "subaccount_set_access": "alpha", "subaccount_set_limits": "alpha", "subaccount_set_defaults": "root"}

    @pytest.mark.parametrize("service", SERVICES)
    def test_the_staff_member_is_named_and_marked(self, tree, service):
        staff = UserFactory(is_staff=True)
        call = self.calls(tree, UserFactory())[service]
        succeeds(lambda: call(staff))
        event = AuditEvent.objects.filter(account=getattr(tree, self.SERVICES[service])).latest("pk")
        assert (event.actor, event.actor_email, event.data.get("staff")) == (staff, staff.email, True)

    @pytest.mark.parametrize("service", SERVICES)
    @pytest.mark.parametrize("who", ["customer", "former_staff"])
    def test_only_active_staff_act_for_the_platform(self, tree, service, who):
        staff = UserFactory(is_staff=False) if who == "customer" else UserFactory(is_staff=True, is_active=False)
        call = self.calls(tree, UserFactory())[service]
        refused(lambda: call(staff), PermissionDenied,
                r"^Changes for the platform are made by platform staff\.$")

    @pytest.mark.parametrize("service", SERVICES)
    def test_staff_beside_a_person_acting_is_refused(self, tree, service):
        call, staff, owner = self.calls(tree, UserFactory())[service], UserFactory(is_staff=True), fresh(tree.r_owner)
        before = db_state()
        with pytest.raises(ValueError, match="acts for the platform"):
            call(staff, by=owner)
        assert db_state() == before

    def test_without_staff_the_platform_is_system(self, tree):
        person = UserFactory()
        member_services.membership_add(account=tree.root, user=person, role=MEMBER, by=None)
        event = AuditEvent.objects.filter(account=tree.root).latest("pk")
        assert (event.actor, event.actor_email, event.data.get("staff")) == (None, "", None)
