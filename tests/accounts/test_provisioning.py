"""provision_accounts / export_accounts: every bad row named, nothing half-written, reruns idempotent."""

import io
import json
import random

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Account, AuditEvent
from accounts.provisioning import COLUMNS, export_rows, provision, write_export
from accounts.services import account_set_status, subaccount_create
from agency.models import AgencyGrant
from billing.models import Subscription
from members.models import Invitation, Membership
from tests.factories import AccountFactory, MembershipFactory, UserFactory, account_chain

pytestmark = pytest.mark.django_db

HEADER = "external_id,name,parent,owner_email,owner_role,plan,limit_minutes,limit_agents,access.agents,agency\n"


def counts():
    return {m.__name__: m.objects.count() for m in (Account, AuditEvent, Invitation, Subscription, Membership,
                                                    AgencyGrant)}


def run(text, *args, fmt="csv", expect_error=False):
    """The command as staff run it: (stdout, stderr). ``expect_error``: it must exit non-zero."""
    path = "-"
    out, err = io.StringIO(), io.StringIO()
    stdin = io.StringIO(text)
    import sys
    old, sys.stdin = sys.stdin, stdin
    try:
        if expect_error:
            with pytest.raises(CommandError) as failed:
                call_command("provision_accounts", path, "--input-format", fmt, *args, stdout=out, stderr=err)
            return out.getvalue(), err.getvalue() + str(failed.value)
        call_command("provision_accounts", path, "--input-format", fmt, *args, stdout=out, stderr=err)
    finally:
        sys.stdin = old
    return out.getvalue(), err.getvalue()


def problems(text, fmt="csv"):
    report = provision(text, fmt=fmt)
    return {(p.line, p.column): p.message for p in report.problems}


@pytest.fixture
def agency():
    return AccountFactory(name="Northwind", external_id="nw")


# ---------------------------------------------------------------------------------------------------------------
# Every bad row: its line, its column, its reason, and nothing written


BAD_ROWS = [
    # (description, rows after the header, expected (line, column), words in the message)
    ("name too short", "c1,A,nw,,,,,,,\n", (2, "name"), "at least 2"),
    ("name missing", "c1,,nw,,,,,,,\n", (2, "name"), "missing"),
    ("duplicate names among rows", "c1,Acme,nw,,,,,,,\nc2,ACME,nw,,,,,,,\n", (3, "name"), "line 2"),
    ("duplicate name of an existing sibling", "c1,Existing Child,nw,,,,,,,\n", (2, "name"), "already has"),
    ("unknown parent", "c1,Acme,nope,,,,,,,\n", (2, "parent"), "unknown parent"),
    ("cycle", "c1,Acme,c2,,,,,,,\nc2,Beta,c1,,,,,,,\n", (2, "parent"), "cycle"),
    ("self parent", "c1,Acme,c1,,,,,,,\n", (2, "parent"), "own parent"),
    ("duplicate external_id", "c1,Acme,nw,,,,,,,\nc1,Beta,nw,,,,,,,\n", (3, "external_id"), "line 2"),
    ("no external_id nor id", ",Acme,nw,,,,,,,\n", (2, "external_id"), "needs an external_id"),
    ("bad email", "c1,Acme,nw,not-an-email,,,,,,\n", (2, "owner_email"), "valid email"),
    ("role without email", "c1,Acme,nw,,admin,,,,,\n", (2, "owner_role"), "needs an owner_email"),
    ("agency admin role", "c1,Acme,nw,a@example.com,agency_admin,,,,,\n", (2, "owner_role"), "not a role"),
    ("unknown plan", "r1,Rooty,,,,platinum,,,,\n", (2, "plan"), "unknown plan"),
    ("plan on a subaccount", "c1,Acme,nw,,,pro,,,,\n", (2, "plan"), "no plan of its own"),
    ("negative limit", "c1,Acme,nw,,,,-1,,,\n", (2, "limit_minutes"), "whole number"),
    ("fractional limit", "c1,Acme,nw,,,,1.5,,,\n", (2, "limit_minutes"), "whole number"),
    ("text limit", "c1,Acme,nw,,,,lots,,,\n", (2, "limit_minutes"), "whole number"),
    ("huge limit", "c1,Acme,nw,,,,99999999999,,,\n", (2, "limit_minutes"), "whole number"),
    ("limit on a root", "r1,Rooty,,,,,10,,,\n", (2, "limit_minutes"), "subaccounts only"),
    ("access on a root", "r1,Rooty,,,,,,,read,\n", (2, "access.agents"), "subaccounts only"),
    ("unknown access level", "c1,Acme,nw,,,,,,some,\n", (2, "access.agents"), "none, read or full"),
    ("agency on a subaccount", "c1,Acme,nw,,,,,,,nw\n", (2, "agency"), "top-level"),
    ("unknown agency", "r1,Rooty,,,,,,,,zz\n", (2, "agency"), "unknown agency"),
    ("own agency", "r1,Rooty,,,,,,,,r1\n", (2, "agency"), "own agency"),
    ("child of a bad row", "c1,A,nw,,,,,,,\nc2,Child,c1,,,,,,,\n", (3, "parent"), "line 2"),
    ("plan without subaccounts", "r1,Rooty,,,,free,,,,\nc1,Child,r1,,,,,,,\n", (3, "parent"), "does not include"),
]


