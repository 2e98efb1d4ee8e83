"""Every REST API pattern, discovered from the resolver (a new endpoint is covered without editing this file):
keys that do not reach the URL's account get 404 for every method, a reachable account's URL with another
tenant's (or a sibling's) object ids gets 404, and no key gets 401. Each request is rolled back."""

import itertools

import pytest
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.models import Account
from billing.models import BillingTransfer, Invoice
from members.models import Invitation, Membership
from tests.test_url_isolation import Route

from .conftest import Api

pytestmark = pytest.mark.django_db

METHODS = ("GET", "POST", "PATCH", "DELETE")
TREE = {"A": None, "A1": "A", "A1a": "A1", "A2": "A", "B": None, "B1": "B"}


def api_routes() -> list[Route]:
    (api,) = [e for e in get_resolver().url_patterns if isinstance(e, URLResolver) and str(e.pattern) == "api/v1/"]
    found = []
    for entry in api.url_patterns:
        assert isinstance(entry, URLPattern)
        if entry.name == "not-found":  # the catch-all for unknown paths (tests/api/test_api.py)
            continue
        found.append(Route(f"api:{entry.name}", f"api/v1/{entry.pattern._route}", dict(entry.pattern.converters),
                           entry.callback))
    return [r for r in found if "account_id" in r.args]


def model_of(route: Route, arg: str):
    if arg == "subaccount_id":
        return Account
    if arg == "invoice_id":
        return Invoice
    if arg == "membership_id":
        return Membership
    if arg == "invitation_id":
        return Invitation
    if arg == "transfer_id":
        return BillingTransfer
    if arg == "object_id":
        return getattr(route.view_class, "model", None) or route.view_class.serializer_class.Meta.model
    raise AssertionError(f"{route.name}: teach tests/api/test_api_isolation.py what {arg!r} is")


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    import datetime

    from django.test.utils import override_settings
    from django.utils import timezone

    from billing.models import Plan, period_start
    from developers.services import apikey_create
    from members.roles import RoleId
    from tests.factories import AccountFactory, MembershipFactory, UserFactory
    from workspace.models import Agent, Contact, Conversation

    with django_db_blocker.unblock(), override_settings(
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]), transaction.atomic():
        accounts, keys = {}, {}
        for name, parent in TREE.items():
            account = accounts[name] = AccountFactory(name=f"Api {name}", parent=accounts[parent] if parent else None)
            owner = UserFactory(email=f"owner@{name.lower()}.api.test")
            MembershipFactory(user=owner, account=account, role=RoleId.OWNER)
            keys[name] = apikey_create(account=account, by=owner, label=f"Key {name}")[1]
            agent = Agent.objects.create(account=account, name=f"Agent {name}")
            contact = Contact.objects.create(account=account, name=f"Contact {name}", email=f"c@{name}.test")
            Conversation.objects.create(account=account, agent=agent, contact=contact, duration_seconds=60,
                                        started_at=timezone.now() - datetime.timedelta(hours=1))
            Invitation.objects.create(account=account, email=f"invitee@{name}.test", invited_by=owner)
            Invoice.objects.create(account=account, period=period_start(), plan_name="Agency", plan_price_cents=1,
                                   included_minutes=1, overage_cents_per_minute=1, total_minutes=0,
                                   overage_minutes=0, total_cents=1)
            if parent:  # a billing transfer of every subaccount, started by its parent
                BillingTransfer.objects.create(account=account, from_parent=accounts[parent],
                                               from_root=accounts[name[0]], plan=Plan.objects.first(),
                                               billing_owner_email=f"payer@{name.lower()}.api.test", nonce="n")
        yield accounts, keys
        transaction.set_rollback(True)


def objects_of(account: Account, model) -> list:
    if model is Account:
        return list(Account.objects.filter(parent=account).order_by("path"))
    if model is BillingTransfer:  # those of the account's subaccounts (paired with every subaccount id)
        return list(BillingTransfer.objects.filter(from_parent=account).order_by("pk"))
    return list(model.objects.filter(account=account).order_by("pk"))


def fill(route: Route, target: Account, source: Account) -> list[str]:
    """URLs of ``route`` under ``target`` with the other ids taken from ``source``'s objects (every combination)."""
    args = [a for a in route.args if a != "account_id"]
    choices = []
    for arg in args:
        objs = objects_of(source, model_of(route, arg))
        choices.append([o.public_id for o in objs] or [None])
    urls = []
    for combo in itertools.product(*choices):
        if None in combo:
            continue
        urls.append(route.url({"account_id": target.public_id, **dict(zip(args, combo, strict=True))}))
    return urls


def ask(api: Api, method: str, url: str) -> int:
    with transaction.atomic():
        response = api(method, url, {} if method in ("POST", "PATCH") else None)
        transaction.set_rollback(True)
    return response.status_code


CROSS = [("sibling", "A2", "A1"), ("descendant", "A1a", "A1"), ("descendant", "A1a", "A"), ("other", "B", "A"),
         ("other", "A", "B1")]
MIXED = [("A", "A", "B"), ("A", "A1", "A2"), ("A", "A1", "B1"), ("A1", "A1", "A")]


def test_every_api_pattern_is_found(world):
    names = {r.name for r in api_routes()}
    assert {"api:account-detail", "api:subaccount-list", "api:agent-detail", "api:invoice-detail",
            "api:member-detail", "api:invitation-revoke", "api:billing-transfer-cancel"} <= names


def test_keys_that_do_not_reach_the_account_get_404_for_every_method(world):
    accounts, keys = world
    failures, count = [], 0
    for case, holder, target in CROSS:
        api = Api(keys[holder])
        for route in api_routes():
            for url in fill(route, accounts[target], accounts[target]):
                for method in METHODS:
                    count += 1
                    status = ask(api, method, url)
                    if status != 404:
                        failures.append(f"{case} key {holder} -> {target}: {method} {route.name} {url} = {status}")
    assert count > 100
    assert not failures, "\n".join(failures)


def test_a_reachable_accounts_url_with_foreign_object_ids_is_404(world):
    accounts, keys = world
    failures, count = [], 0
    for holder, target, source in MIXED:
        api = Api(keys[holder])
        for route in api_routes():
            if len(route.args) < 2:
                continue
            for url in fill(route, accounts[target], accounts[source]):
                for method in METHODS:
                    count += 1
                    status = ask(api, method, url)
                    implemented = hasattr(route.view_class, method.lower())
                    if not (status == 404 or (status == 405 and not implemented)):
                        failures.append(f"key {holder} on {target} with {source}'s ids: {method} {url} = {status}")
    assert count > 20
    assert not failures, "\n".join(failures)


def test_no_key_is_401_everywhere(world):
    accounts, _ = world
    failures = []
    for route in api_routes():
        for url in fill(route, accounts["A1"], accounts["A1"]):
            for method in METHODS:
                status = ask(Api(None), method, url)
                if status != 401:
                    failures.append(f"{method} {url} = {status}")
    assert not failures, "\n".join(failures)
