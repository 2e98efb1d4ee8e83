"""Tenant isolation, found by walking every URL pattern rather than by listing pages.

Every pattern of ``django.urls.get_resolver()`` is discovered (recursively through includes) and
filled from its own converters and argument names. For each one that takes ``account_id``:

  a. the Owner of a sibling (A2) asks for A1's and A1a's URLs                   -> 404
  b. the Owner of a descendant (A1a) asks for A1's and A's URLs                  -> 404
  c. the Owner of another tenant (B) asks for A's URLs                           -> 404
  d. the Owner of A (who reaches everything in A) asks for A's / A1's URLs with
     every OTHER id pointing at tenant B's objects (or, for A1, at sibling A2's) -> 404
     (a 403 or redirect decided before any lookup, byte-for-byte what a made-up id gets,
     confirms nothing and is only noted; anything else, e.g. 200 or a 403 a made-up id
     does not get, fails)

each with GET and POST (empty data), and signed out -> a redirect to the login page or 404.
Each request runs in a savepoint that is rolled back, so a hole cannot change the next case.
A 405 is accepted only when the view class does not implement the method at all (so no object
lookup can have happened). Patterns that take an object id but no ``account_id`` get the other
tenant's objects (case "object-only"). On top of that, the query-string and form parameters each
view reads (found in the view's source) are fed garbage and other tenants' ids: never a server
error, never a redirect off the site, never a name or an email of an account the reader cannot
reach (DESIGN rules 5 and 10); and the Owners of A and A1 walk their own pages looking for names
of accounts above or beside them (rule 10).

Every failure is collected and reported at once. Holes already known (being fixed) are listed in
KNOWN_BUGS: each must still be observed, so the suite fails when one disappears (remove it then).
A new URL pattern is covered without editing this file; one whose argument this file cannot fill
fails by name.
"""

import inspect
import itertools
import re
import uuid
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.db.models import BooleanField, ForeignKey, Q
from django.test import Client
from django.test.utils import override_settings
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.urls.converters import UUIDConverter
from django.urls.resolvers import RoutePattern
from django.views.generic.list import MultipleObjectMixin

# Marks every test as using the database, so pytest-django creates the test database before the module
# fixtures below build the world (without a marked test it would not, and they would reach the real one).
pytestmark = pytest.mark.django_db

# ---- discovery --------------------------------------------------------------------------------------

# Skipped as the brief says: the platform admin (its own permission model, tested in tests/test_admin.py)
# and dj-stripe's webhook endpoint (signature-checked, no tenant id in the URL). The REST API authenticates
# with API keys only (no session): tests/api/test_api_isolation.py walks every API pattern the same way.
SKIP_PREFIXES = ("admin/", "stripe/", "api/")

# Arguments that are not object ids, per pattern: filled by a dedicated test or not a tenant object.
NON_OBJECT_ARGS = {
    # Django's own password reset link: a base64 user id plus a signed token; no tenant object behind it.
    ("password_reset_confirm", "uidb64"): "Django password reset",
    ("password_reset_confirm", "token"): "Django password reset",
    # Signed links (bearer capabilities), checked by test_signed_links_are_bound_to_their_addressee.
    ("invitation-accept", "token"): "signed invitation link",
    ("billing:transfer-accept", "token"): "signed billing transfer link",
    # allauth's email confirmation key: random, bound to the address it was sent to (tests/security/test_profile.py).
    ("account_confirm_email", "key"): "allauth email confirmation key",
    # The signed-in person's own passkeys, looked up among request.user's authenticators only: another person's
    # id is a 404 (tests/security/test_mfa.py::test_another_persons_passkey_is_404).
    ("mfa_remove_webauthn", "pk"): "the person's own passkey",
    ("mfa_edit_webauthn", "pk"): "the person's own passkey",
    # A published public trust page's address: public by design (no sign-in, no tenant page), chosen by its account;
    # what it shows and hides is tested in tests/trust/test_public.py.
    ("trust:public-page", "slug"): "public trust page address",
}

_PARAM = re.compile(r"<(?:(?P<conv>[^>:]+):)?(?P<name>[^>]+)>")


