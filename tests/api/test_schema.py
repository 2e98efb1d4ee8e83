"""The OpenAPI schema: it validates, the docs are served from our own static files, and a schema-driven fuzz
test (schemathesis, bounded examples) finds no server error and no answer that breaks the schema."""

import time

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from developers.services import apikey_create
from members.roles import RoleId
from tests.factories import AccountFactory, MembershipFactory, UserFactory
from workspace.models import Agent, Contact

pytestmark = pytest.mark.django_db


def test_the_schema_is_served_and_names_every_endpoint(client):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
        "description": schema["components"]["securitySchemes"]["ApiKey"]["description"]}
    assert "/api/v1/accounts/{account_id}/subaccounts" in schema["paths"]


def test_the_schema_validates_without_warnings():
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


def test_docs_are_served_from_vendored_files_under_the_csp(client):
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui-bundle.js" in page and "http" not in page.replace("http-equiv", "")
    assert "<style" not in page and "<script>" not in page  # CSP: no inline style or script
    script = client.get("/api/v1/docs/?script=")
    assert script.status_code == 200 and "/api/v1/schema/" in script.content.decode()
    assert client.get(page.split('src="')[1].split('"')[0]).status_code == 200  # the bundle itself, served here


@pytest.fixture
def api_schema():
    """The schema, loaded from the app through WSGI. As Django's test client does, the request signals do not
    close the test's database connection (its transaction holds the test's data)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", get_wsgi_application())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_key(settings):
    settings.API_RATE_LIMIT = "100000/min"
    account = AccountFactory(name="Fuzzed")
    owner = UserFactory()
    MembershipFactory(user=owner, account=account, role=RoleId.OWNER)
    AccountFactory(parent=account, name="Fuzzed child")
    Agent.objects.create(account=account, name="Agent")
    Contact.objects.create(account=account, name="Contact", phone="+14155550199")
    return account, apikey_create(account=account, by=owner, label="Fuzz")[1]


EXAMPLES_PER_OPERATION = 12  # bounded: the whole test stays well under a minute
# CI's budget for this test (about 30 s on a loaded 2-core runner): a schema that grows past it must lower the
# examples per operation rather than slow every run down.
FUZZ_BUDGET_SECONDS = 150


def test_fuzz_the_api_against_its_schema(api_schema, fuzz_key):
    """Every operation, with the key's own account in the path (so real code runs, not only 404s): never a
    server error, never a status, content type or body the schema does not describe."""
    account, key = fuzz_key
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    failures, operations = [], 0
    started = time.monotonic()
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        path_parameters = {"account_id": str(account.public_id)} if "{account_id}" in operation.path else None

        @given(case=operation.as_strategy(path_parameters=path_parameters))
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            case.call_and_validate(headers={"X-API-Key": key}, checks=checks)

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collected, so one run reports every failing operation
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    elapsed = time.monotonic() - started
    assert operations >= 30
    assert not failures, "\n\n".join(failures)
    assert elapsed < FUZZ_BUDGET_SECONDS, f"{operations} operations took {elapsed:.0f}s"
