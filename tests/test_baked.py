"""``accounts.baked``: a query compiled once gives, for any values, the rows the plain queryset gives, in one query
with the same SQL; what it cannot run safely (a value that is not an argument, a clock) it refuses or runs plain."""

import datetime
import re
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import baked
from accounts.access import _account_by_public_id, _accounts_by_path, _memberships_in
from accounts.baked import Baked
from accounts.models import Account, AuditEvent, subtree_bounds
from accounts.selectors import _entry_points, _memberships_in_force, _memberships_of, _search, _search_within
from members.models import Membership
from members.roles import RoleId
from security.models import SupportAccess
from security.policy import _lineage_support
from tests.factories import AccountFactory, UserFactory, account_chain

# Baking is off in the TEST_FAKE_NOW pass (its Now() is a Python parameter): nothing here to check then.
pytestmark = [pytest.mark.django_db,
              pytest.mark.skipif(not baked.ENABLED, reason="baking is off in this run (TEST_FAKE_NOW)")]


def same_as_plain(query: Baked, *args, **shape):
    """The baked rows equal the plain queryset's (model instances by pk and every field), one query each, same SQL."""
    plain_qs = query.build(*args, **shape)
    with CaptureQueriesContext(connection) as plain_sql:
        plain = list(plain_qs)
    with CaptureQueriesContext(connection) as baked_sql:
        got = query(*args, **shape)
    assert len(baked_sql.captured_queries) == len(plain_sql.captured_queries) == 1
    # a prepared statement: the log shows the SQL sent, parameters as $1, $2…
    if query.prepare and baked._prepares(connection):
        assert baked_sql.captured_queries[0]["sql"] == numbered(plain_qs.query.sql_with_params()[0])
    else:
        assert baked_sql.captured_queries[0]["sql"] == plain_sql.captured_queries[0]["sql"]

    def fields(row):
        if hasattr(row, "_meta"):
            return (row.pk, {f.attname: getattr(row, f.attname) for f in row._meta.concrete_fields},
                    {k: v for k, v in row.__dict__.items() if not k.startswith("_")})
        return row

    assert [fields(r) for r in got] == [fields(r) for r in plain]
    return got


def numbered(sql: str) -> str:
    """Django's ``%s`` placeholders as PostgreSQL's ``$1``, ``$2``… (``%%`` a plain percent sign)."""
    numbers = iter(range(1, 10**6))
    return re.sub(r"%[s%]", lambda m: "%" if m.group() == "%%" else f"${next(numbers)}", sql)


@pytest.fixture
def tree(db):
    chain = account_chain(4, prefix="Bake")
    other = AccountFactory(name="Other 100%_\\ tenant")
    return chain, other


def test_values_of_every_kind_give_the_plain_rows(tree):
    chain, other = tree
    by_name = Baked(lambda text: Account.objects.filter(name__icontains=text).order_by("path"))
    for text in ("bake", "Level", "100%", "%", "_", "\\", "0%_\\ t", "nothing like it"):
        same_as_plain(by_name, text)
    assert [a.pk for a in by_name("100%_")] == [other.pk]  # the LIKE wildcards are escaped as the ORM does
    assert by_name("%") == [other]

    by_id = Baked(lambda public_id: Account.objects.filter(public_id=public_id))
    for account in (*chain, other):
        assert same_as_plain(by_id, account.public_id) == [account]
    assert same_as_plain(by_id, uuid.uuid4()) == []

    by_paths = Baked(lambda paths: Account.objects.filter(path__in=paths).order_by("depth"))
    for n in range(1, 5):
        assert same_as_plain(by_paths, chain[n - 1].lineage_paths) == chain[:n]

    subtree = Baked(lambda low, high: Account.objects.filter(path__gte=low, path__lte=high)
                    .values_list("pk", flat=True))
    low, high = subtree_bounds(chain[1].path)
    assert sorted(same_as_plain(subtree, low, high)) == [a.pk for a in chain[1:]]

    created = Baked(lambda since, day: AuditEvent.objects.filter(created_at__gte=since, created_at__date__lte=day)
                    .values_list("action", flat=True).order_by("pk"))
    now = timezone.now()
    for since in (now - datetime.timedelta(days=1), now + datetime.timedelta(days=1)):
        same_as_plain(created, since, now.date())


