"""Role x page matrix, discovered from the URL resolver and computed from the permission catalogue.

Every URL pattern whose view class is an ``AccountViewMixin`` is a page. For each role (Owner, Admin,
Agency Admin through a real active agency grant, Member, Viewer) the expected answer is computed, never
written per page: allowed when the role's permission set (``members.roles.ROLES``), capped the way the
DESIGN says (``accounts.permissions.cap`` over the category levels), holds every codename the view
declares in ``permission_required``; a 403 otherwise. The same again under each kind of cap:

  base   a client root with an active agency grant and no caps
  i      a subaccount whose parent set access categories (its own members are capped; people of the
         parent reach it with their own access), and one level deeper, where the caps compose (rule 7)
  ii     a client whose agency settings cap every non-agency member, the Owner included (rule 3)
  iii    a client that narrowed the agency's grant, capping the agency user

A few pages decide on more than their declared codenames; those rules are listed once, by class, in
EXTRA_RULES (with the DESIGN rule each follows), so a new page inheriting them is covered too. Holes
already known are listed in KNOWN_BUGS and must still be observed.
"""

import itertools
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from django.db import connection, transaction
from django.test.utils import override_settings
from django.urls import reverse

from accounts.mixins import AccountViewMixin
from accounts.permissions import CATEGORIES, cap, clean_matrix
from members.roles import ROLES, RoleId
from tests.test_url_isolation import (
    Browser,
    Route,
    Unfillable,
    arg_model,
    finished_data_request,
    implements,
    object_args,
    objects_in,
    walk_url_patterns,
)

# Marks every test as using the database, so pytest-django creates the test database before the module
# fixture builds the world (without a marked test it would not, and the fixture would reach the real one).
pytestmark = pytest.mark.django_db

# The caps, as the brief's examples plus a few categories more so that most pages meet a capped category.
SUB_CAPS = {"members": "read", "billing": "none", "agents": "read"}
NESTED_CAPS = {"contacts": "read", "developer_tools": "none", "subaccounts": "read"}  # below SUB_CAPS
AGENCY_SETTINGS = {"settings": "read", "members": "read", "conversations": "none", "usage": "none"}
GRANT_NARROWING = {"agents": "read", "members": "none", "subaccounts": "read", "trust_center": "none",
                   "developer_tools": "read", "billing": "none"}


# ---- the world --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Actor:
    label: str  # "owner", "agency_admin", "owner of S (inherited)"
    user: object
    role: str
    membership_account: object  # where the person's membership is (the scenario's account unless inherited)
    is_agency: bool = False

    @property
    def direct(self) -> bool:
        return self.label == self.role


@dataclass
class Scenario:
    label: str
    account: object
    actors: list = field(default_factory=list)


