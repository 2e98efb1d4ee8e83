"""Billing-transfer races, on PostgreSQL with real threads and connections (issue 11).

Like tests/test_concurrency.py: SQLite serializes every write transaction, so these only mean something
on PostgreSQL. The race tests release N threads at a barrier, each calling a service on its own
connection; the ``held_in_flight`` ones fix the order (the first holds the lineage's row locks until the
second is seen waiting for them) so the worst interleaving happens every run. Then they check what the
database holds: one winner, the others refused with a clear message, never a server error, a half-applied
switch, a broken tree, or usage lost, booked twice or booked to the wrong payer.
"""

import datetime
import threading

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.db.models import Sum
from django.utils import timezone

from accounts.models import Account, AuditEvent
from agency.models import AgencyGrant
from billing import transfers
from billing.models import BillingTransfer, Subscription, UsageRecord
from billing.statements import compute_statement
from members.models import Membership, User, new_nonce
from members.roles import RoleId
from tests.concurrency import race
from tests.factories import AccountFactory, MembershipFactory, UserFactory, plan
from workspace.models import Agent, Contact, Conversation
from workspace.services import conversation_record

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),  # keeps the seeded plans for later tests
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="row locks race only on PostgreSQL (SQLite serializes every write); CI runs it there"),
]


def _wait_until_a_backend_waits_for_a_lock(timeout=30.0):
    """Poll pg_stat_activity (from this thread's own connection) until another backend waits on a row lock."""
    deadline = timezone.now() + datetime.timedelta(seconds=timeout)
    pause = threading.Event()
    while timezone.now() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
            if cursor.fetchone()[0]:
                return True
        pause.wait(0.02)
    return False


def fresh(model_instance):
    return type(model_instance).objects.get(pk=model_instance.pk)


def assert_tree_consistent():
    """The materialized path, depth, parent and numchild all tell the same story for every account."""
    accounts = {a.pk: a for a in Account.objects.all()}
    steplen = Account.steplen
    assert len({a.path for a in accounts.values()}) == len(accounts), "two accounts share a path"
    for a in accounts.values():
        assert len(a.path) % steplen == 0 and a.depth == len(a.path) // steplen, (a.name, a.path, a.depth)
        assert (a.parent_id is None) == (a.depth == 1), (a.name, a.parent_id, a.depth)
        if a.parent_id is not None:
            parent = accounts[a.parent_id]
            assert a.path.startswith(parent.path) and a.depth == parent.depth + 1, (a.name, a.path, parent.path)
        children = [b for b in accounts.values() if b.parent_id == a.pk]
        by_path = [b for b in accounts.values() if b.depth == a.depth + 1 and b.path.startswith(a.path)]
        assert a.numchild == len(children) == len(by_path), (a.name, a.numchild, len(children), len(by_path))


@pytest.fixture
def tree():
    """Northwind (agency plan; Owner Olga, Admin Adam) → Acme (2 subaccounts) → Acme Sales → Sales EU, and
    Acme Support beside Acme Sales; Beta beside Acme. Nora (no membership yet) will own Acme."""
    for code in ("free", "pro", "agency"):
        plan(code)
    northwind = AccountFactory(name="Northwind")
    owner, admin = UserFactory(email="olga@northwind.test"), UserFactory(email="adam@northwind.test")
    MembershipFactory(user=owner, account=northwind, role=RoleId.OWNER)
    MembershipFactory(user=admin, account=northwind, role=RoleId.ADMIN)
    acme = AccountFactory(parent=northwind, name="Acme")
    sales = AccountFactory(parent=acme, name="Acme Sales")
    sales_eu = AccountFactory(parent=sales, name="Sales EU")
    support = AccountFactory(parent=acme, name="Acme Support")
    beta = AccountFactory(parent=northwind, name="Beta")
    nora = UserFactory(email="nora@acme.example")
    return dict(northwind=fresh(northwind), owner=owner, admin=admin, acme=fresh(acme), sales=fresh(sales),
                sales_eu=sales_eu, support=support, beta=beta, nora=nora)