def test_shape_arguments_change_the_sql_and_are_kept_apart(tree):
    chain, _ = tree
    page = Baked(lambda prefix, *, start, stop: Account.objects.filter(name__startswith=prefix)
                 .order_by("path")[start:stop])
    assert same_as_plain(page, "Bake", start=0, stop=2) == chain[:2]
    assert same_as_plain(page, "Bake", start=2, stop=4) == chain[2:]
    assert same_as_plain(page, "Bake", start=0, stop=2) == chain[:2]


def test_none_bool_and_empty_lists_run_the_plain_queryset(tree):
    chain, _ = tree
    by_parent = Baked(lambda parent_id: Account.objects.filter(parent_id=parent_id).order_by("path"))
    assert by_parent(None) == list(Account.objects.filter(parent=None).order_by("path"))
    by_ids = Baked(lambda ids: Account.objects.filter(pk__in=ids))
    with CaptureQueriesContext(connection) as queries:
        assert by_ids([]) == []
    assert not queries.captured_queries  # the ORM answers an empty IN without asking, and so does this
    flagged = Baked(lambda flag: Account.objects.filter(parent__isnull=flag).order_by("path"))
    assert flagged(True) == [a for a in Account.objects.order_by("path") if a.parent_id is None]


def test_a_value_that_is_not_an_argument_is_refused():
    frozen_clock = Baked(lambda user_id: Membership.objects.filter(user_id=user_id, created_at__lte=timezone.now()))
    with pytest.raises(ImproperlyConfigured, match="not one of its arguments"):
        frozen_clock(1)
    padded = Baked(lambda path: Account.objects.filter(path__gte=path, path__lte=path + "Z" * (40 - len(path))))
    with pytest.raises(ImproperlyConfigured, match="not one of its arguments"):
        padded("0001")


def test_a_fixed_text_around_an_argument_is_kept(tree):
    chain, _ = tree
    below = Baked(lambda path: Account.objects.filter(path__gt=path, path__lte=path + "ZZZZ").order_by("path"))
    assert same_as_plain(below, chain[1].path) == chain[2:]


def test_switched_off_it_runs_the_plain_queryset(tree, monkeypatch):
    chain, _ = tree
    by_id = Baked(lambda pk: Account.objects.filter(pk=pk))
    monkeypatch.setattr(baked, "ENABLED", False)
    assert by_id(chain[0].pk) == [chain[0]]
    assert not by_id._entries


def test_the_hot_path_queries_are_baked_and_answer_as_the_orm_does(tree, make_member):
    """Each baked query of the account pages gives the plain rows, for a member deep down and for an agency user."""
    chain, other = tree
    person = make_member(chain[1], RoleId.ADMIN)
    make_member(chain[3], RoleId.MEMBER, user=person)
    staff = UserFactory(is_staff=True)
    for account, include in ((chain[0], True), (chain[2], False)):  # windows the lineage loads carry
        SupportAccess.objects.create(account=account, requested_by=staff, reason="r", hours=4, status="active",
                                     level="read", expires_at=timezone.now() + datetime.timedelta(hours=2),
                                     include_subaccounts=include)
    ids = [a.pk for a in chain]
    for account in chain:
        for who in (person.pk, staff.pk):  # with a membership on some of the lineage, and with none
            same_as_plain(_account_by_public_id, account.public_id, who)
            if account.depth > 1:
                same_as_plain(_accounts_by_path, account.ancestor_paths, who)
        same_as_plain(_lineage_support, ids[:account.depth], account.pk)
    same_as_plain(_memberships_in, person.pk, ids)
    same_as_plain(_entry_points, person.pk, limit=1)
    same_as_plain(_entry_points, UserFactory().pk, limit=1)
    same_as_plain(_search, person.pk, "Level", start=0, stop=51)
    same_as_plain(_search, person.pk, "100%", start=0, stop=51)
    same_as_plain(_memberships_in_force, person.pk, limit=21)
    low, high = subtree_bounds(chain[1].path)
    same_as_plain(_search_within, person.pk, "Level", [low], [high], [], start=0, stop=51)
    same_as_plain(_search_within, person.pk, "Level", [low], [high], [chain[0].path], start=0, stop=51)
    same_as_plain(_search_within, person.pk, "Level", [low], [high], [], start=0, stop=51, reach_parent=False)
    same_as_plain(_memberships_of, person.pk, limit=21)
    for query in (_account_by_public_id, _accounts_by_path, _lineage_support, _memberships_in, _entry_points,
                  _search):
        assert query._entries and all(query._entries.values()), query.build