def build_world() -> list[Scenario]:
    import datetime

    from django.utils import timezone

    from accounts.services import subaccount_set_access
    from agency import services as agency
    from billing.models import Invoice, period_start
    from developers.models import WebhookDelivery
    from developers.services import apikey_create
    from developers.webhooks import webhook_create
    from members.models import Invitation
    from tests.factories import AccountFactory, MembershipFactory, UserFactory, plan
    from workspace.models import Agent, Contact, Conversation

    try:
        from billing import transfers
    except ImportError:  # no billing transfers in this tree: no URL can ask for one either
        transfers = None

    ag = AccountFactory(name="Agency AG")
    ag_person = UserFactory(email="person@agency-ag.test")
    MembershipFactory(user=ag_person, account=ag, role=RoleId.OWNER)
    started = timezone.now() - datetime.timedelta(days=1)
    last_period = period_start(period_start() - datetime.timedelta(days=1))

    def populate(account, key, roles=("owner", "admin", "member", "viewer")):
        people = {}
        for role in roles:
            people[role] = UserFactory(email=f"{role}@{key}.test")
            MembershipFactory(user=people[role], account=account, role=role)
        agent = Agent.objects.create(account=account, name=f"Agent {key}")
        contact = Contact.objects.create(account=account, name=f"Contact {key}", email=f"contact@{key}.test")
        Conversation.objects.create(account=account, agent=agent, contact=contact, started_at=started,
                                    duration_seconds=61)
        Invitation.objects.create(account=account, email=f"invitee@{key}.test", invited_by=people["owner"])
        apikey_create(account=account, by=people["owner"], label=f"Key {key}")
        hook, _ = webhook_create(account=account, by=people["owner"], name="Hook", url="https://hooks.example.com/in",
                                 events=["conversation.ended"])
        WebhookDelivery.objects.create(webhook=hook, account=account, event_type="conversation.ended", body="{}")
        if account.is_root():
            Invoice.objects.create(account=account, period=last_period, plan_name="Agency", plan_price_cents=29900,
                                   included_minutes=5000, overage_cents_per_minute=9, total_minutes=0,
                                   overage_minutes=0, total_cents=29900)
        finished_data_request(account, people["owner"], contact)
        below = AccountFactory(parent=account, name=f"Below {key}")  # for the sub_id of the subaccount tabs
        if transfers:  # a pending billing transfer of it (for the transfer pages' transfer_id)
            transfers.transfer_start(account=below, by=None, billing_owner_email=f"payer@{key}.test",
                                     plan=plan("agency"))
        return people

    def client(key):
        """A client root that gave AG agency access (AG's person is its Agency Admin) and is itself the
        agency of another root (so the agency-side pages have a grant of their own)."""
        account = AccountFactory(name=f"Client {key}")
        people = populate(account, key)
        grant = agency.access_request(agency=ag, client=account, by=ag_person)
        agency.access_decide(grant=grant, approve=True, by=people["owner"])
        other = AccountFactory(name=f"Client of {key}")
        other_owner = UserFactory(email=f"owner@client-of-{key}.test")
        MembershipFactory(user=other_owner, account=other, role=RoleId.OWNER)
        agency.access_decide(grant=agency.access_request(agency=account, client=other, by=people["owner"]),
                             approve=True, by=other_owner)
        return account, people, grant

    def actors(account, people, *extra):
        found = [Actor(role, user, role, account) for role, user in people.items()]
        return found + list(extra)

    base, base_people, _ = client("base")
    scenarios = [Scenario("base", base, actors(base, base_people,
                                                 Actor(RoleId.AGENCY_ADMIN, ag_person, RoleId.AGENCY_ADMIN, base,
                                                       True)))]

    # (i) access categories set by the parent, and one level deeper (they compose). Members exist before the
    # caps are set, so the services' re-sync is what caps them. No agency user here: agency access joins root
    # accounts only, and an agency membership never reaches a client's subaccounts.
    sub = AccountFactory(parent=base, name="Sub S")
    sub_people = populate(sub, "sub")
    nested = AccountFactory(parent=sub, name="Nested S2")
    nested_people = populate(nested, "nested")
    subaccount_set_access(account=sub, matrix=SUB_CAPS, by=base_people["owner"])
    subaccount_set_access(account=nested, matrix={**SUB_CAPS, **NESTED_CAPS}, by=base_people["owner"])
    scenarios.append(Scenario("i access categories", sub, actors(
        sub, sub_people, Actor("owner of parent (inherited)", base_people["owner"], RoleId.OWNER, base))))
    scenarios.append(Scenario("i nested access categories", nested, actors(
        nested, nested_people,
        Actor("owner of S (inherited)", sub_people["owner"], RoleId.OWNER, sub),
        Actor("owner of root (inherited)", base_people["owner"], RoleId.OWNER, base))))

    # (ii) agency settings: every non-agency member, the Owner included, is capped.
    capped, capped_people, _ = client("settings")
    agency.settings_update(client=capped, matrix=AGENCY_SETTINGS, by=capped_people["owner"])
    scenarios.append(Scenario("ii agency settings", capped, actors(
        capped, capped_people, Actor(RoleId.AGENCY_ADMIN, ag_person, RoleId.AGENCY_ADMIN, capped, True))))

    # (iii) the client narrowed the agency's grant: the agency user is capped, nobody else.
    narrowed, narrowed_people, grant = client("narrowed")
    agency.access_update(grant=grant, by=narrowed_people["owner"], expires_at=None, matrix=GRANT_NARROWING)
    # Only the agency user is capped here: the Owner and a Member show the narrowing caps nobody else
    # (Admin and Viewer would answer exactly as in "base", so they are left out to keep the module fast).
    kept = {role: user for role, user in narrowed_people.items() if role in ("owner", "member")}
    scenarios.append(Scenario("iii agency grant narrowed", narrowed, actors(
        narrowed, kept, Actor(RoleId.AGENCY_ADMIN, ag_person, RoleId.AGENCY_ADMIN, narrowed, True))))
    return scenarios