@pytest.mark.parametrize("rows, where, words", [b[1:] for b in BAD_ROWS], ids=[b[0] for b in BAD_ROWS])
def test_every_bad_row_is_named_and_nothing_is_written(agency, rows, where, words):
    AccountFactory(parent=agency, name="Existing Child")
    before = counts()
    out, err = run(HEADER + rows, expect_error=True)
    assert counts() == before
    assert mail.outbox == []
    found = problems(HEADER + rows)
    assert where in found, found
    assert words.lower() in found[where].lower()
    line, column = where
    assert f"Line {line}, column {column}:" in err
    assert "nothing was written" in err


def test_unknown_and_missing_columns_are_reported_on_the_header(agency):
    found = problems("external_id,name,colour\nc1,Acme,red\n")
    assert "unknown column" in found[(1, "colour")]
    found = problems("external_id,parent\nc1,nw\n")
    assert "missing column" in found[(1, "name")]
    found = problems("name,parent\nAcme,nw\n")
    assert "missing column" in found[(1, "external_id")]


def test_a_row_with_more_values_than_columns_is_refused(agency):
    found = problems("external_id,name,parent\nc1,Acme,nw,extra\n")
    assert "more value" in found[(2, "")]


def test_depth_past_the_limit(settings):
    chain = account_chain(settings.ACCOUNT_MAX_DEPTH)
    chain[-1].external_id = "deepest"
    Account.objects.filter(pk=chain[-1].pk).update(external_id="deepest")
    found = problems(HEADER + "c1,Too Deep,deepest,,,,,,,\n")
    assert "at most" in found[(2, "parent")]
    # A chain of new rows that passes the limit is caught too.
    rows = "".join(f"n{i},Level {i},{'n' + str(i - 1) if i else 'top'},,,,,,,\n" for i in range(6))
    found = problems(HEADER + "top,Top,,,,agency,,,,\n" + rows)
    assert any(col == "parent" and "at most" in msg for (line, col), msg in found.items())


def test_a_level_above_what_the_parent_holds(agency):
    middle = AccountFactory(parent=agency, name="Middle", access_categories={"agents": "read"})
    Account.objects.filter(pk=middle.pk).update(external_id="mid")
    found = problems(HEADER + "c1,Leaf,mid,,,,,,full,\n")
    assert "above what Middle holds (read)" in found[(2, "access.agents")]
    assert not problems(HEADER + "c1,Leaf,mid,,,,,,read,\n")


def test_a_limit_above_the_parents_lineage(agency):
    middle = AccountFactory(parent=agency, name="Middle", limit_minutes=100)
    Account.objects.filter(pk=middle.pk).update(external_id="mid")
    found = problems(HEADER + "c1,Leaf,mid,,,,101,,,\n")
    assert "above the 100 that Middle allows" in found[(2, "limit_minutes")]


def test_a_suspended_parent_refuses_children(agency):
    account_set_status(account=agency, suspended=True)
    found = problems(HEADER + "c1,Acme,nw,,,,,,,\n")
    assert "suspended" in found[(2, "parent")]


def test_ambiguous_external_id_asks_for_the_account_id():
    one, two = AccountFactory(name="One"), AccountFactory(name="Two")
    Account.objects.filter(pk__in=[one.pk, two.pk]).update(external_id="same")
    found = problems(HEADER + "c1,Acme,same,,,,,,,\n")
    assert "use the account id" in found[(2, "parent")]
    assert not problems(HEADER + f"c1,Acme,{one.public_id},,,,,,,\n")