def start_acme(t, **kwargs):
    return transfers.transfer_start(account=fresh(t["acme"]), by=fresh(t["owner"]),
                                    billing_owner_email=t["nora"].email, plan=plan("agency"), **kwargs)


# ---- (a) ten acceptances of one transfer ------------------------------------------------------------

def test_ten_acceptances_of_one_transfer_apply_it_once(tree):
    transfer = start_acme(tree, keep_agency_access=True, agency_people=[fresh(tree["admin"])])
    mail.outbox.clear()

    def accept(i):
        return transfers.transfer_accept(transfer=BillingTransfer.objects.get(pk=transfer.pk),
                                         user=User.objects.get(pk=tree["nora"].pk), contact_name=f"Nora {i}",
                                         contact_email="ap@acme.example")

    results = race(10, accept)
    winners = [r for r in results if isinstance(r, BillingTransfer)]
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(winners) == 1 and winners[0].status == BillingTransfer.Status.COMPLETED, results
    assert len(refused) == 9, [r for r in results if not isinstance(r, BillingTransfer | ValidationError)]
    assert all("already completed" in " ".join(r.messages) for r in refused), [r.messages for r in refused]

    acme = fresh(tree["acme"])
    assert acme.is_root() and acme.parent_id is None and acme.depth == 1
    assert Account.objects.filter(name="Acme", depth=1).count() == 1
    assert Subscription.objects.filter(account=acme).count() == 1
    assert Subscription.objects.get(account=acme).plan.code == "agency"
    assert AgencyGrant.objects.filter(client=acme).count() == 1
    assert AgencyGrant.objects.get(client=acme).agency_id == tree["northwind"].pk
    assert list(Membership.objects.filter(account=acme, user=tree["nora"]).values_list("role", flat=True)) == [
        RoleId.OWNER]
    assert Membership.objects.filter(account=acme, user=tree["admin"], is_agency=True).count() == 1
    assert AuditEvent.objects.filter(action="billing.transfer_completed").count() == 2  # one per side, once
    assert AuditEvent.objects.filter(action="billing.transfer_accepted").count() == 2
    done = BillingTransfer.objects.get(pk=transfer.pk)
    assert done.status == "completed" and done.decided_by_id == tree["nora"].pk
    assert done.billing_contact_name == winners[0].billing_contact_name
    assert sum("is now independent" in m.subject for m in mail.outbox) == 1, [m.subject for m in mail.outbox]
    assert fresh(tree["northwind"]).numchild == 1  # Beta stays
    assert_tree_consistent()


# ---- (b) a transfer and one of its ancestor's, applied at once -----------------------------------------

def nested_scheduled_transfers(t):
    """Acme's transfer (accepted for the end of the period) and Acme Sales' (inside it), both due now."""
    past = timezone.now() - datetime.timedelta(minutes=1)
    outer = start_acme(t, cutover=BillingTransfer.Cutover.PERIOD_END)
    outer = transfers.transfer_accept(transfer=outer, user=fresh(t["nora"]))
    assert outer.status == "scheduled"
    BillingTransfer.objects.filter(pk=outer.pk).update(cutover_at=past)
    # transfer_start refuses a transfer while one above or below this account is open (deliberately), so the
    # inner one is written directly, as if accepted before the outer one was proposed. (Two starts racing get
    # there too: see test_two_starts_above_and_below_at_once_open_one_transfer.)
    sam = User.objects.create_user(email="sam@sales.example", password="a-Long-pass-2026", name="Sam")
    inner = BillingTransfer.objects.create(
        account=fresh(t["sales"]), from_root=t["northwind"], from_parent=t["acme"],
        status=BillingTransfer.Status.SCHEDULED, billing_owner_email="sam@sales.example", plan=plan("agency"),
        cutover=BillingTransfer.Cutover.PERIOD_END, nonce=new_nonce(), created_by=t["owner"], decided_at=past,
        decided_by=sam, cutover_at=past)
    return outer, inner