@pytest.fixture(scope="module")
def scenarios(django_db_setup, django_db_blocker):
    """Built once for the module inside one transaction, rolled back at the end."""
    with django_db_blocker.unblock():
        name = str(connection.settings_dict["NAME"])
        assert "test" in name or "memory" in name, f"not a test database: {name}"
    with django_db_blocker.unblock(), override_settings(
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]), transaction.atomic():
        yield build_world()
        transaction.set_rollback(True)


# ---- what the DESIGN says each person holds (computed here, never asked of accounts.access) ------------

def _levels(raw: dict | None) -> dict:
    return clean_matrix(raw or {})


def composed_caps(account) -> dict:
    """Rule 7: a subaccount's categories are the minimum of its own and every ancestor's (roots have none)."""
    from accounts.models import Account

    lineage = [*Account.objects.filter(path__in=account.ancestor_paths), account]
    result = {}
    for a in lineage:
        if a.depth > 1:
            for key, level in _levels(a.access_categories).items():
                result[key] = min(result.get(key, level), level)
    return result


def agency_settings_cap(account) -> dict | None:
    from agency.models import AgencySettings

    row = AgencySettings.objects.filter(account=account, enabled=True).first()
    return _levels(row.matrix) if row and row.matrix else None


def expected_permissions(actor: Actor) -> frozenset[str]:
    """Rules 1-3: the role's permissions where the membership is, capped by that account's composed access
    categories (its own members only: the membership's account, whatever page is asked), then by the grant's
    narrowing for an agency user, or by the agency settings for everyone else. Inherited downward unchanged."""
    from agency.models import AgencyGrant

    account = actor.membership_account
    perms = cap(ROLES[actor.role].permissions, composed_caps(account))
    if actor.is_agency:
        grant = AgencyGrant.objects.active().get(client=account, agency__memberships__user=actor.user)
        return cap(perms, _levels(grant.matrix))
    return cap(perms, agency_settings_cap(account))


# ---- the few pages that decide on more than their declared codenames -----------------------------------

def _governs_agency_access(ctx) -> bool:
    # DESIGN rule 8 / 3: agency access is governed only by the client's direct Owner (always, whatever the
    # agency settings say) and by direct non-agency Admins who hold member management.
    actor = ctx["actor"]
    if not actor.direct or actor.is_agency:
        return False
    return actor.role == RoleId.OWNER or (actor.role == RoleId.ADMIN and "manage_members" in ctx["perms"])


def _root_only(ctx) -> bool:
    # Billing: a subaccount is on parent billing and has no invoices or payment methods of its own (DESIGN,
    # Billing), so these pages refuse on a subaccount whatever the role.
    return ctx["declared"] and ctx["scenario"].account.is_root()


def _owner_only(ctx) -> bool:
    # Ownership transfer: only a direct Owner hands ownership over (DESIGN, Membership / design notes).
    return ctx["actor"].direct and ctx["actor"].role == RoleId.OWNER


def _owner_reads_audit(ctx) -> bool:
    # DESIGN rules 3 and 10: the Owner can always read the account's audit trail, whatever the agency
    # settings say. The deliberate exception to "agency settings cap the Owner too".
    actor = ctx["actor"]
    owner_exempt = actor.direct and actor.role == RoleId.OWNER and agency_settings_cap(ctx["scenario"].account)
    return ctx["declared"] or bool(owner_exempt)


def _starts_transfers(ctx) -> bool:
    # DESIGN, Billing transfer (and BillingTransfer's docstring): starting one takes billing and subaccount
    # management on the subaccount's parent. The wizard declares only view_subaccounts and refuses in
    # check_permission (billing/transfers.py transfer_permission_refusal). Our people hold on every subaccount what
    # they hold here (inherited unchanged; agency users hold no manage_billing anyway).
    return ctx["declared"] and {"manage_billing", "manage_subaccounts"} <= ctx["perms"]