def test_the_members_page_and_caps_queries_answer_as_the_orm_does(tree, make_member):
    """The Members page's invitations and inherited members, and a root's agency caps (settings and grants with
    their JSON matrices), baked, give the plain rows."""
    from agency.models import AgencyGrant, AgencySettings
    from members.models import Invitation
    from members.rows import _agency_settings, _grant_matrices
    from members.team_views import _inherited, _pending

    chain, other = tree
    owner = make_member(chain[0], RoleId.OWNER)
    make_member(chain[1], RoleId.ADMIN)
    Invitation.objects.create(account=chain[2], email="a@example.com", role=RoleId.MEMBER, invited_by=owner)
    AgencySettings.objects.create(account=chain[0], enabled=True, matrix={"agents": "read"})
    AgencyGrant.objects.create(client=chain[0], agency=other, status="active", matrix={"billing": "none"})
    for query, args in ((_pending, (chain[2].pk,)), (_inherited, ([a.pk for a in chain[:2]],)),
                        (_agency_settings, (chain[0].pk,)), (_grant_matrices, (chain[0].pk,))):
        same_as_plain(query, *args)
    assert list(_agency_settings(chain[0].pk)) == [({"agents": "read"},)]
    assert list(_grant_matrices(chain[0].pk)) == [(other.pk, {"billing": "none"})]


@pytest.mark.parametrize("order", [("name", "pk"), ("-minutes_used", "name"), ("-members_count", "name")])
def test_subaccount_rows_told_the_page_give_what_they_give_untold(order, make_member):
    """``SubaccountRows.expect``: the page's ids and the total in one query give the same count and rows (with
    every figure) as a count and a page, for every page, a page past the last, and a search."""
    from accounts.selectors import SubaccountRows
    from tests.factories import usage

    root = AccountFactory(name="Root")
    subs = [AccountFactory(parent=root, name=f"Sub {i % 4} {i}") for i in range(11)]
    for i, sub in enumerate(subs):
        usage(sub, i * 7 % 5)
        if i % 3 == 0:
            make_member(sub, RoleId.MEMBER)

    def rows(told, page, **kwargs):
        found = SubaccountRows(root, order=order, **kwargs)
        if told:
            found.expect(page, 4)
        count = found.count()
        start = (page - 1) * 4
        return count, [(a.pk, a.members_count, a.agents_count, a.minutes_used, a.transfer_status)
                       for a in found[start:start + 4]]

    for kwargs in ({}, {"text": "sub 1", "subtree": True}):
        for page in (1, 2, 3, 4):
            assert rows(True, page, **kwargs) == rows(False, page, **kwargs)
    assert rows(True, 1)[0] == 11 and len(rows(True, 3)[1]) == 3 and rows(True, 4) == (11, [])


def test_shapes_are_kept_up_to_a_bound(tree, monkeypatch):
    """A shape includes a page's offset, which visitors choose: the oldest shapes go once the bound is reached."""
    chain, _ = tree
    monkeypatch.setattr(baked, "MAX_SHAPES", 5)
    page = Baked(lambda prefix, *, start: Account.objects.filter(name__startswith=prefix).order_by("path")[start:])
    for start in range(12):
        assert page("Bake", start=start) == chain[start:]
    assert len(page._entries) == 5


def test_an_integer_field_lookup_takes_the_argument_as_the_driver_wraps_it(tree):
    chain, _ = tree
    deeper = Baked(lambda path, depth: Account.objects.filter(path__startswith=path, depth__gt=depth).order_by("path"))
    for n in range(4):
        assert same_as_plain(deeper, chain[0].path, n + 1) == chain[n + 1:]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # keeps the seeded rows for later tests
def test_a_query_baked_in_one_thread_runs_on_another_threads_own_connection():
    """Connections are per thread: the compiled query is replayed on the caller's, never on the baker's."""
    import threading

    from django.db import connections

    root = AccountFactory(name="Threaded")
    by_name = Baked(lambda name: Account.objects.filter(name=name))
    assert by_name("Threaded") == [root]  # baked here
    found, seen = [], []

    def other():
        try:
            with CaptureQueriesContext(connections["default"]) as queries:
                found.extend(by_name("Threaded"))
            seen.extend(queries.captured_queries)
        finally:
            connections.close_all()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert found == [root] and len(seen) == 1


