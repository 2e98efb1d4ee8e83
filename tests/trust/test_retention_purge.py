"""The retention purge: batches, idempotent, resumable, one worker at a time, never touching usage or invoices,
an audit row per account and run; the command and the daily scheduling."""

import datetime
from io import StringIO
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts.models import AuditEvent
from billing.models import Invoice, UsageRecord, period_start
from members.roles import RoleId
from tests.factories import AccountFactory
from trust import purge
from trust.models import DataType, ExpiryAction, Period, PurgeRun, ScheduledRun
from trust.retention import Choice, policy_update, preview
from trust.tasks import purge_retention
from workspace.models import Agent, Contact, Conversation
from workspace.services import conversation_record

from .test_retention import conversation, rule

pytestmark = pytest.mark.django_db

T, R, INS, IP, PH = (DataType.TRANSCRIPTS, DataType.RECORDINGS, DataType.INSIGHTS, DataType.IP_LOCATION,
                   DataType.PHONE_NUMBERS)


def audit_rows(account):
    return list(AuditEvent.objects.filter(account=account, action="retention.purged").order_by("pk"))


def held(account):
    qs = Conversation.objects.filter(account=account)
    return {"transcripts": qs.exclude(summary="").count(), "recordings": qs.exclude(recording_url="").count(),
            "insights": qs.exclude(insights={}).count(), "ip": qs.exclude(caller_ip=None).count(),
            "phones": Contact.objects.filter(account=account).exclude(phone="").count()}


@pytest.fixture
def tree(make_member):
    parent = AccountFactory(name="Parent")
    follower = AccountFactory(parent=parent, name="Follower")
    keeper = AccountFactory(parent=parent, name="Keeper")  # sets its own: keep forever
    owner = make_member(parent, RoleId.OWNER)
    policy_update(account=parent, by=owner, choices={T: Choice("90d"), R: Choice("30d"), PH: Choice("1y")})
    rule(keeper, T, Period.FOREVER)
    rule(keeper, R, Period.FOREVER)
    rule(keeper, PH, Period.FOREVER)
    for account in (parent, follower, keeper):
        for n in range(5):
            conversation(account, 400, n=n)
        conversation(account, 10, n=9)
    return parent, follower, keeper


def test_purges_expired_data_in_batches_with_an_audit_row_per_account(tree):
    parent, follower, keeper = tree
    batches = []
    real_apply = purge._apply
    with mock.patch.object(purge, "_apply", side_effect=lambda *a: (batches.append(len(a[2])), real_apply(*a))):
        run = purge.purge(batch_size=2)
    assert run.status == PurgeRun.Status.COMPLETED and run.totals == {T: 10, R: 10, PH: 10}
    assert max(batches) == 2 and sum(batches) == 30
    for account in (parent, follower):
        assert held(account) == {"transcripts": 1, "recordings": 1, "insights": 6, "ip": 6, "phones": 1}
        [row] = audit_rows(account)
        assert row.data["counts"] == {T: 5, R: 5, PH: 5} and row.data["run"] == run.pk
        assert "conversation transcripts deleted: 5" in row.summary
    assert held(keeper)["transcripts"] == 6 and not audit_rows(keeper)  # keeps everything: not even visited
    assert Conversation.objects.count() == 18  # rows are never deleted, only their expired fields


def test_idempotent_a_second_run_removes_nothing_and_leaves_its_own_audit_rows(tree):
    parent, follower, _ = tree
    purge.purge()
    before = {a.pk: held(a) for a in (parent, follower)}
    run = purge.purge()
    assert run.totals == {T: 0, R: 0, PH: 0}
    assert {a.pk: held(a) for a in (parent, follower)} == before
    assert [r.summary for r in audit_rows(parent)][-1] == "Retention purge: nothing had expired"
    assert len(audit_rows(parent)) == 2  # one per account and run