# ---------------------------------------------------------------------------------------------------------------
# Writing: one transaction, dry run writes nothing, reruns idempotent


def test_dry_run_prints_the_plan_and_writes_nothing(agency):
    UserFactory(email="known@example.com")
    before = counts()
    out, _ = run(HEADER + "c1,Acme,nw,new@example.com,,,,,,\nc2,Beta,c1,known@example.com,admin,,,,,\n", "--dry-run")
    assert counts() == before and mail.outbox == []
    assert "Line 2: create Acme (c1) under Northwind" in out
    assert "Line 3: create Beta (c2) under Acme" in out
    assert "2 to create" in out and "Dry run: nothing was written" in out


def test_a_failure_at_row_n_rolls_back_every_earlier_row(agency, monkeypatch, django_capture_on_commit_callbacks):
    """A row that passes the checks but fails while writing (here: the owner's membership) undoes rows 1..N-1."""
    UserFactory(email="known@example.com")
    import members.services

    def refuse(**kwargs):
        raise members.services.ValidationError("refused while writing")

    monkeypatch.setattr(members.services, "membership_add", refuse)
    before = counts()
    rows = "".join(f"c{i},Customer {i},nw,owner{i}@example.com,,,,,,\n" for i in range(5))
    rows += "c9,Last,nw,known@example.com,,,,,,\n"
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        out, err = run(HEADER + rows, expect_error=True)
    assert callbacks == []  # the five invitations' emails went with the rollback
    assert "refused while writing" in err
    assert counts() == before and mail.outbox == []
    assert not Account.objects.filter(name__startswith="Customer").exists()


def test_rerun_is_idempotent_and_changes_are_updates(agency):
    text = HEADER + "c1,Acme,nw,new@example.com,,,50,,read,\nc2,Beta,c1,,,,,,,\n"
    first = provision(text, fmt="csv")
    assert first.counts["create"] == 2 and first.invitations == 1
    before = counts()
    again = provision(text, fmt="csv")
    assert again.counts["unchanged"] == 2 and counts() == before
    changed = text.replace("Acme,nw,new@example.com,,,50", "Acme Group,nw,new@example.com,,,40")
    left = provision(changed, fmt="csv", update=False)
    assert left.counts["differs"] == 1 and counts() == before
    report = provision(changed, fmt="csv")
    assert report.counts == {"update": 1, "unchanged": 1}
    acme = Account.objects.get(external_id="c1")
    assert (acme.name, acme.limit_minutes) == ("Acme Group", 40)
    assert AuditEvent.objects.filter(account=acme, action="account.renamed").exists()
    assert AuditEvent.objects.filter(account=acme, action="subaccount.limits_changed").exists()
    assert Account.objects.filter(external_id="c1").count() == 1


def test_an_existing_account_is_never_moved(agency):
    other = AccountFactory(name="Other", external_id="other")
    provision(HEADER + "c1,Acme,nw,,,,,,,\n", fmt="csv")
    found = problems(HEADER + f"c1,Acme,{other.public_id},,,,,,,\n")
    # c1 is not in Other's tree: it is created there (external ids are unique per tree) ...
    assert not found
    # ... but naming the account by id under another parent is refused.
    acme = Account.objects.get(external_id="c1", parent=agency)
    found = problems(f"id,name,parent\n{acme.public_id},Acme,{other.public_id}\n")
    assert "does not move" in found[(2, "parent")]


def test_a_nested_tree_in_shuffled_order_builds_the_same_tree(agency):
    rng = random.Random(5)
    rows = [("t0", "Top", "", "agency")]
    for i in range(1, 40):
        parent = rng.choice([r for r in rows if r[0].count("-") < 4])
        rows.append((f"{parent[0]}-{i}", f"Node {i}", parent[0], ""))
    for seed in range(3):
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        text = "external_id,name,parent,plan\n" + "".join(",".join(r) + "\n" for r in shuffled)
        report = provision(text, fmt="csv")
        assert not report.problems
        expected = "create" if seed == 0 else "unchanged"
        assert report.counts == {expected: 40}
    top = Account.objects.get(external_id="t0")
    for ext, _, parent_ext, _ in rows[1:]:
        account = Account.objects.get(external_id=ext, path__startswith=top.path)
        assert account.parent.external_id == parent_ext
        assert account.depth == ext.count("-") + 1
    assert Account.objects.find_problems() == ([], [], [], [], [])
    assert all(a.numchild == Account.objects.filter(parent=a).count() for a in Account.objects.all())