def assert_one_switch_and_a_sound_tree(t, outer, results):
    applied = [r for r in results if isinstance(r, BillingTransfer)]
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert not [r for r in results if not isinstance(r, BillingTransfer | ValidationError)], results
    statuses = {x.account.name: x.status for x in BillingTransfer.objects.select_related("account")}
    assert_tree_consistent()
    assert [(a.path, a.depth, a.parent_id) for a in Account.objects.filter(name__in=["Northwind", "Beta"])
            .order_by("path")] == [("0001", 1, None), ("00010002", 2, t["northwind"].pk)]
    assert len(applied) == 1 and len(refused) == 1, (
        f"expected exactly one switch, got {len(applied)} applied and {len(refused)} refused; "
        f"statuses {statuses}; tree {sorted((a.path, a.name) for a in Account.objects.all())}")
    # whichever went second is told why: its account left the tree, or a subaccount below it did
    message = " ".join(refused[0].messages)
    assert "no longer below Northwind" in message or "became independent after this transfer" in message, message
    acme, sales, eu = fresh(t["acme"]), fresh(t["sales"]), fresh(t["sales_eu"])
    if applied[0].pk == outer.pk:  # the ancestor's switch won: the subaccount's found its tree gone
        assert acme.depth == 1 and sales.parent_id == acme.pk and sales.depth == 2 and eu.depth == 3
        assert statuses == {"Acme": "completed", "Acme Sales": "scheduled"}
        assert Subscription.objects.filter(account=acme).count() == 1
        assert not Subscription.objects.filter(account=sales).exists()
        assert fresh(t["northwind"]).numchild == 1 and acme.numchild == 2
    else:  # the subaccount's won: the ancestor's no longer describes what its customer accepted
        assert sales.depth == 1 and sales.parent_id is None and eu.depth == 2 and acme.depth == 2
        assert statuses == {"Acme": "scheduled", "Acme Sales": "completed"}
        assert Subscription.objects.filter(account=sales).count() == 1
        assert not Subscription.objects.filter(account=acme).exists()
        assert fresh(t["northwind"]).numchild == 2 and acme.numchild == fresh(t["acme"]).numchild


def test_an_account_and_its_ancestor_switching_at_once_leave_one_switch_and_a_sound_tree(tree):
    outer, inner = nested_scheduled_transfers(tree)
    results = race(2, lambda i: transfers.transfer_apply(transfer=BillingTransfer.objects.get(pk=(outer, inner)[i].pk)))
    assert_one_switch_and_a_sound_tree(tree, outer, results)


def held_in_flight(monkeypatch, hook, first, second):
    """``first()`` runs in a thread until it reaches ``transfers.<hook>`` (by then it holds the lineage's row
    locks); then ``second()`` starts in another thread; once its backend waits for a lock, ``first`` goes on.
    Both are in flight at once, in a known order. Returns their results (or exceptions)."""
    reached, release, results = threading.Event(), threading.Event(), {}
    real = getattr(transfers, hook)

    def held(*args, **kwargs):
        value = real(*args, **kwargs)
        if threading.current_thread().name == "first":
            reached.set()
            assert release.wait(60)
        return value

    monkeypatch.setattr(transfers, hook, held)

    def run(name, fn):
        try:
            results[name] = fn()
        except Exception as exc:  # noqa: BLE001 - asserted on by the caller
            results[name] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(name, fn), name=name) for name, fn in
               (("first", first), ("second", second))]
    threads[0].start()
    try:
        assert reached.wait(60), results
        threads[1].start()
        assert _wait_until_a_backend_waits_for_a_lock(), "the second did not wait for the first's locks"
    finally:
        release.set()
        for t in threads:
            if t.ident is not None:
                t.join(60)
        connections.close_all()
    assert not any(t.is_alive() for t in threads), results
    return results["first"], results["second"]


@pytest.mark.parametrize("first", ["ancestor", "account"], ids=["ancestor-locks-first", "account-locks-first"])
def test_nested_switches_in_flight_together_in_either_order(tree, monkeypatch, first):
    """The race above with its order fixed: whichever switch takes the lineage's locks first, one applies."""
    outer, inner = nested_scheduled_transfers(tree)
    a, b = (outer, inner) if first == "ancestor" else (inner, outer)
    ra, rb = held_in_flight(monkeypatch, "_move_to_top",
                            lambda: transfers.transfer_apply(transfer=BillingTransfer.objects.get(pk=a.pk)),
                            lambda: transfers.transfer_apply(transfer=BillingTransfer.objects.get(pk=b.pk)))
    assert_one_switch_and_a_sound_tree(tree, outer, [ra, rb])