def _owner_resets_second_factors(ctx) -> bool:
    # Issue 13 part 5: only an Owner (direct or from above, holding member management here) resets a member's
    # second factor; Admins manage members but not how they sign in.
    return ctx["declared"] and ctx["actor"].role == RoleId.OWNER and not ctx["actor"].is_agency


def _reads_request_results(ctx) -> bool:
    # Issue 17 part 2: a contact request's results are for the person who asked and the account's Owners and
    # Admins (from above too), while they view the Trust Center; never an agency user. The world's requests are
    # the Owner's contact exports. (A person's own data is theirs alone: tests/trust.)
    actor = ctx["actor"]
    return ("view_trust_center" in ctx["perms"] and actor.role in (RoleId.OWNER, RoleId.ADMIN)
            and not actor.is_agency)


EXTRA_RULES = [  # (view base class, rule): the rule replaces the declared-codenames answer for views below it
    ("agency.views.ClientSideMixin", _governs_agency_access),
    ("billing.views.InvoiceAccessMixin", _root_only),
    ("billing.views.StripeActionView", _root_only),
    ("members.team_views.TransferOwnershipView", _owner_only),
    ("accounts.subaccount_views.AuditLogView", _owner_reads_audit),
    ("billing.transfer_views.TransferWizardView", _starts_transfers),
    ("security.views.MfaResetView", _owner_resets_second_factors),
    ("trust.request_views.DataRequestDownloadView", _reads_request_results),
]


def extra_rules():
    """The rules whose view class exists. One renamed away drops its rule, and its pages then fail the
    matrix loudly (they decide on more than they declare), so nothing is skipped silently."""
    from django.utils.module_loading import import_string

    found = []
    for path, rule in EXTRA_RULES:
        try:
            found.append((import_string(path), rule))
        except ImportError:
            continue
    return found


def declared_codenames(route: Route) -> tuple[str, ...]:
    view = route.view_class(**route.initkwargs)
    return tuple(view.get_permission_required())


def expected_allowed(route: Route, scenario: Scenario, actor: Actor) -> bool:
    perms = expected_permissions(actor)
    ctx = {"actor": actor, "scenario": scenario, "perms": perms,
           "declared": set(declared_codenames(route)) <= perms}
    allowed = ctx["declared"]
    for base, rule in extra_rules():
        if issubclass(route.view_class, base):
            allowed = rule(ctx)
    return allowed


# ---- filling the pages' other arguments -----------------------------------------------------------------

def fillings(route: Route, account) -> tuple[list[dict], bool]:
    """Every combination of the account's own objects for the route's other arguments, and whether they were
    all the account's own (else an ancestor's: the page may then answer 404 to someone allowed in)."""
    from accounts.models import Account

    choices, exact = {}, True
    for arg in object_args(route):
        model = arg_model(route, arg)
        if model is None:
            raise Unfillable(f"{route.name}: no model known for argument {arg!r}: add it to arg_model()")
        objs = objects_in(account, model)
        if not objs:
            exact = False
            for ancestor in Account.objects.filter(path__in=account.ancestor_paths).order_by("-depth"):
                objs = objects_in(ancestor, model)
                if objs:
                    break
        if not objs:
            raise Unfillable(f"{route.name}: no {model.__name__} for {arg!r} in the world: add one to build_world()")
        if model is Account and len(objs) > 2:
            objs = [objs[0], objs[-1]]  # a direct subaccount and the deepest one (whose parent is not this account)
        choices[arg] = [o.public_id for o in objs]
    names = list(choices)
    combos = [dict(zip(names, c, strict=True)) for c in itertools.product(*(choices[n] for n in names))]
    return combos, exact


def pages() -> list[Route]:
    return [r for r in walk_url_patterns() if r.view_class and issubclass(r.view_class, AccountViewMixin)]


# ---- the matrix -----------------------------------------------------------------------------------------

# Known holes, being fixed elsewhere: (page, scenario, actor label). Each must still be observed.
KNOWN_BUGS: set[tuple[str, str, str]] = set()
# (Found by this matrix and fixed: a 500 for a client's agency user on a deep subaccount's Permissions tab,
# whose parent agency access does not reach: the form's ceiling is now "nothing" for such a viewer.)