@dataclass(frozen=True)
class Route:
    name: str  # "accounts:subaccount-overview"; the route itself when the pattern has no name
    route: str  # "a/<uuid:account_id>/subaccounts/<uuid:sub_id>/"
    converters: dict
    callback: object
    regex: bool = False

    @property
    def view_class(self):
        return getattr(self.callback, "view_class", None)

    @property
    def initkwargs(self) -> dict:
        return getattr(self.callback, "view_initkwargs", None) or {}

    @property
    def args(self) -> list[str]:
        return [m["name"] for m in _PARAM.finditer(self.route)] if not self.regex else list(self.converters)

    def url(self, values: dict) -> str:
        def fill(m):
            name = m["name"]
            return self.converters[name].to_url(values[name]) if name in self.converters else str(values[name])

        return "/" + _PARAM.sub(fill, self.route)


def walk_url_patterns(resolver=None, prefix="", namespace="", converters=None):
    """Every URL pattern, through includes, with its full route and every converter on the way."""
    resolver = resolver or get_resolver()
    converters = converters or {}
    for entry in resolver.url_patterns:
        pattern = entry.pattern
        regex = not isinstance(pattern, RoutePattern)
        piece = pattern._route if not regex else pattern._regex.lstrip("^").rstrip("$")
        full = prefix + piece
        if any(full.startswith(p) for p in SKIP_PREFIXES):
            continue
        conv = {**converters, **(pattern.converters if not regex else {})}
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from walk_url_patterns(entry, full, ns, conv)
        elif isinstance(entry, URLPattern):
            if regex:
                conv = {**conv, **dict.fromkeys(pattern.regex.groupindex)}
            yield Route(f"{namespace}{entry.name}" if entry.name else full, full, conv, entry.callback, regex)


def implements(route: Route, method: str) -> bool:
    """Does the view implement ``method`` at all? (Only then is a 405 not acceptable.)"""
    view = route.view_class
    if view is None:
        return True  # a function view: we cannot tell, so a 405 is not accepted
    m = method.lower()
    return m in view.http_method_names and hasattr(view, m)


def _project_file(obj) -> bool:
    try:
        path = Path(inspect.getsourcefile(obj)).resolve()
    except (TypeError, OSError):
        return False
    base = Path(settings.BASE_DIR).resolve()
    return base in path.parents and ".venv" not in path.parts and "site-packages" not in path.parts


_READS = [
    re.compile(r"""\b(GET|POST)\s*(?:\.\s*(?:get|getlist)\s*\(\s*|\[\s*)["']([A-Za-z_][\w-]*)["']"""),
    re.compile(r"""\b(GET|POST)\s*,\s*["']([A-Za-z_][\w-]*)["']"""),  # helper(request.GET, "q")
]
_FORM = re.compile(r"""\b(\w+Form)\(\s*(?:self\.)?request\.(GET|POST)\b""")  # a form bound to the request
_IN = re.compile(r"""["']([A-Za-z_][\w-]*)["']\s+(?:not\s+)?in\s+(?:self\.)?request\.(GET|POST)\b""")


def request_params(route: Route) -> set[tuple[str, str]]:
    """(method, name) of the query-string / form parameters the view's own source reads directly."""
    view = route.view_class
    objs = [c for c in view.__mro__ if _project_file(c)] if view else [inspect.unwrap(route.callback)]
    found = set()
    for obj in objs:
        try:
            src = inspect.getsource(obj)
        except (TypeError, OSError):
            continue
        for rx in _READS:
            found |= {(m[1], m[2]) for m in rx.finditer(src)}
        found |= {(m[2], m[1]) for m in _IN.finditer(src)}
        module = inspect.getmodule(obj)
        for m in _FORM.finditer(src):
            form = getattr(module, m[1], None)
            found |= {(m[2], f) for f in getattr(form, "base_fields", {})}
        if re.search(r"search_text\(\s*(?:self\.)?request\.GET\s*\)", src):
            found.add(("GET", "q"))  # params.search_text's default parameter
    if view and issubclass(view, MultipleObjectMixin):
        found.add(("GET", "page"))  # read by Django's pagination
    return found


# ---- the world --------------------------------------------------------------------------------------

TREE = {  # key: parent key (None = a root). A and B are the two tenants; G*/C* are their agency/client peers.
    "A": None, "A1": "A", "A1a": "A1", "A1ax": "A1a", "A2": "A",
    "B": None, "B1": "B",
    "GA": None, "CA": None, "GB": None, "CB": None,
}
TENANT = {k: ("A" if k.startswith("A") else "B" if k.startswith("B") else k) for k in TREE}


def name_of(key: str) -> str:
    return f"Acct {key} Zq"  # never a substring of another key's name


def email_of(key: str, who: str) -> str:
    return f"{who}.{key.lower()}@zq-{TENANT[key].lower()}.test"