def test_resumable_a_crash_mid_run_continues_where_it_stopped(tree):
    parent, follower, _ = tree
    calls = {"n": 0}
    real_apply = purge._apply

    def crash_on_the_fourth_batch(*args):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("worker killed")
        return real_apply(*args)

    with mock.patch.object(purge, "_apply", side_effect=crash_on_the_fourth_batch), \
            pytest.raises(RuntimeError):
        purge.purge(batch_size=2)
    run = PurgeRun.objects.get()
    assert run.status == PurgeRun.Status.RUNNING and run.claimed_by == ""  # released: a rerun may go on at once
    assert run.current_account_id == parent.pk and run.current_counts == {T: 5}  # saved with each batch
    resumed = purge.purge(batch_size=2)
    assert resumed.pk == run.pk and resumed.status == PurgeRun.Status.COMPLETED
    assert resumed.totals == {T: 10, R: 10, PH: 10}  # the same as an uninterrupted run
    assert [r.data["counts"] for r in audit_rows(parent)] == [{T: 5, R: 5, PH: 5}]  # one row, full counts
    assert len(audit_rows(follower)) == 1


def test_one_worker_at_a_time_and_a_stale_claim_is_taken_over(tree):
    other = purge.run_claim(worker="machine-a")
    with pytest.raises(purge.PurgeBusy, match="being worked on"):
        purge.purge()
    PurgeRun.objects.filter(pk=other.pk).update(
        heartbeat_at=timezone.now() - datetime.timedelta(seconds=PurgeRun.CLAIM_SECONDS + 1))
    run = purge.purge()
    assert run.pk == other.pk and run.status == PurgeRun.Status.COMPLETED
    with pytest.raises(purge.PurgeBusy, match="taken over"):  # machine-a comes back: its next batch is refused
        purge._progress(run, "machine-a")


def test_never_changes_usage_records_or_invoices(tree, make_member):
    parent, follower, _ = tree
    boss = make_member(parent, RoleId.OWNER)
    agent = Agent.objects.create(account=follower, name="Metered")
    contact = Contact.objects.create(account=follower, name="Old caller", phone="+14155559999",
                                     created_at=timezone.now() - datetime.timedelta(days=500))
    c = conversation_record(account=follower, agent=agent, contact=contact, by=boss, duration_seconds=120,
                            started_at=timezone.now() - datetime.timedelta(minutes=10), summary="x")
    Conversation.objects.filter(pk=c.pk).update(started_at=timezone.now() - datetime.timedelta(days=400))
    Invoice.objects.create(account=parent, period=period_start(period_start() - datetime.timedelta(days=1)),
                           plan_name="Agency", plan_price_cents=29900, included_minutes=5000,
                           overage_cents_per_minute=9, total_minutes=2, overage_minutes=0, total_cents=29900)
    snapshot = lambda: (list(UsageRecord.objects.order_by("pk").values()),  # noqa: E731
                        list(Invoice.objects.order_by("pk").values()))
    before = snapshot()
    assert before[0] and before[0][0]["conversation_id"] == c.pk
    purge.purge()
    assert snapshot() == before
    c.refresh_from_db()
    assert c.summary == "" and c.duration_seconds == 120


def test_anonymise_keeps_an_anonymous_version_once():
    account = AccountFactory()
    rule(account, T, Period.DAYS_30, ExpiryAction.ANONYMISE)
    rule(account, INS, Period.DAYS_30, ExpiryAction.ANONYMISE)
    rule(account, IP, Period.DAYS_90, ExpiryAction.ANONYMISE)
    c = conversation(account, 100, n=1, summary="Ada Lovelace 1 asked; mail ada@example.com or +44 20 7946 0958",
                     transcript=[{"role": "caller", "text": "I am Ada, call 0049 30 1234567"}],
                     insights={"score": 4, "booked": True, "note": "Ada wants a callback"},
                     caller_ip="203.0.113.77", caller_location="Berlin, DE")
    run = purge.purge()
    c.refresh_from_db()
    assert c.summary == "[name] asked; mail [email] or [number]"
    assert c.transcript == [{"role": "caller", "text": "I am [name], call [number]"}]
    assert c.insights == {"score": 4, "booked": True}
    assert (c.caller_ip, c.caller_location) == ("203.0.113.0", "DE")
    assert c.transcript_anonymised and c.insights_anonymised and c.caller_ip_anonymised
    assert run.totals == {T: 1, INS: 1, IP: 1}
    assert purge.purge().totals == {T: 0, INS: 0, IP: 0}  # anonymised once