def test_metering_below_a_transfer_that_can_no_longer_apply_goes_on(tree):
    """After the race, Acme Sales' transfer is left scheduled with its cut-over passed but can never apply
    (Acme left Northwind with it). Recording a conversation in Acme Sales' subtree must still work."""
    outer, inner = nested_scheduled_transfers(tree)
    transfers.transfer_apply(transfer=outer)
    with pytest.raises(ValidationError, match="no longer below"):
        transfers.transfer_apply(transfer=inner)
    eu = fresh(tree["sales_eu"])
    agent = Agent.objects.create(account=eu, name="A")
    contact = Contact.objects.create(account=eu, name="C", email="c@example.test")
    conversation = conversation_record(account=eu, agent=agent, contact=contact, by=None,
                                       started_at=timezone.now() - datetime.timedelta(minutes=10),
                                       duration_seconds=120)
    assert conversation.status == "completed"
    assert UsageRecord.objects.get().billing_root_id == tree["acme"].pk
    assert not BillingTransfer.objects.get(pk=inner.pk).is_open  # ended, not retried before every recording


def test_two_starts_above_and_below_at_once_open_one_transfer(tree):
    """transfer_start refuses a transfer while one above or below is open; two starts at the same moment
    (Acme and its subaccount Acme Sales, e.g. two managers in two tabs) must not both get through."""
    owner = tree["owner"]

    def begin(i):
        account = fresh((tree["acme"], tree["sales"])[i])
        return transfers.transfer_start(account=account, by=fresh(owner), billing_owner_email=f"x{i}@example.test",
                                        plan=plan("agency"))

    results = race(2, begin)
    assert not [r for r in results if not isinstance(r, BillingTransfer | ValidationError)], results
    assert BillingTransfer.objects.filter(status__in=BillingTransfer.OPEN).count() == 1, (
        f"both opened: {results} — an open transfer above and below each other")
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(refused) == 1 and "above or below" in " ".join(refused[0].messages), results


# ---- (c) metering while the payer switches ------------------------------------------------------------

def _talkers(t):
    accounts = [fresh(t["acme"]), fresh(t["sales"]), fresh(t["sales_eu"]), fresh(t["support"])]
    return [(a, Agent.objects.create(account=a, name=f"Agent {a.name}"),
             Contact.objects.create(account=a, name="C", email=f"c{a.pk}@example.test")) for a in accounts]


def _usage_check(t, expected_minutes, switch_audit):
    """Each usage row is paid by exactly one root, the old or the new one; nothing lost or doubled; and the
    payer is the one at the moment it was recorded. Recording and switching both hold the lineage's row
    locks while they write their audit rows, so the audit ids give the order they happened in."""
    northwind, acme = t["northwind"], fresh(t["acme"])
    rows = list(UsageRecord.objects.select_related("conversation"))
    assert len(rows) == len(expected_minutes)
    assert all(r.billing_root_id in (northwind.pk, acme.pk) for r in rows), [(r.account_id, r.billing_root_id)
                                                                               for r in rows]
    by_root = dict(UsageRecord.objects.values_list("billing_root").annotate(m=Sum("minutes")).order_by())
    assert by_root.get(northwind.pk, 0) + by_root.get(acme.pk, 0) == sum(expected_minutes), by_root
    for period in {r.period for r in rows}:  # and so do the two statements
        old, new = compute_statement(fresh(northwind), period), compute_statement(acme, period)
        assert old.total_minutes + new.total_minutes == sum(r.minutes for r in rows if r.period == period)
    recorded = {e.data["id"]: e.pk for e in AuditEvent.objects.filter(action="conversation.recorded")}
    wrong = []
    for r in rows:
        after = recorded[str(r.conversation.public_id)] > switch_audit
        if r.billing_root_id != (acme.pk if after else northwind.pk):
            wrong.append((r.account.name, r.minutes, f"recorded {'after' if after else 'before'} the switch, billed "
                                                     f"to {'the old' if after else 'the new'} root"))
    assert not wrong, f"{len(wrong)} of {len(rows)} usage rows billed to the wrong root: {wrong}"