def objects_in(account, model) -> list:
    """Objects of ``model`` that belong to ``account``, one of each kind.

    For an account argument: the accounts below it, one per depth. Otherwise: the rows with a foreign key to
    Account pointing at it (any of them: a grant's client or agency, a transfer's account or former parent),
    one per (which foreign keys matched, boolean flags), e.g. a grant as client and one as agency, a plain
    and an agency membership. Found from the models, so a new account-scoped model needs no code here."""
    from accounts.models import Account

    if model is Account:
        objs, fks = list(account.descendants().order_by("depth", "path")), []
    else:
        fks = [f for f in model._meta.get_fields() if isinstance(f, ForeignKey) and f.related_model is Account]
        match = Q()
        for f in fks:
            match |= Q(**{f.name: account})
        objs = list(model.objects.filter(match).order_by("pk")) if fks else []
    picked, seen = [], set()
    for obj in objs:
        kind = (tuple(getattr(obj, f.attname) == account.pk for f in fks),
                tuple(getattr(obj, f.attname) for f in model._meta.fields if isinstance(f, BooleanField)),
                getattr(obj, "depth", None))
        if kind not in seen:
            seen.add(kind)
            picked.append(obj)
    return picked


@dataclass
class World:
    accounts: dict = field(default_factory=dict)  # key -> Account
    owners: dict = field(default_factory=dict)  # key -> User (direct Owner)
    users: dict = field(default_factory=dict)  # email -> set of account keys with a membership

    def key_of(self, account) -> str:
        return next(k for k, a in self.accounts.items() if a.pk == account.pk)

    def descendants(self, key) -> list[str]:
        path = self.accounts[key].path
        return [k for k, a in self.accounts.items() if a.path.startswith(path) and k != key]

    def ancestors(self, key) -> list[str]:
        out, k = [], TREE[key]
        while k:
            out.append(k)
            k = TREE[k]
        return out

    def reach(self, key) -> set[str]:
        """What the direct Owner of ``key`` reaches, per DESIGN rules 1 and 3 (not asked of the app)."""
        reached = {key, *self.descendants(key)}
        # clients where this owner became an agency user (approving a request adds the requester)
        reached |= {c for c, agency in CLIENT_OF.items() if agency == key}
        return reached

    def visible(self, key) -> set[str]:
        """Accounts whose names may appear to the Owner of ``key``: what they reach, and the agencies
        holding agency access to an account they reach (listed on its agency access page)."""
        reached = self.reach(key)
        return reached | {agency for client, agency in CLIENT_OF.items() if client in reached}

    def forbidden_tokens(self, key) -> set[str]:
        """Names of accounts the Owner of ``key`` cannot see, and emails of people who belong only to
        accounts that are neither visible to them nor above them."""
        visible = self.visible(key)
        above = {a for v in visible for a in self.ancestors(v)}
        names = {name_of(k) for k in self.accounts if k not in visible}
        emails = {e for e, keys in self.users.items() if not keys & (visible | above)}
        return names | emails

    def candidates(self, key, model, *, own: bool) -> list:
        """Objects of ``model`` belonging to account ``key`` (falling back to its ancestors' when it has none).

        For ``Account`` (a subaccount argument) ``own`` gives the accounts below ``key`` (what the URL would
        legitimately accept); otherwise ``key`` itself and its descendants (someone else's accounts)."""
        from accounts.models import Account

        if model is Account:
            keys = self.descendants(key) if own else [key, *self.descendants(key)]
            return sorted((self.accounts[k] for k in keys), key=lambda a: (a.depth, a.path))
        for k in (key, *self.ancestors(key)):
            found = objects_in(self.accounts[k], model)
            if found:
                return found
        return []


CLIENT_OF = {"A": "GA", "CA": "A", "B": "GB", "CB": "B"}  # client -> agency (active agency grants)
TRANSFERRED = ("A1a", "A2", "B1")  # subaccounts with a pending billing transfer (one per branch is allowed)