# Found by review: each of these misfired before the stand-ins were reworked.

def test_a_small_integer_column_keeps_its_condition():
    """The stand-in fits a small integer column: the ORM does not drop the condition as out of range."""
    from billing.models import Plan
    from tests.factories import plan

    for code in ("free", "pro", "agency"):
        plan(code)
    below = Baked(lambda n: Plan.objects.filter(sort_order__lt=n).order_by("pk").values_list("sort_order", flat=True))
    either = Baked(lambda n, name: Plan.objects.filter(Q(sort_order=n) | Q(name=name)).order_by("pk")
                   .values_list("name", flat=True))
    for n in (0, 1, 2, 3):
        same_as_plain(below, n)
        same_as_plain(either, n, "Nope")


def test_a_long_list_never_lends_an_element_to_the_next_argument(tree):
    chain, other = tree
    picked = Baked(lambda ids, excluded: Account.objects.filter(pk__in=ids).exclude(pk=excluded).order_by("pk"))
    missing = list(range(10**6, 10**6 + 99))
    ids = [chain[0].pk, *missing, other.pk]  # 101 elements: run unbaked, and right
    assert picked(ids, chain[0].pk) == [other] and not picked._entries
    ids = [chain[0].pk, *missing[:98], other.pk]  # 100: baked, each element with a stand-in of its own
    assert same_as_plain(picked, ids, chain[0].pk) == [other]


def test_a_value_derived_from_an_argument_is_refused_not_frozen(tree):
    on_day = Baked(lambda when: Account.objects.filter(created_at__date=when))  # the ORM takes the datetime's date
    with pytest.raises(ImproperlyConfigured, match="not one of its arguments"):
        on_day(timezone.now())
    month = Baked(lambda day: Account.objects.filter(created_at__date__gte=day.replace(day=1)))
    with pytest.raises(ImproperlyConfigured, match="not one of its arguments"):
        month(timezone.now().date())
    lowered = Baked(lambda name: Account.objects.filter(name=name.lower()))
    with pytest.raises(ImproperlyConfigured, match="not one of its arguments"):
        lowered("Bake")


def test_lists_of_other_element_types_are_other_shapes(tree):
    chain, _ = tree
    by_pk = Baked(lambda values: Account.objects.filter(pk__in=values).order_by("pk"))
    assert by_pk([str(chain[0].pk)]) == [chain[0]]  # text ids: the field converts them, so run unbaked
    assert by_pk([chain[1].pk]) == [chain[1]]  # ints: baked apart, not served by the text shape
    assert sorted(map(bool, by_pk._entries.values())) == [False, True]


# Prepared statements (PostgreSQL): the baked queries only, once per connection, and a plan gone stale.

on_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")


def prepared_statements() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return {row[0] for row in cursor.fetchall()}


@on_postgresql
def test_a_baked_query_is_prepared_on_its_second_run_and_the_orm_s_own_never(tree):
    chain, _ = tree
    by_name = Baked(lambda name: Account.objects.filter(name=name).order_by("pk"))
    before = prepared_statements()
    assert by_name(chain[0].name) == [chain[0]]
    assert prepared_statements() == before  # run once: not prepared (a far page, a search)
    assert by_name(chain[1].name) == [chain[1]]  # the second time
    for _ in range(3):
        assert list(Account.objects.filter(name=chain[1].name)) == [chain[1]]  # Django's: bound client-side
    added = prepared_statements() - before
    assert len(added) == 1 and '"accounts_account"."name" = $1' in next(iter(added))
    with CaptureQueriesContext(connection) as queries:
        assert by_name(chain[2].name) == [chain[2]] and by_name("nobody") == []
    assert len(queries.captured_queries) == 2  # counted in the query log like any other
    assert '"accounts_account"."name" = $1' in queries.captured_queries[0]["sql"]
    assert prepared_statements() - before == added  # the same statement again, not a new one