@pytest.mark.parametrize("switch", ["accept-now", "cron-at-cutover"])
def test_metering_racing_the_switch_books_every_minute_once_to_the_payer_of_the_moment(tree, switch):
    talkers = _talkers(tree)
    if switch == "accept-now":
        transfer = start_acme(tree)
    else:  # accepted earlier for the end of the period, which has now come: the cron (or metering) applies it
        transfer = start_acme(tree, cutover=BillingTransfer.Cutover.PERIOD_END)
        transfer = transfers.transfer_accept(transfer=transfer, user=fresh(tree["nora"]))
        assert transfer.status == "scheduled"
        BillingTransfer.objects.filter(pk=transfer.pk).update(cutover_at=timezone.now())
    n_meter, each = 8, 4  # eight metering threads, four recordings each: the switch lands among them
    base = timezone.now() - datetime.timedelta(hours=n_meter * each + 1)
    minutes = [1 + k % 7 for k in range(n_meter * each)]

    def work(i):
        if i == 0:
            current = BillingTransfer.objects.get(pk=transfer.pk)
            if switch == "accept-now":
                return transfers.transfer_accept(transfer=current, user=User.objects.get(pk=tree["nora"].pk))
            return transfers.apply_due_transfers()
        account, agent, contact = talkers[(i - 1) % len(talkers)]
        recorded = []
        for k in range((i - 1) * each, i * each):
            recorded.append(conversation_record(
                account=Account.objects.get(pk=account.pk), agent=agent, contact=contact, by=None,
                started_at=base + datetime.timedelta(hours=k), duration_seconds=minutes[k] * 60))
        return recorded

    results = race(n_meter + 1, work)
    assert all(isinstance(r, list) and all(c.status == "completed" for c in r) for r in results[1:]), results
    assert isinstance(results[0], int if switch == "cron-at-cutover" else BillingTransfer), results[0]
    assert BillingTransfer.objects.get(pk=transfer.pk).status == "completed", results[0]
    assert fresh(tree["acme"]).is_root()
    assert_tree_consistent()
    switch_audit = AuditEvent.objects.get(action="billing.transfer_completed", account=tree["acme"]).pk
    _usage_check(tree, minutes, switch_audit)


@pytest.mark.parametrize("where", ["acme", "sales_eu"])
def test_metering_that_waited_for_the_switch_bills_the_new_root(tree, monkeypatch, where):
    """The same race in its worst interleaving, made deterministic: the acceptance holds the lineage's locks
    (the switch is half done) while a conversation is recorded in the moving subtree; that recording waits
    for the locks and is written after the switch commits, so it must be billed to the new root."""
    account, agent, contact = next(x for x in _talkers(tree) if x[0].pk == tree[where].pk)
    transfer = start_acme(tree)
    accepted, conversation = held_in_flight(
        monkeypatch, "_become_root",
        lambda: transfers.transfer_accept(transfer=BillingTransfer.objects.get(pk=transfer.pk),
                                          user=User.objects.get(pk=tree["nora"].pk)),
        lambda: conversation_record(account=Account.objects.get(pk=account.pk), agent=agent, contact=contact,
                                    by=None, started_at=timezone.now() - datetime.timedelta(minutes=10),
                                    duration_seconds=300))
    assert isinstance(accepted, BillingTransfer) and accepted.status == "completed", accepted
    assert isinstance(conversation, Conversation) and conversation.status == "completed", conversation
    acme = fresh(tree["acme"])
    assert acme.is_root()
    assert_tree_consistent()
    usage = UsageRecord.objects.get()
    assert usage.billing_root_id == acme.pk, (
        f"recorded after the switch committed, but billed to {Account.objects.get(pk=usage.billing_root_id).name} "
        "(the old root) instead of Acme")