def build_world() -> World:
    """Every account gets an Owner, a Member, an agent, a contact, a conversation and a pending invitation;
    roots an invoice; the agency grants of CLIENT_OF (with their agency users); the billing transfers of
    TRANSFERRED. Objects are found back by their foreign keys to Account (``objects_in``)."""
    import datetime

    from django.utils import timezone

    from agency import services as agency_services
    from billing.models import Invoice, period_start
    from developers.models import WebhookDelivery
    from developers.services import apikey_create
    from developers.webhooks import webhook_create
    from members.models import Invitation, Membership
    from members.roles import RoleId
    from tests.factories import AccountFactory, MembershipFactory, UserFactory, plan
    from workspace.models import Agent, Contact, Conversation

    w = World()
    for key, parent in TREE.items():
        w.accounts[key] = AccountFactory(name=name_of(key), parent=w.accounts[parent] if parent else None)
    for key, account in w.accounts.items():
        owner = UserFactory(email=email_of(key, "owner"), name=f"Owner of {key}")
        w.owners[key] = owner
        MembershipFactory(user=owner, account=account, role=RoleId.OWNER)
        MembershipFactory(user=UserFactory(email=email_of(key, "member"), name=f"Member of {key}"), account=account,
                          role=RoleId.MEMBER)
    for client, agency in CLIENT_OF.items():
        grant = agency_services.access_request(agency=w.accounts[agency], client=w.accounts[client],
                                               by=w.owners[agency])
        agency_services.access_decide(grant=grant, approve=True, by=w.owners[client])
    started = timezone.now() - datetime.timedelta(days=1)
    last_period = period_start(period_start() - datetime.timedelta(days=1))
    for key, account in w.accounts.items():
        agent = Agent.objects.create(account=account, name=f"Agent of {key}")
        contact = Contact.objects.create(account=account, name=f"Contact of {key}", email=email_of(key, "contact"))
        Conversation.objects.create(account=account, agent=agent, contact=contact, started_at=started,
                                    duration_seconds=61)
        Invitation.objects.create(account=account, email=email_of(key, "invitee"), invited_by=w.owners[key])
        apikey_create(account=account, by=w.owners[key], label=f"Key of {key}")
        hook, _ = webhook_create(account=account, by=w.owners[key], name="Hook", url="https://hooks.example.com/in",
                                 events=["conversation.ended"])
        WebhookDelivery.objects.create(webhook=hook, account=account, event_type="conversation.ended", body="{}")
        if account.is_root():
            Invoice.objects.create(account=account, period=last_period, plan_name="Agency", plan_price_cents=29900,
                                   included_minutes=5000, overage_cents_per_minute=9, total_minutes=0,
                                   overage_minutes=0, total_cents=29900)
        finished_data_request(account, w.owners[key], contact)
    try:
        from billing import transfers
    except ImportError:  # no billing transfers in this tree: no URL can ask for one either
        transfers = None
    for key in TRANSFERRED if transfers else ():
        transfers.transfer_start(account=w.accounts[key], by=None, billing_owner_email=email_of(key, "payer"),
                                 plan=plan("agency"))
    for m in Membership.objects.select_related("user", "account"):
        w.users.setdefault(m.user.email, set()).add(w.key_of(m.account))
    return w