@on_postgresql
def test_switched_off_nothing_is_prepared(tree, settings):
    settings.BAKED_PREPARED_STATEMENTS = False
    chain, _ = tree
    by_name = Baked(lambda name: Account.objects.filter(name=name))
    before = prepared_statements()
    assert by_name(chain[0].name) == [chain[0]] and by_name(chain[1].name) == [chain[1]]
    assert prepared_statements() == before


@on_postgresql
def test_a_query_made_not_to_prepare_never_is_nor_are_its_pages(tree):
    """``prepare=False`` (a plan that must fit its values): baked all the same, planned by PostgreSQL each run."""
    chain, _ = tree
    by_name = Baked(lambda name: Account.objects.filter(name=name).order_by("pk"), prepare=False)
    before = prepared_statements()
    for account in (*chain, chain[0]):
        assert same_as_plain(by_name, account.name) == [account]
    pages = by_name.pages(chain[1].name)
    assert pages.count() == 1 and pages[0:1] == [chain[1]] and pages[0:1] == [chain[1]]
    assert prepared_statements() == before
    assert by_name._entries and by_name.sliced()._entries  # compiled once all the same


@pytest.fixture
def stale_probe():
    """(an account, a baked query returning ``baked_probe.v`` (7) beside it, another connection that can change that
    column's type as a migration would); the table is dropped afterwards."""
    import psycopg
    from django.db.models.expressions import RawSQL

    account = AccountFactory(name="Probe")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE baked_probe (v integer); INSERT INTO baked_probe VALUES (7)")
    probe = Baked(lambda pk: Account.objects.filter(pk=pk).values_list(
        RawSQL("SELECT v FROM baked_probe", ()), flat=True))
    other = psycopg.connect(**connection.get_connection_params(), autocommit=True)
    try:
        yield account, probe, other
    finally:
        other.close()
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE baked_probe")


@on_postgresql
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_plan_a_migration_made_stale_is_prepared_again_outside_a_transaction(stale_probe):
    """Another connection changes the type of a column the statement returns (a migration while the app runs):
    PostgreSQL refuses the prepared plan. Outside a transaction the query is prepared again and answers; inside
    one the error stands, and once that transaction has rolled back the query answers again."""
    from django.db import NotSupportedError, transaction

    account, probe, other = stale_probe
    assert probe(account.pk) == [7] and probe(account.pk) == [7]  # prepared on the second run
    assert any("baked_probe" in statement for statement in prepared_statements())

    other.execute("ALTER TABLE baked_probe ALTER COLUMN v TYPE bigint")
    with CaptureQueriesContext(connection) as queries:
        assert probe(account.pk) == [7]
    # refused, the statements deallocated (by psycopg, not in the log), run again
    assert [q["sql"] for q in queries.captured_queries] == [queries[0]["sql"]] * 2
    assert probe(account.pk) == [7]  # prepared again (its second run since)

    other.execute("ALTER TABLE baked_probe ALTER COLUMN v TYPE integer")
    with pytest.raises(NotSupportedError, match="cached plan must not change result type"):  # noqa: SIM117
        with transaction.atomic():
            probe(account.pk)
    assert probe(account.pk) == [7] and probe(account.pk) == [7]  # and prepared again

    # a transaction opened by turning autocommit off is one too: the error stands, the rollback clears
    other.execute("ALTER TABLE baked_probe ALTER COLUMN v TYPE bigint")
    transaction.set_autocommit(False)
    try:
        with pytest.raises(NotSupportedError, match="cached plan must not change result type"):
            probe(account.pk)
        transaction.rollback()
    finally:
        transaction.set_autocommit(True)
    assert probe(account.pk) == [7]