def test_new_subaccounts_follow_the_same_rules_as_the_page(agency):
    """Defaults, composed categories and lineage limits: a provisioned child equals subaccount_create's."""
    middle = AccountFactory(parent=agency, name="Middle", access_categories={"billing": "none", "agents": "read"},
                            limit_minutes=300)
    # Defaults above what Middle holds (set before its parent narrowed it): both paths cap them the same way.
    Account.objects.filter(pk=middle.pk).update(
        external_id="mid", default_access_categories={"contacts": "read", "agents": "full"},
        default_limit_minutes=500, default_limit_agents=3)
    middle.refresh_from_db()
    by_page = subaccount_create(parent=middle, name="By Page", by=None)
    provision("external_id,name,parent\nc1,By File,mid\n", fmt="csv")
    by_file = Account.objects.get(external_id="c1")
    assert by_file.access_categories == by_page.access_categories
    assert by_file.limits() == by_page.limits()
    assert by_file.depth == 3 and by_file.parent == middle


def test_owners_are_invited_after_commit_and_existing_users_added(agency, django_capture_on_commit_callbacks):
    known = UserFactory(email="known@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        report = provision(HEADER + "c1,Acme,nw,new@example.com,,,,,,\nc2,Beta,nw,KNOWN@example.com,admin,,,,,\n",
                           fmt="csv")
    assert (report.invitations, report.memberships) == (1, 1)
    invitation = Invitation.objects.get(email="new@example.com")
    assert invitation.sent_by_platform and invitation.role == "owner" and invitation.account.name == "Acme"
    assert Membership.objects.get(user=known).role == "admin"
    assert sorted(m.to[0] for m in mail.outbox) == ["known@example.com", "new@example.com"]