def test_phone_numbers_count_from_the_contacts_last_conversation():
    account = AccountFactory()
    rule(account, PH, Period.DAYS_90)
    called_again = conversation(account, 400, n=1).contact
    Conversation.objects.create(account=account, agent=Agent.objects.get(account=account), contact=called_again,
                                started_at=timezone.now() - datetime.timedelta(days=3), duration_seconds=60)
    new = conversation(account, 5, n=2).contact
    silent = conversation(account, 400, n=3).contact
    purge.purge()
    phones = dict(Contact.objects.filter(account=account).values_list("pk", "phone"))
    assert phones[called_again.pk] and phones[new.pk] and phones[silent.pk] == ""


def test_the_command_dry_run_changes_nothing_and_scopes_to_an_account(tree):
    parent, follower, _ = tree
    out = StringIO()
    call_command("purge_retention", "--dry-run", stdout=out, stderr=StringIO())
    text = out.getvalue()
    assert "Would remove: conversation transcripts 10, call recordings 10, customer phone numbers 10" in text
    assert "Follower (" in text and "Dry run" in text
    assert held(parent)["transcripts"] == 6 and not PurgeRun.objects.exists() and not audit_rows(parent)
    out = StringIO()
    call_command("purge_retention", "--account", str(follower.public_id), stdout=out, stderr=StringIO())
    assert "Follower (" in out.getvalue() and "Parent (" not in out.getvalue()
    assert held(follower)["transcripts"] == 1 and held(parent)["transcripts"] == 6
    assert "removed conversation transcripts 5" in out.getvalue()


def test_the_command_refuses_while_a_run_of_another_scope_is_unfinished(tree):
    parent, follower, _ = tree
    purge.run_release(purge.run_claim(account=follower, worker="w"), "w")
    with pytest.raises(CommandError, match="unfinished"):
        call_command("purge_retention", stdout=StringIO(), stderr=StringIO())


@pytest.mark.time_machine(datetime.datetime(2026, 5, 4, 3, 30, tzinfo=datetime.UTC), tick=False)
def test_run_daily_enqueues_the_purge_once_a_day_whoever_calls():
    for _ in range(3):  # cron on three machines
        call_command("run_daily", stdout=StringIO())
    assert set(ScheduledRun.objects.values_list("job", "day")) == {
        ("purge_retention", datetime.date(2026, 5, 4)), ("housekeeping", datetime.date(2026, 5, 4))}
    assert DBTaskResult.objects.count() == 2


def test_daily_housekeeping_removes_what_has_outlived_its_keep(settings):
    """Login activity past 90 days, data request files past 7 days, idempotency records past a day go; newer
    ones stay."""
    from security.models import SecurityEvent
    from trust.tasks import housekeeping

    now = timezone.now()
    SecurityEvent.objects.bulk_create([SecurityEvent(kind="login.failed", email="a@x.test",
                                                     created_at=now - datetime.timedelta(days=d)) for d in (91, 89)])
    result = housekeeping.call()
    assert result["security_events"] == 1 and SecurityEvent.objects.count() == 1
    assert result["data_request_results"] == 0 and result["idempotency_records"] == 0


@pytest.mark.time_machine(datetime.datetime(2026, 5, 4, 1, 0, tzinfo=datetime.UTC), tick=False)
def test_run_daily_waits_for_the_hour():
    out = StringIO()
    call_command("run_daily", stdout=out)
    assert "Not yet" in out.getvalue() and not ScheduledRun.objects.exists()


def test_the_task_runs_the_purge(tree):
    result = purge_retention.call()
    assert result["totals"] == {T: 10, R: 10, PH: 10}


# ---- expiry boundaries ----------------------------------------------------------------------------------------

NOW = datetime.datetime(2026, 5, 31, 12, 0, tzinfo=datetime.UTC)  # month end: 6 months before is 30 November
SECOND = datetime.timedelta(seconds=1)


