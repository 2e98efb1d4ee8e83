import datetime
import gc
import os
import time
import warnings
from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.db import connection, connections
from django.test import TransactionTestCase
from django.test.utils import CaptureQueriesContext

from members.roles import RoleId

from .factories import PASSWORD, AccountFactory, MembershipFactory, UserFactory
from .stripe_schema import MIGRATIONS

# Time is an input. Tests whose outcome depends on the date freeze the clock themselves
# (``pytest.mark.time_machine(instant, tick=False)`` or ``time_machine.travel(instant, tick=False)``).
# TEST_FAKE_NOW runs the whole session with the clock starting at that instant (and ticking), to prove
# that nothing else does, e.g. in the first minutes of a month or the last minutes of a year:
#   TEST_FAKE_NOW=2026-12-01T00:10:00Z .venv/bin/python -m pytest -m "not browser"
FAKE_NOW_ENV = "TEST_FAKE_NOW"
_fake_now_key = pytest.StashKey[datetime.datetime]()


def fake_now_from_env() -> datetime.datetime | None:
    value = os.environ.get(FAKE_NOW_ENV, "").strip()
    if not value:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise pytest.UsageError(
            f"{FAKE_NOW_ENV} takes an ISO 8601 instant such as 2026-12-01T00:10:00Z, not {value!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _now_from_the_python_clock(self, compiler, conn, **extra_context):
    """Now() as the (fake) Python clock instead of the database server's, which time-machine cannot move:
    with a fake clock, "expired" must mean the same thing in Python and in SQL (agency grants use Now())."""
    from django.utils import timezone

    return "%s", [conn.ops.adapt_datetimefield_value(timezone.now())]


_django_fixture_teardown = TransactionTestCase._fixture_teardown


def _flush_then_restore_serialized_rows(self):
    """After every transactional test, the database as the migrations left it, with the same primary keys.

    Django empties the database after a ``serialized_rollback`` test and puts the migrated rows (content types,
    permissions, the seeded plans and groups) back only when the next test asks for ``serialized_rollback`` too:
    any other transactional test that came next (an order pytest-xdist changes from run to run) found no
    permission rows. After any other transactional test it empties the database and lets ``post_migrate`` make
    those rows again, under new primary keys on PostgreSQL (its sequences go on): a ``serialized_rollback`` test
    that came next then put back the staff groups under their old keys beside the new ones and failed on the
    unique names (every such test of a pytest-xdist worker, in one CI run). So every transactional test's flush
    skips ``post_migrate`` and the serialized rows are put back at once."""
    restore = [alias for alias in self._databases_names(include_mirrors=False)
               if hasattr(connections[alias], "_test_serialized_contents")]
    serialized = self.serialized_rollback
    self.serialized_rollback = serialized or bool(restore)  # Django's flush then skips post_migrate
    try:
        _django_fixture_teardown(self)
    finally:
        self.serialized_rollback = serialized
    for alias in restore:
        connections[alias].creation.deserialize_db_from_string(connections[alias]._test_serialized_contents)


def pytest_configure(config):
    """dj-stripe's tables from one migration, the migrated rows kept after a ``serialized_rollback`` test, and the
    session's fake clock started before any test module is imported (some compute dates at import)."""
    # dj-stripe's migration history takes 85-105 s to apply here in every test database (a third of a CI pass):
    # its tables come from one migration made from its models (tests/stripe_schema); the project's own
    # migrations run as in production.
    django_settings.MIGRATION_MODULES = {**getattr(django_settings, "MIGRATION_MODULES", {}), "djstripe": MIGRATIONS}
    TransactionTestCase._fixture_teardown = _flush_then_restore_serialized_rows
    moment = fake_now_from_env()
    if moment is None:
        return
    import time_machine
    from django.db.models.functions import Now

    traveller = time_machine.travel(moment, tick=True)
    traveller.start()
    config.add_cleanup(traveller.stop)
    for name in ("as_sql", "as_sqlite", "as_postgresql", "as_mysql", "as_oracle"):
        if hasattr(Now, name):
            patcher = mock.patch.object(Now, name, _now_from_the_python_clock)
            patcher.start()
            config.add_cleanup(patcher.stop)
    config.stash[_fake_now_key] = moment
    import accounts.baked

    accounts.baked.ENABLED = False  # a query compiled once would keep the first Now() it was given


def pytest_report_header(config):
    if _fake_now_key in config.stash:
        return f"{FAKE_NOW_ENV}: the clock starts at {config.stash[_fake_now_key].isoformat()} and ticks"


# No silent skips in CI: a missing test dependency skips the tests locally (with the reason) but fails
# them when CI is set (CI=true in CI) or when the caller says the tests are required.
def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def missing_test_dependency():
    """missing_test_dependency(reason, required=False): skips the test, or fails it in CI / when required."""

    def handle(reason: str, *, required: bool = False, how_to_require: str = "CI=true"):
        if required or in_ci():
            pytest.fail(f"{reason} These tests must run here ({how_to_require}), so this is an error, not a skip.",
                        pytrace=False)
        pytest.skip(f"{reason} (Skipped outside CI; {how_to_require} makes this an error.)")

    return handle


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Sign-in throttling counts in the cache: each test starts with none counted."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def password():
    return PASSWORD


@pytest.fixture
def make_member():
    """make_member(account, role="member") -> user with that role in the account."""

    def make(account, role=RoleId.MEMBER, user=None):
        user = user or UserFactory()
        MembershipFactory(user=user, account=account, role=role)
        return user

    return make


@pytest.fixture
def agency(db):
    """A root agency account with an Owner."""
    return AccountFactory(name="Agency")


@pytest.fixture
def login(client):
    def do(user):
        client.force_login(user)
        return client

    return do


class QueryCounter:
    """Counts the queries a callable makes: ``count(lambda: client.get(url))``."""

    def __call__(self, fn):
        with CaptureQueriesContext(connection) as ctx:
            result = fn()
        self.last_result = result
        return len(ctx.captured_queries)


@pytest.fixture
def count_queries():
    return QueryCounter()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's, and before it drops a PostgreSQL test database: the connections of threads that have ended
    are collected (psycopg closes them), and processes still exiting (a test's gunicorn workers) get up to 10 s.
    A session still connected after that is named in a warning, and the drop fails (pytest-django warns; .ci/run
    fails)."""
    yield
    if connection.vendor != "postgresql":
        return
    gc.collect()
    with django_db_blocker.unblock():
        for _ in range(100):
            with connection.cursor() as cursor:
                cursor.execute("SELECT pid, application_name, state, backend_start, left(query, 200) "
                               "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                               " AND backend_type = 'client backend'")
                others = cursor.fetchall()
            if not others:
                return
            time.sleep(0.1)
    warnings.warn(f"still connected to {connection.settings_dict['NAME']}: {others}", pytest.PytestWarning,
                  stacklevel=1)


@pytest.fixture
def no_orm_compilation(monkeypatch):
    """Fail a test whose baked queries (``accounts.baked``) fall back to the ORM compiling them; nothing while
    baking is off (TEST_FAKE_NOW), when the ORM compiles every query."""
    from accounts import baked

    def enable():
        if baked.ENABLED:
            monkeypatch.setattr(baked.Baked, "_plain", lambda *a, **k: pytest.fail("compiled by the ORM"))

    return enable
