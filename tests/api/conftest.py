import json

import pytest
from django.test import Client

from developers.services import apikey_create
from members.roles import RoleId
from tests.factories import AccountFactory


class Api:
    """A client that sends JSON with an ``X-API-Key``."""

    def __init__(self, key: str | None):
        self.client = Client(raise_request_exception=False)
        self.key = key

    def __call__(self, method: str, url: str, data=None, **headers):
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
        if self.key is not None:
            extra["HTTP_X_API_KEY"] = self.key
        body = json.dumps(data) if data is not None else None
        return getattr(self.client, method.lower())(url, data=body, content_type="application/json", **extra)

    def get(self, url, **headers):
        return self("GET", url, **headers)

    def post(self, url, data=None, **headers):
        return self("POST", url, data if data is not None else {}, **headers)

    def patch(self, url, data=None, **headers):
        return self("PATCH", url, data if data is not None else {}, **headers)


@pytest.fixture
def api_for():
    """api_for(account, user, **create_kwargs) -> an Api client holding a new key of ``account`` made by ``user``."""

    def make(account, user, label="Test key", **kwargs):
        key, full = apikey_create(account=account, by=user, label=label, **kwargs)
        api = Api(full)
        api.api_key = key
        return api

    return make


def v1(path: str) -> str:
    return f"/api/v1/{path}"


@pytest.fixture
def root():
    """The tenant most API tests work in."""
    return AccountFactory(name="Northwind")


@pytest.fixture
def owner(root, make_member):
    return make_member(root, RoleId.OWNER)


@pytest.fixture
def api(root, owner, api_for):
    """The root owner's key, as a client."""
    return api_for(root, owner)


def acc(account, rest=""):
    """/api/v1/accounts/<account>/<rest>"""
    return v1(f"accounts/{account.public_id}{rest}")