def finished_data_request(account, requester, contact):
    """A contact export of ``contact`` that finished now, with its files (for the data request download URL)."""
    from django.utils import timezone

    from trust.models import RESULT_LIFETIME, DataRequest, DataRequestResult

    now = timezone.now()
    data_request = DataRequest.objects.create(
        account=account, kind=DataRequest.Kind.CONTACT_EXPORT, requested_by=requester, requester_email=requester.email,
        subject=contact.email, subject_masked=contact.email[:1] + "•••", status=DataRequest.Status.COMPLETED,
        started_at=now, finished_at=now, expires_at=now + RESULT_LIFETIME)
    for fmt in DataRequestResult.Format.values:
        DataRequestResult.objects.create(request=data_request, format=fmt, content=b"{}", size=2)
    return data_request


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Built once for the module inside one transaction, rolled back at the end."""
    with django_db_blocker.unblock():
        name = str(connection.settings_dict["NAME"])
        assert "test" in name or "memory" in name, f"not a test database: {name}"
    with django_db_blocker.unblock(), override_settings(
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]), transaction.atomic():
        yield build_world()
        transaction.set_rollback(True)


# ---- filling arguments ------------------------------------------------------------------------------

def arg_model(route: Route, arg: str):
    """The model an id argument names, from its name (and, for ``pk``, from the view), or None."""
    from accounts.models import Account
    from agency.models import AgencyGrant
    from billing.models import Invoice
    from members.models import Invitation, Membership

    explicit = {"sub_id": Account, "subaccount_id": Account, "membership_id": Membership,
                "grant_id": AgencyGrant, "invitation_id": Invitation, "invoice_id": Invoice}
    if arg in explicit:
        return explicit[arg]
    if arg in ("pk", "object_id", "id"):
        for value in route.initkwargs.values():
            if getattr(value, "model", None) is not None:
                return value.model
        view = route.view_class
        model = getattr(view, "model", None) or getattr(getattr(view, "queryset", None), "model", None)
        return model
    if arg.endswith("_id"):  # <model>_id: a project model named so, or ending so (transfer_id: BillingTransfer)
        base = arg[:-3].replace("_", "")
        ours = [m for m in apps.get_models() if _project_file(m)]
        exact = [m for m in ours if m._meta.model_name == base]
        found = exact or [m for m in ours if m._meta.model_name.endswith(base)]
        if len(found) == 1:
            return found[0]
    return None


class Unfillable(Exception):
    pass


def object_args(route: Route) -> list[str]:
    return [a for a in route.args if a != "account_id" and (route.name, a) not in NON_OBJECT_ARGS]


def fillings(world: World, route: Route, *, source: str, own: bool, every: bool) -> list[dict]:
    """Values for every argument but ``account_id``, from account ``source``'s objects.

    ``every``: each combination of candidates (two grants, an agency and a plain membership...), else the first.
    Raises Unfillable naming the argument when this file does not know how to fill it."""
    choices = {}
    for arg in object_args(route):
        conv = route.converters.get(arg)
        if not isinstance(conv, UUIDConverter):
            raise Unfillable(f"{route.name}: argument {arg!r} ({type(conv).__name__}) is not a uuid and not in "
                             "NON_OBJECT_ARGS: teach tests/test_url_isolation.py what it is")
        model = arg_model(route, arg)
        if model is None:
            raise Unfillable(f"{route.name}: no model known for uuid argument {arg!r}: add it to arg_model()")
        objs = world.candidates(source, model, own=own)
        if not objs:
            raise Unfillable(f"{route.name}: the world has no {model.__name__} to fill {arg!r}: add one to "
                             "build_world()")
        choices[arg] = [o.public_id for o in objs] if every else [objs[0].public_id]
    names = list(choices)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(choices[n] for n in names))]


# ---- requests ---------------------------------------------------------------------------------------

class Browser:
    """A test client that never raises (a server error is a 500 to record) and whose requests are each
    rolled back, so one hole cannot change the world for the next request."""

    def __init__(self, user=None):
        self.client = Client(raise_request_exception=False)
        self.user = user
        if user is not None:
            self.client.force_login(user)
        self.session = self.client.cookies.get(settings.SESSION_COOKIE_NAME)

    def __call__(self, method: str, url: str, data=None, htmx=False):
        extra = {"HTTP_HX_REQUEST": "true"} if htmx else {}
        with transaction.atomic():
            if method == "GET":
                response = self.client.get(url, data or {}, **extra)
            else:
                response = self.client.post(url, data or {}, **extra)
            transaction.set_rollback(True)
        # fresh cookies: a logout or a flash message of one request must not leak into the next
        self.client.cookies = SimpleCookie()
        if self.session is not None:
            self.client.cookies[settings.SESSION_COOKIE_NAME] = self.session.value
        return response


def body(response) -> str:
    if getattr(response, "streaming", False):
        return ""
    return response.content.decode("utf-8", errors="replace")


def leaked(response, forbidden: set[str]) -> list[str]:
    text = body(response)
    return sorted(t for t in forbidden if t in text)


def off_site(response) -> bool:
    if response.status_code not in (301, 302, 303, 307, 308):
        return False
    netloc = urlsplit(response["Location"]).netloc
    return netloc not in ("", "testserver")


@dataclass(frozen=True, order=True)
class Failure:
    pattern: str
    case: str
    method: str
    status: int
    detail: str = ""

    def __str__(self):
        return f"{self.pattern:40} {self.case:48} {self.method:5} {self.status}  {self.detail}"


# Known holes, being fixed elsewhere: (pattern, case, method, status). Each must still show up, so this
# test fails when one is fixed (then delete its line). Reported with a guess at the cause.
KNOWN_BUGS: set[tuple[str, str, str, int]] = set()


def compare(failures: list[Failure], scopes: tuple[str, ...], known=KNOWN_BUGS) -> None:
    """Fail listing every failure that is not a known bug, and every known bug (of these cases) not seen."""
    found = {(f.pattern, f.case, f.method, f.status) for f in failures}
    new = sorted(f for f in failures if (f.pattern, f.case, f.method, f.status) not in known)
    relevant_known = {k for k in known if k[1].startswith(scopes)}
    gone = sorted(relevant_known - found)
    lines = []
    if new:
        lines.append(f"{len(new)} isolation failure(s) (pattern, case, method, status, detail):")
        lines += [f"  {f}" for f in new]
    if gone:
        lines.append("Known bugs no longer observed (fixed? remove them from KNOWN_BUGS):")
        lines += [f"  {k}" for k in gone]
    assert not lines, "\n".join(lines)


def routes() -> list[Route]:
    return list(walk_url_patterns())


def account_routes() -> list[Route]:
    return [r for r in routes() if "account_id" in r.args]


# ---- the tests --------------------------------------------------------------------------------------

CROSS = [  # (case, actor: Owner of, URL account)
    ("a:sibling", "A2", "A1"),
    ("a:sibling", "A2", "A1a"),
    ("b:descendant", "A1a", "A1"),
    ("b:descendant", "A1a", "A"),
    ("c:other-tenant", "B", "A"),
]
MIXED = [  # (case, actor, URL account, whose objects fill the other ids)
    ("d:mixed-ids", "A", "A", "B"),
    ("d:mixed-ids", "A", "A1", "B"),
    ("d:mixed-ids", "A", "A1", "A2"),  # a sibling's objects under A1's URL: reachable, but not A1's
]
METHODS = ("GET", "POST")


def test_the_walker_finds_the_tenant_pages_and_can_fill_every_argument(world):
    """Discovery sanity, and the rule that a new id argument fails by name instead of being skipped."""
    found = account_routes()
    names = {r.name for r in found}
    assert {"accounts:dashboard", "accounts:subaccount-overview", "members:remove", "agency:revoke",
            "billing:invoice-detail", "workspace:agent-detail"} <= names, names
    problems = []
    for route in routes():
        if route.regex and route.args:
            problems.append(f"{route.name}: a regex pattern with arguments; add a filler for it")
            continue
        try:
            fillings(world, route, source="A", own=True, every=False)
        except Unfillable as exc:
            problems.append(str(exc))
            continue
        if "account_id" not in route.args:
            continue
        for values in fillings(world, route, source="A1", own=True, every=False):
            url = route.url({"account_id": world.accounts["A1"].public_id, **values})
            if resolve(url).view_name != route.name:  # the URL built is the pattern's own
                problems.append(f"{route.name}: {url} resolves to {resolve(url).view_name}")
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def cross_results(world):
    failures, count = [], 0
    browsers = {}
    for case, actor, target in CROSS:
        browser = browsers.setdefault(actor, Browser(world.owners[actor]))
        forbidden = world.forbidden_tokens(actor)
        for route in account_routes():
            urls = set()
            for source, own in ((target, True), (actor, False)):  # the target's objects, then the actor's own
                for values in fillings(world, route, source=source, own=own, every=False):
                    urls.add(route.url({"account_id": world.accounts[target].public_id, **values}))
            for url, method in itertools.product(sorted(urls), METHODS):
                count += 1
                response = browser(method, url)
                status = response.status_code
                ok = status == 404 or (status == 405 and not implements(route, method))
                label = f"{case} {actor}->{target}"
                if not ok:
                    failures.append(Failure(route.name, label, method, status, url))
                elif leak := leaked(response, forbidden):
                    failures.append(Failure(route.name, label, method, status, f"names {leak} in {url}"))
    return failures, count


def test_unreachable_accounts_are_404_for_every_pattern(cross_results):
    failures, count = cross_results
    assert count > 200
    print(f"{count} requests over {len(account_routes())} patterns with account_id")
    compare(failures, ("a:", "b:", "c:"))


@pytest.fixture(scope="module")
def mixed_results(world):
    failures, notes, count = [], [], 0
    browser = Browser(world.owners["A"])
    for case, actor, target, source in MIXED:
        forbidden = world.forbidden_tokens(actor)
        for route in account_routes():
            args = object_args(route)
            if not args:
                continue
            combos = fillings(world, route, source=source, own=False, every=True)
            if len(args) > 1:  # also one foreign id at a time, the others legitimately the target's own
                mine = fillings(world, route, source=target, own=True, every=False)[0]
                combos += [{**mine, a: v[a]} for v in combos for a in args]
            label = f"{case} {actor}->{target} ids of {source}"
            for values, method in itertools.product(combos, METHODS):
                url = route.url({"account_id": world.accounts[target].public_id, **values})
                count += 1
                response = browser(method, url)
                status = response.status_code
                if status == 404 or (status == 405 and not implements(route, method)):
                    if leak := leaked(response, forbidden):
                        failures.append(Failure(route.name, label, method, status, f"names {leak} in {url}"))
                    continue
                # Rule 5 forbids confirming that the foreign object exists. A refusal (403) or a redirect
                # decided before any lookup, i.e. exactly what a made-up id gets, confirms nothing: noted, not failed.
                made_up = route.url({"account_id": world.accounts[target].public_id,
                                     **{a: uuid.uuid4() for a in values}})
                control = browser(method, made_up)
                if status in (302, 403) and control.status_code == status and \
                        response.get("Location") == control.get("Location") and not leaked(response, forbidden):
                    notes.append(Failure(route.name, label, method, status, "same as a made-up id"))
                    continue
                failures.append(Failure(route.name, label, method, status,
                                        f"{url} (a made-up id gets {control.status_code})"))
    return failures, count, notes


def test_other_tenants_object_ids_under_a_reachable_account_are_404(mixed_results):
    failures, count, notes = mixed_results
    assert count > 20
    print(f"{count} mixed-id requests")
    print(f"{len(notes)} refusal(s) not a 404 but identical to a made-up id's:", *sorted(set(notes)), sep="\n  ")
    compare(failures, ("d:",))


def test_object_ids_without_an_account_in_the_url_are_404_across_tenants(world):
    """Patterns that take an object id but no account_id (none today): B's Owner with A's objects."""
    failures = []
    browser = Browser(world.owners["B"])
    for route in routes():
        if "account_id" in route.args or not object_args(route):
            continue
        for values, method in itertools.product(fillings(world, route, source="A", own=False, every=True), METHODS):
            response = browser(method, route.url(values))
            if not (response.status_code == 404 or (response.status_code == 405 and not implements(route, method))):
                failures.append(Failure(route.name, "object-only B->A", method, response.status_code, str(values)))
    compare(failures, ("object-only",))


def test_signed_out_visitors_are_sent_to_login_or_get_404(world):
    failures = []
    browser = Browser()
    login = reverse("login")
    for route in account_routes():
        for values, method in itertools.product(fillings(world, route, source="A1", own=True, every=False), METHODS):
            url = route.url({"account_id": world.accounts["A1"].public_id, **values})
            response = browser(method, url)
            status = response.status_code
            to_login = status == 302 and urlsplit(response["Location"]).path == login
            if not (to_login or status == 404):
                failures.append(Failure(route.name, "signed-out", method, status, response.get("Location", "")))
            elif leak := leaked(response, {name_of(k) for k in TREE}):
                failures.append(Failure(route.name, "signed-out", method, status, f"names {leak}"))
    compare(failures, ("signed-out",))


def _invitation_link(world):
    from members.invitations import invitation_token
    from members.models import Invitation

    invitation = Invitation.objects.get(account=world.accounts["A1"])
    return invitation_token(invitation), lambda: Invitation.objects.get(pk=invitation.pk).status


def _transfer_link(world):
    from billing.models import BillingTransfer
    from billing.transfers import transfer_token

    transfer = BillingTransfer.objects.get(account=world.accounts["A1a"])
    return transfer_token(transfer), lambda: BillingTransfer.objects.get(pk=transfer.pk).status


# Signed links (the non-uuid "token" arguments of NON_OBJECT_ARGS): pattern -> (token, state of its object).
TOKEN_LINKS = {"invitation-accept": _invitation_link, "billing:transfer-accept": _transfer_link}


def test_signed_links_are_bound_to_their_addressee(world):
    """Patterns whose object hides behind a signed token: another tenant's Owner (B) holding tenant A's link.
    Opening it may show it (whoever holds the link may read it) but never errs; acting on it (accept,
    decline, name an agency) is refused with a 403 and changes nothing: no membership, same status."""
    from members.models import Membership

    token_routes = [r.name for r in routes() if (r.name, "token") in NON_OBJECT_ARGS]
    failures = [Failure(name, "signed link B->A", "-", 0, "no entry in TOKEN_LINKS")
                for name in token_routes if name not in TOKEN_LINKS and name != "password_reset_confirm"]
    browser = Browser(world.owners["B"])
    for name in token_routes:
        if name not in TOKEN_LINKS:
            continue
        token, state = TOKEN_LINKS[name](world)
        url = reverse(name, kwargs={"token": token})
        before = state()
        got = browser("GET", url).status_code
        if got not in (200, 403):
            failures.append(Failure(name, "signed link B->A", "GET", got))
        for data in ({}, {"decision": "accept"}, {"decision": "decline"}, {"agency": world.accounts["B"].pk},
                     {"action": "accept"}):
            with transaction.atomic():
                response = browser.client.post(url, data)
                joined = Membership.objects.filter(user=world.owners["B"], account__in=[
                    world.accounts[k] for k in TREE if TENANT[k] == "A"]).exists()
                after = state()
                transaction.set_rollback(True)
            if response.status_code != 403 or joined or after != before:
                failures.append(Failure(name, "signed link B->A", "POST", response.status_code,
                                        f"{data} joined={joined} status {before}->{after}"))
    compare(failures, ("signed link",))


# ---- parameters: query strings and forms ------------------------------------------------------------

def fuzz_values(world: World, actor: str) -> list[str]:
    """Garbage, and ids of things the actor cannot reach (an ancestor's, a sibling's, another tenant's)."""
    from members.models import Membership

    hidden = [k for k in ("A", "A2", "B") if k not in world.reach(actor)]
    return ["not-a-uuid", "\x00", "x" * 3000, "https://evil.example/", "Zq",  # Zq: in every account name
            *(str(world.accounts[k].public_id) for k in hidden),
            str(objects_in(world.accounts["B"], Membership)[0].public_id)]


def reads_htmx(route: Route) -> bool:
    view = route.view_class
    objs = [c for c in view.__mro__ if _project_file(c)] if view else [inspect.unwrap(route.callback)]
    return any("htmx" in inspect.getsource(o) for o in objs)


@pytest.fixture(scope="module")
def param_results(world):
    """Each parameter the views read, fed bad values by the Owner of A1 (a subaccount: upward names are what
    must not show) and, where A1 cannot use the page (root-only pages), by the Owner of A."""
    failures, count, exercised = [], 0, set()
    for actor in ("A1", "A"):
        browser = Browser(world.owners[actor])
        forbidden = world.forbidden_tokens(actor)
        values = fuzz_values(world, actor)
        for route in routes():
            if route.args and "account_id" not in route.args:
                continue  # token links: covered above
            params = request_params(route)
            if not params:
                continue
            args = {"account_id": world.accounts[actor].public_id} if "account_id" in route.args else {}
            args.update(fillings(world, route, source=actor, own=True, every=False)[0] if object_args(route) else {})
            url = route.url(args)
            if route.name in exercised:
                continue  # A1's Owner could use this page: done
            first = {m: browser(m, url) for m in {m for m, _ in params}}
            if all(r.status_code < 400 for r in first.values()):
                exercised.add(route.name)
            baseline = {m: set(leaked(r, forbidden)) for m, r in first.items()}
            htmx_variants = (False, True) if reads_htmx(route) else (False,)
            for (method, param), value, htmx in itertools.product(sorted(params), values, htmx_variants):
                if htmx and method == "POST":
                    continue  # htmx only changes what GET pages render
                count += 1
                if method == "GET":
                    response = browser("GET", f"{url}?{urlencode({param: value})}", htmx=htmx)
                else:
                    response = browser("POST", url, {param: value}, htmx=htmx)
                status = response.status_code
                shown = repr(value if len(value) < 50 else value[:12] + "...")
                case = f"param {actor} {param}={shown}" + (" htmx" if htmx else "")
                if status >= 500:
                    failures.append(Failure(route.name, case, method, status))
                elif off_site(response):
                    failures.append(Failure(route.name, case, method, status, f"redirects to {response['Location']}"))
                elif leak := set(leaked(response, forbidden)) - baseline[method]:
                    failures.append(Failure(route.name, case, method, status, f"names {sorted(leak)}"))
    return failures, count


def test_parameters_never_break_or_leak(param_results):
    failures, count = param_results
    assert count > 100
    print(f"{count} parameter requests")
    compare(failures, ("param",))


def test_pages_never_name_accounts_above_or_beside_the_reader(world):
    """DESIGN rule 10: what the Owner of a subaccount (A1) or of a tenant (A) sees on their own pages names
    no account they cannot reach, and no one who belongs only to such accounts."""
    failures = []
    for actor in ("A", "A1"):
        browser = Browser(world.owners[actor])
        forbidden = world.forbidden_tokens(actor)
        for route in account_routes():
            if not implements(route, "GET"):
                continue
            for values in fillings(world, route, source=actor, own=True, every=True):
                url = route.url({"account_id": world.accounts[actor].public_id, **values})
                response = browser("GET", url)
                if response.status_code >= 500:
                    failures.append(Failure(route.name, f"names {actor}", "GET", response.status_code, url))
                elif leak := leaked(response, forbidden):
                    failures.append(Failure(route.name, f"names {actor}", "GET", response.status_code,
                                            f"shows {leak}"))
    compare(failures, ("names",))