def test_emails_wait_for_the_commit(agency, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        provision(HEADER + "c1,Acme,nw,new@example.com,,,,,,\n", fmt="csv")
    assert mail.outbox == [] and len(callbacks) == 1


def test_agency_column_requests_access(agency):
    report = provision(HEADER + "r1,Client Co,,owner@client.example,,pro,,,,nw\n", fmt="csv")
    grant = AgencyGrant.objects.get()
    assert (grant.agency, grant.client.external_id, grant.status) == (agency, "r1", "requested")
    assert report.agency_requests == 1
    assert provision(HEADER + "r1,Client Co,,owner@client.example,,pro,,,,nw\n", fmt="csv").counts == {
        "unchanged": 1}


def test_json_with_nested_access_and_the_json_summary(agency):
    data = {"accounts": [{"external_id": "c1", "name": "Acme", "parent": "nw", "limit_minutes": 20,
                          "access": {"agents": "read"}},
                         {"external_id": "c2", "name": "X", "parent": "c1"}]}
    out, err = run(json.dumps(data), "--format", "json", fmt="json", expect_error=True)
    summary = json.loads(out)
    assert summary["problems"] == [{"line": 2, "column": "name", "external_id": "c2",
                                    "message": "names need at least 2 characters ('X')."}]
    data["accounts"][1]["name"] = "Xavier"
    out, _ = run(json.dumps(data), "--format", "json", fmt="json")
    summary = json.loads(out)
    assert (summary["create"], summary["problems"]) == (2, [])
    acme = Account.objects.get(external_id="c1")
    assert acme.access_categories["agents"] == "read" and acme.limit_minutes == 20


def test_bad_json_and_bad_csv_files_get_a_clear_message():
    assert "not valid JSON" in problems("{nope", fmt="json")[(1, "")]
    assert "list of accounts" in problems('{"x": 1}', fmt="json")[(1, "")]
    assert "empty" in problems("", fmt="csv")[(1, "")]
    assert "no accounts" in problems("external_id,name\n", fmt="csv")[(1, "")]


def test_the_command_reads_files_by_extension(tmp_path, agency):
    path = tmp_path / "accounts.csv"
    path.write_text(HEADER + "c1,Acme,nw,,,,,,,\n", encoding="utf-8")
    call_command("provision_accounts", str(path), stdout=io.StringIO())
    assert Account.objects.filter(external_id="c1").exists()
    with pytest.raises(CommandError, match="name it .csv or .json"):
        call_command("provision_accounts", str(tmp_path / "accounts.txt"))
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("provision_accounts", str(tmp_path / "missing.csv"))
    (tmp_path / "latin.csv").write_bytes(b"external_id,name\nc1,Caf\xe9\n")
    with pytest.raises(CommandError, match="not UTF-8"):
        call_command("provision_accounts", str(tmp_path / "latin.csv"))


def test_only_staff_provision(agency):
    with pytest.raises(PermissionDenied):
        provision(HEADER + "c1,Acme,nw,,,,,,,\n", fmt="csv", staff=UserFactory())
    staff = UserFactory(is_staff=True)
    provision(HEADER + "c1,Acme,nw,,,,,,,\n", fmt="csv", staff=staff)
    assert AuditEvent.objects.filter(action="subaccount.created", actor=staff).exists()


def test_checking_takes_the_same_queries_for_10_and_200_rows_and_writing_no_query_per_row(agency):
    def queries(n, prefix, dry_run):
        text = "external_id,name,parent\n" + "".join(f"{prefix}{i},{prefix} {i},nw\n" for i in range(n))
        with CaptureQueriesContext(connection) as ctx:
            report = provision(text, fmt="csv", dry_run=dry_run)
        assert not report.problems
        return len(ctx.captured_queries)

    assert queries(10, "a", True) == queries(200, "b", True)
    # Writing inserts in batches (SQLite's batches hold about 45 accounts: 999 parameters), never row by row.
    small, big = queries(10, "c", False), queries(200, "d", False)
    assert big - small <= 200 // 20, (small, big)


# ---------------------------------------------------------------------------------------------------------------
# Export


def test_export_then_provision_changes_nothing(agency):
    acme = AccountFactory(parent=agency, name="Acme", access_categories={"agents": "read"}, limit_minutes=90)
    Account.objects.filter(pk=acme.pk).update(external_id="acme")
    AccountFactory(parent=acme, name="Acme Sales")
    MembershipFactory(account=agency, role="owner", user=UserFactory(email="boss@nw.example"))
    subaccount_create(parent=acme, name="Invited", by=None, invite_email="lead@acme.example", invite_role="admin")
    client = AccountFactory(name="Client", plan_code="pro")
    from agency.services import access_request

    access_request(agency=agency, client=client, by=None)
    for fmt in ("csv", "json"):
        buffer = io.StringIO()
        write_export(export_rows(Account.objects.all()), fmt, buffer)
        before = counts()
        report = provision(buffer.getvalue(), fmt=fmt)
        assert not report.problems, report.problems
        assert set(report.counts) == {"unchanged"}, [o for o in report.outcomes if o.action != "unchanged"]
        assert counts() == before


def test_export_command_writes_one_tree_in_provision_columns(agency, tmp_path):
    AccountFactory(parent=agency, name="Acme")
    AccountFactory(name="Elsewhere")
    out = io.StringIO()
    call_command("export_accounts", "--account", "nw", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert len(lines) == 3 and "Elsewhere" not in out.getvalue()
    call_command("export_accounts", "--format", "json", "-o", str(tmp_path / "x.json"), stderr=io.StringIO())
    data = json.loads((tmp_path / "x.json").read_text())
    assert {a["name"] for a in data["accounts"]} >= {"Northwind", "Acme", "Elsewhere"}
    with pytest.raises(CommandError, match="no account has the id"):
        call_command("export_accounts", "--account", "missing")


def test_export_takes_the_same_queries_for_10_and_200_accounts(agency):
    other = AccountFactory(name="Other")
    for _ in range(10):
        AccountFactory(parent=agency)
    for _ in range(200):
        AccountFactory(parent=other)

    def queries(top):
        with CaptureQueriesContext(connection) as ctx:
            export_rows(Account.objects.filter(path__startswith=top.path))
        return len(ctx.captured_queries)

    assert queries(agency) == queries(other)


def test_the_progress_bar_draws_on_a_terminal_only(agency):
    from accounts.progress import ProgressBar

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal, pipe = Terminal(), io.StringIO()
    text = "external_id,name,parent\n" + "".join(f"p{i},P {i},nw\n" for i in range(30))
    for stream in (terminal, pipe):
        bar = ProgressBar(stream)
        provision(text, fmt="csv", dry_run=True, progress=bar)
        bar.close()
    assert "Checking" in terminal.getvalue() and "30/30" in terminal.getvalue()
    assert pipe.getvalue() == ""