@pytest.mark.time_machine(NOW, tick=False)
@pytest.mark.parametrize(("data_type", "period", "cutoff"), [
    (T, Period.DAYS_30, NOW - datetime.timedelta(days=30)),
    (INS, Period.DAYS_90, NOW - datetime.timedelta(days=90)),
    (R, Period.MONTHS_6, datetime.datetime(2025, 11, 30, 12, 0, tzinfo=datetime.UTC)),  # calendar months, clamped
    (IP, Period.YEAR_1, datetime.datetime(2025, 5, 31, 12, 0, tzinfo=datetime.UTC)),
])
def test_a_record_one_second_past_its_expiry_is_removed_one_second_before_it_is_kept(data_type, period, cutoff):
    """Expired means started strictly before ``now - period`` (the purge's ``period_cutoff``): at the instant
    itself a record is still kept."""
    account = AccountFactory()
    rule(account, data_type, period)
    agent = Agent.objects.create(account=account, name="A")
    values = {"summary": "Ada called", "transcript": [{"role": "caller", "text": "hi"}],
              "recording_url": "https://rec.example/1.mp3", "insights": {"score": 4},
              "caller_ip": "203.0.113.7", "caller_location": "Berlin, DE"}
    started = {"after": cutoff - SECOND, "at": cutoff, "before": cutoff + SECOND}
    rows = {}
    for label, moment in started.items():
        contact = Contact.objects.create(account=account, name=f"Caller {label}", created_at=moment)
        rows[label] = Conversation.objects.create(account=account, agent=agent, contact=contact, started_at=moment,
                                                  duration_seconds=60, **values)
    assert purge.dry_run(account=account) == {data_type: 1}
    run = purge.purge(account=account)
    assert run.now == NOW and run.totals == {data_type: 1}
    field = {T: "summary", R: "recording_url", INS: "insights", IP: "caller_ip"}[data_type]
    now_held = {label: getattr(Conversation.objects.get(pk=c.pk), field) for label, c in rows.items()}
    assert not now_held["after"]  # one second past its expiry: removed
    assert now_held["at"] and now_held["before"]  # at and one second before its expiry: kept
    assert {label: Conversation.objects.get(pk=c.pk).duration_seconds for label, c in rows.items()} == {
        "after": 60, "at": 60, "before": 60}  # the other fields (and the rows) stay


@pytest.mark.time_machine(NOW, tick=False)
def test_a_phone_number_expires_one_second_after_the_contacts_last_conversation_expires():
    account = AccountFactory()
    rule(account, PH, Period.DAYS_90)
    cutoff = NOW - datetime.timedelta(days=90)
    agent = Agent.objects.create(account=account, name="A")
    contacts = {}
    for label, moment in {"after": cutoff - SECOND, "before": cutoff + SECOND}.items():
        contact = Contact.objects.create(account=account, name=label, phone=f"+1415555{len(label):04d}",
                                         created_at=cutoff - datetime.timedelta(days=10))
        Conversation.objects.create(account=account, agent=agent, contact=contact, duration_seconds=60,
                                    started_at=cutoff - datetime.timedelta(days=5))  # an older one too
        Conversation.objects.create(account=account, agent=agent, contact=contact, started_at=moment,
                                    duration_seconds=60)
        contacts[label] = contact
    never_called = {label: Contact.objects.create(account=account, name=f"silent {label}", created_at=moment,
                                                  phone=f"+1416555{n:04d}")
                    for n, (label, moment) in enumerate({"after": cutoff - SECOND, "before": cutoff + SECOND}.items())}
    assert purge.purge().totals == {PH: 2}
    phone = lambda c: Contact.objects.get(pk=c.pk).phone  # noqa: E731
    assert phone(contacts["after"]) == "" and phone(never_called["after"]) == ""
    assert phone(contacts["before"]) and phone(never_called["before"])


# ---- the dry run counts what the purge then removes ----------------------------------------------------------