@dataclass(frozen=True, order=True)
class Mismatch:
    page: str
    scenario: str
    actor: str
    method: str
    expected: str
    got: str
    needs: str

    def __str__(self):
        return (f"{self.page:32} {self.scenario:27} {self.actor:28} {self.method:4} expected {self.expected:7} "
                f"got {self.got:18} (declares {self.needs})")


def outcome(statuses: list[int], locations: list[str], *, exact: bool, method: str) -> str:
    """'allowed', 'refused' (403 for every object) or 'mixed'. Allowed: no 403 and no server error, and, for
    a GET page given the account's own objects, at least one real answer (200, or a redirect that is not the
    way out to the login page or home)."""
    if any(s >= 500 for s in statuses):
        return "error"
    if all(s == 403 for s in statuses):
        return "refused"
    if any(s == 403 for s in statuses):
        return "mixed"
    out = {reverse("login"), reverse("home")}
    real = [s == 200 or (s == 302 and urlsplit(loc).path not in out) for s, loc in zip(statuses, locations,
                                                                                       strict=True)]
    if method == "POST" or not exact or any(real):
        return "allowed"
    return "not-found"


@pytest.fixture(scope="module")
def matrix(scenarios):
    rows, mismatches, problems = [], [], []
    for scenario in scenarios:
        for actor in scenario.actors:
            browser = Browser(actor.user)
            for route in pages():
                try:
                    combos, exact = fillings(route, scenario.account)
                    want = "allowed" if expected_allowed(route, scenario, actor) else "refused"
                except Unfillable as exc:
                    problems.append(str(exc))
                    continue
                method = "GET" if implements(route, "GET") else "POST"  # action-only views: POST, empty data
                statuses, locations = [], []
                for values in combos:
                    response = browser(method, route.url({"account_id": scenario.account.public_id, **values}))
                    statuses.append(response.status_code)
                    locations.append(response.get("Location", ""))
                got = outcome(statuses, locations, exact=exact, method=method)
                rows.append((route.name, scenario.label, actor.label, want, got))
                if got != want:
                    mismatches.append(Mismatch(route.name, scenario.label, actor.label, method, want,
                                               f"{got} {sorted(set(statuses))}",
                                               ",".join(declared_codenames(route)) or "-"))
    return rows, mismatches, problems


def test_every_page_is_discovered_and_fillable(matrix):
    rows, _, problems = matrix
    assert not problems, "\n".join(problems)
    names = {r[0] for r in rows}
    assert {"accounts:dashboard", "accounts:audit-log", "agency:client-access", "billing:overview",
            "members:list", "workspace:agent-create"} <= names


def test_role_matrix_follows_the_permission_catalogue(matrix):
    rows, mismatches, _ = matrix
    assert len(rows) > 500
    print(f"{len(rows)} (page, scenario, actor) cells over {len({r[0] for r in rows})} pages, "
          f"{len({(r[1], r[2]) for r in rows})} actors in {len({r[1] for r in rows})} scenarios")
    found = {(m.page, m.scenario, m.actor) for m in mismatches}
    new = sorted(m for m in mismatches if (m.page, m.scenario, m.actor) not in KNOWN_BUGS)
    gone = sorted(KNOWN_BUGS - found)
    lines = []
    if new:
        lines.append(f"{len(new)} page(s) answer differently from the catalogue (page, scenario, actor, method):")
        lines += [f"  {m}" for m in new]
    if gone:
        lines.append("Known bugs no longer observed (fixed? remove them from KNOWN_BUGS):")
        lines += [f"  {k}" for k in gone]
    assert not lines, "\n".join(lines)


def test_every_cap_refuses_something_and_leaves_something(matrix):
    """The matrix is not vacuous: each capped scenario has pages its capped people are refused and pages
    they still open, and the caps' categories are real ones."""
    rows, _, _ = matrix
    for caps in (SUB_CAPS, NESTED_CAPS, AGENCY_SETTINGS, GRANT_NARROWING):
        assert set(caps) <= {c.key for c in CATEGORIES}
    for scenario in {r[1] for r in rows}:
        answers = {r[4] for r in rows if r[1] == scenario}
        assert {"allowed", "refused"} <= answers, (scenario, answers)