@on_postgresql
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_stale_plans_recover_every_time_and_no_other_refusal_is_run_twice(stale_probe):
    """However often plans go stale on one connection, its other prepared queries keep working (psycopg forgets the
    names the server dropped: it noticed a DEALLOCATE ALL sent as a query only once). And only a stale plan, refused
    before anything ran, is retried: another refusal of its class (0A000) from a prepared query with a side effect
    stands, the side effect once."""
    from django.db import NotSupportedError
    from django.db.models.expressions import RawSQL

    account, probe, other = stale_probe
    with connection.cursor() as cursor:
        cursor.execute("""
            CREATE TABLE baked_flag (fail boolean); INSERT INTO baked_flag VALUES (false);
            CREATE SEQUENCE baked_calls;
            CREATE FUNCTION baked_call(n integer) RETURNS integer LANGUAGE plpgsql AS $$
            BEGIN
              PERFORM nextval('baked_calls');
              IF (SELECT fail FROM baked_flag) THEN
                RAISE EXCEPTION 'not today' USING ERRCODE = 'feature_not_supported';
              END IF;
              RETURN n;
            END $$;""")
    names = Baked(lambda name: Account.objects.filter(name=name).values_list("name", flat=True))
    calls = Baked(lambda pk: Account.objects.filter(pk=pk).values_list(RawSQL("SELECT baked_call(5)", ()), flat=True))

    def calls_made():
        with connection.cursor() as cursor:
            cursor.execute("SELECT last_value FROM baked_calls")
            return cursor.fetchone()[0]

    connection.close()  # a connection with no prepared statement yet
    try:
        other.execute("UPDATE baked_flag SET fail = true")
        with pytest.raises(NotSupportedError, match="not today"):
            calls(account.pk)  # its first run: not prepared
        assert calls_made() == 1  # run once, not retried
        other.execute("UPDATE baked_flag SET fail = false")
        assert calls(account.pk) == [5] and calls(account.pk) == [5]  # prepared
        other.execute("UPDATE baked_flag SET fail = true")
        with pytest.raises(NotSupportedError, match="not today"):
            calls(account.pk)  # prepared: refused as it ran, not as it was planned
        assert calls_made() == 4  # run once, not retried
        other.execute("UPDATE baked_flag SET fail = false")

        for kind in ("bigint", "integer", "bigint"):
            for _ in range(2):
                assert probe(account.pk) == [7] and names("Probe") == ["Probe"]  # both prepared
            other.execute(f"ALTER TABLE baked_probe ALTER COLUMN v TYPE {kind}")
            assert probe(account.pk) == [7]  # stale: deallocated and run again
            assert names("Probe") == ["Probe"] and calls(account.pk) == [5]  # the others prepared again, not lost
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE baked_flag; DROP SEQUENCE baked_calls; DROP FUNCTION baked_call(integer)")


@pytest.mark.parametrize("cap", [0, 2, 4, 5, 50])
def test_a_capped_count_is_one_baked_query_counting_as_count_at_most(tree, cap, monkeypatch):
    """``Pages.at_most(cap).count()`` (a busy account's audit trail, its calls): ``SELECT COUNT(*)`` over at most
    ``cap + 1`` rows, compiled once, the same number as ``count_at_most`` on the plain queryset, baked or not."""
    from accounts.paging import count_at_most

    chain, _other = tree
    query = Baked(lambda path: Account.objects.filter(path__startswith=path).order_by("name"))
    pages = query.pages(chain[0].path).at_most(cap)
    with CaptureQueriesContext(connection) as ctx:
        got = pages.count()
    expected = count_at_most(query.build(chain[0].path), cap)
    assert len(ctx.captured_queries) == 1 and "COUNT(*)" in ctx.captured_queries[0]["sql"]
    assert got == min(expected, cap) and pages.more == (expected > cap)
    assert query.capped_count()._entries and all(query.capped_count()._entries.values())
    monkeypatch.setattr(baked, "ENABLED", False)
    plain = query.pages(chain[0].path).at_most(cap)
    assert (plain.count(), plain.more) == (got, pages.more)


def test_the_page_lineage_query_answers_as_the_orm_does(make_member):
    """``_lineage_by_public_id``, baked, for two people over two 5-deep trees and an unknown ID: the plain rows, exactly
    the account and its ancestors (found missing by review)."""
    from django.conf import settings

    from accounts.access import _lineage_by_public_id

    chain = account_chain(5)
    other = account_chain(5)
    u = make_member(chain[1], RoleId.ADMIN)
    make_member(chain[3], RoleId.VIEWER, user=u)
    v = make_member(other[0], RoleId.OWNER)
    for who in (u, v):
        for a in (*chain, *other):
            rows = same_as_plain(_lineage_by_public_id, a.public_id, who.pk, levels=settings.ACCOUNT_MAX_DEPTH)
            assert [r.pk for r in rows] == [x.pk for x in (chain if a in chain else other)[:a.depth]]
    same_as_plain(_lineage_by_public_id, uuid.uuid4(), u.pk, levels=5)