@pytest.fixture
def mixed_tree(make_member):
    """Four levels with inherited, own, anonymising and keep-forever rules, and data on both sides of every
    period."""
    top = AccountFactory(name="Top")
    middle = AccountFactory(parent=top, name="Middle")  # follows Top
    strict = AccountFactory(parent=middle, name="Strict")  # its own, shorter rules and anonymising
    leaf = AccountFactory(parent=strict, name="Leaf")  # follows Strict
    keeper = AccountFactory(parent=top, name="Keeper")  # keeps everything
    owner = make_member(top, RoleId.OWNER)
    policy_update(account=top, by=owner, choices={T: Choice("1y"), R: Choice("90d"), IP: Choice("1y"),
                                                  PH: Choice("2y")})
    for data_type, period, action in ((T, "30d", ExpiryAction.ANONYMISE), (INS, "6m", ExpiryAction.ANONYMISE),
                                      (IP, "90d", ExpiryAction.ANONYMISE), (R, "30d", ExpiryAction.DELETE),
                                      (PH, "90d", ExpiryAction.DELETE)):
        rule(strict, data_type, period, action)
    for data_type in DataType.values:
        rule(keeper, data_type, Period.FOREVER)
    accounts = (top, middle, strict, leaf, keeper)
    for i, account in enumerate(accounts):
        for n, days in enumerate((5, 29, 31, 89, 91, 200, 364, 366, 800)[:5 + i]):
            conversation(account, days, n=n)
        conversation(account, 1000, n=20, summary="", transcript=[], recording_url="")  # nothing left to clear
    return accounts


@pytest.mark.time_machine(datetime.datetime(2026, 3, 10, 8, 0, tzinfo=datetime.UTC), tick=False)
def test_the_dry_run_counts_per_account_and_type_equal_what_the_purge_then_removes(mixed_tree):
    def by_account(run):
        seen = {}
        run(on_account=lambda r: seen.__setitem__(r.account.pk, {t: n for t, n in r.counts.items() if n}))
        return seen

    dry = by_account(purge.dry_run)
    assert held(mixed_tree[0]) and not PurgeRun.objects.exists()  # the dry run wrote nothing
    before = {a.pk: held(a) for a in mixed_tree}
    real = by_account(purge.purge)
    assert dry == real
    assert set(dry) == {a.pk for a in mixed_tree[:4]}  # Keeper keeps everything: not visited
    assert all(dry[a.pk] for a in mixed_tree[:4]) and {t for c in dry.values() for t in c} == set(DataType.values)
    # ... and what the purge reported is what left the rows (deletions; anonymised rows keep a value)
    for account in mixed_tree[:4]:
        after, counts = held(account), real[account.pk]
        for key, data_type in (("recordings", R), ("phones", PH)):
            assert before[account.pk][key] - after[key] == counts.get(data_type, 0)
    assert held(mixed_tree[4]) == before[mixed_tree[4].pk]
    assert by_account(purge.dry_run) == {a.pk: {} for a in mixed_tree[:4]}  # nothing left to remove


@pytest.mark.time_machine(datetime.datetime(2026, 3, 10, 8, 0, tzinfo=datetime.UTC), tick=False)
def test_the_command_dry_run_prints_the_lines_the_real_run_then_prints(mixed_tree):
    def lines(*args):
        out = StringIO()
        call_command("purge_retention", *args, stdout=out, stderr=StringIO())
        return out.getvalue().splitlines()

    dry = lines("--dry-run")
    real = lines()
    assert dry[:-1] == real[:-1] and len(dry) == 5  # one line per account with something to remove
    assert dry[-1].removeprefix("Would remove: ").removesuffix(". Dry run: nothing was changed.") == \
        real[-1].split("removed ", 1)[1].removesuffix(".")


@pytest.mark.time_machine(datetime.datetime(2026, 3, 10, 8, 0, tzinfo=datetime.UTC), tick=False)
def test_the_preview_of_a_shorter_period_counts_what_the_purge_then_removes(mixed_tree, make_member):
    top, middle, strict, leaf, keeper = mixed_tree
    owner = make_member(top, RoleId.OWNER)
    purge.purge()  # what the current policy removes is gone: the preview counts only the change
    choices = {T: Choice("90d"), R: Choice("30d"), INS: Choice("30d", ExpiryAction.ANONYMISE), PH: Choice("1y")}
    removals = {r.data_type: r.rows for r in preview(account=top, choices=choices) if r.rows}
    assert set(removals) == {T, R, INS}  # the 1 year for phone numbers removes nothing more than 2 years did
    policy_update(account=top, by=owner, choices=choices)
    seen = {}
    purge.purge(on_account=lambda r: seen.__setitem__(r.account.pk, r.counts))
    totals = {}
    for counts in seen.values():
        for data_type, n in counts.items():
            if n:
                totals[data_type] = totals.get(data_type, 0) + n
    assert totals == removals
    assert strict.pk not in {pk for pk, c in seen.items() if any(c.values())}  # its own rules did not change
