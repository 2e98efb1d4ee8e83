"""Billing transfers for platform staff: start_billing_transfer, apply_billing_transfers and the admin."""

import datetime
import io
import uuid

import pytest
import time_machine
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connections
from django.urls import reverse

from accounts.models import Account, AuditEvent
from accounts.services import subtree_move
from agency.models import AgencyGrant
from billing import transfers
from billing.management.commands.start_billing_transfer import Command as StartCommand
from billing.models import BillingTransfer, Subscription
from members.models import Membership
from tests.admin.helpers import messages_of
from tests.billing.conftest import TRANSFER_NOW as NOW
from tests.factories import AccountFactory, UserFactory, plan, usage

pytestmark = pytest.mark.django_db



def argv(w, **options):
    """The command's arguments for Acme → Carla on the Agency plan, with ``options`` changed (None: left out)."""
    values = {"account": str(w["acme"].public_id), "owner_email": w["carla"].email, "plan": "agency", **options}
    args = []
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value not in (None, False):
            args += [flag, value]
    return args


def start(*args) -> str:
    out = io.StringIO()
    call_command("start_billing_transfer", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def apply() -> str:
    out = io.StringIO()
    call_command("apply_billing_transfers", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def exit_status(monkeypatch, capsys, args):
    """Run as from the shell: the exit status and what went to stderr."""
    monkeypatch.setattr(connections, "close_all", lambda: None)  # the test's own transaction must survive
    with pytest.raises(SystemExit) as exc:
        StartCommand().run_from_argv(["manage.py", "start_billing_transfer", "--skip-checks", *args])
    return exc.value.code, capsys.readouterr().err


def counts():
    return {m.__name__: m.objects.count() for m in (Account, BillingTransfer, Membership, AuditEvent)}


def open_transfer(w, account_key):
    return transfers.transfer_start(account=w[account_key], by=None, billing_owner_email="x@example.test",
                                    plan=plan("agency"))


def _suspend(w):
    Account.objects.filter(pk=w["acme"].pk).update(status=Account.Status.SUSPENDED)


REFUSALS = {
    "not a uuid": (lambda w: argv(w, account="acme"), "account ID (a UUID), not 'acme'"),
    "unknown account": (lambda w: argv(w, account=str(uuid.uuid4())), "No account with ID"),
    "root account": (lambda w: argv(w, account=str(w["northwind"].public_id)), "already independent"),
    "suspended": (lambda w: _suspend(w) or argv(w), "suspended: reactivate it first"),
    "unknown plan": (lambda w: argv(w, plan="gold"), "No plan with code 'gold'"),
    "bad email": (lambda w: argv(w, owner_email="carla@"), "--owner-email 'carla@': Enter a valid email"),
    "plan without subaccounts": (lambda w: plan("pro") and argv(w, plan="pro"), "Pro plan does not include"),
    "open transfer here": (lambda w: open_transfer(w, "acme") and argv(w), "already has a billing transfer"),
    "open transfer below": (lambda w: open_transfer(w, "sales") and argv(w), "above or below"),
    "open transfer above": (lambda w: open_transfer(w, "acme") and argv(
        w, account=str(w["sales"].public_id), plan="pro"), "above or below"),
    "agency person not Owner/Admin above": (
        lambda w: argv(w, keep_agency=True, agency_people=f"{w['admin'].email},{w['member'].email}"),
        "cannot keep access: only people who reach Acme as Owner or Admin"),
    "agency person unknown": (lambda w: argv(w, keep_agency=True, agency_people="ghost@example.test"),
                              "nobody has an account with the email ghost@example.test"),
    "agency person without --keep-agency": (lambda w: argv(w, agency_people=w["admin"].email),
                                            "go with --keep-agency"),
    "agency expiry not a day": (lambda w: argv(w, keep_agency=True, agency_expires="next week"), "YYYY-MM-DD"),
    "agency expiry in the past": (lambda w: argv(w, keep_agency=True, agency_expires="2026-11-01"),
                                  "must be in the future"),
    "accepted by someone else": (lambda w: argv(w, accepted_by=w["owner"].email), "must be the billing owner"),
    "accepted by a non-user": (lambda w: argv(w, owner_email="new@acme.example", accepted_by="new@acme.example"),
                               "new@acme.example has no active user account"),
}


class TestStartRefusals:
    @pytest.mark.parametrize("dry_run", [False, True], ids=["real", "dry-run"])
    @pytest.mark.parametrize("case", list(REFUSALS))
    def test_every_refusal_exits_non_zero_with_the_reason(self, world, monkeypatch, capsys, case, dry_run):
        make_args, message = REFUSALS[case]
        args = make_args(world) + (["--dry-run"] if dry_run else [])
        before = BillingTransfer.objects.count()
        status, err = exit_status(monkeypatch, capsys, args)
        assert status == 1
        assert err.startswith("CommandError: ") and message in err
        assert BillingTransfer.objects.count() == before

    def test_call_command_raises_command_error_and_needs_the_three_arguments(self, world):
        with pytest.raises(CommandError, match="No plan with code 'gold'") as exc:
            start(*argv(world, plan="gold"))
        assert exc.value.returncode == 1
        with pytest.raises(CommandError, match="--plan"):
            start(*argv(world, plan=None))


class TestStart:
    def test_a_dry_run_checks_prints_the_plan_and_writes_nothing(self, world, django_capture_on_commit_callbacks):
        usage(world["acme"], 30)
        usage(world["sales"], 12)
        before = counts()
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            out = start(*argv(world, keep_agency=True, agency_people=world["admin"].email,
                              agency_expires="2027-01-31", dry_run=True))
        assert counts() == before
        assert callbacks == [] and mail.outbox == []
        assert f"Billing transfer of Acme ({world['acme'].public_id}), now under Northwind" in out
        assert "Acme and its 1 subaccount(s) leave Northwind's tree and become an independent account" in out
        assert "Plan: Agency ($299.00 a month, 5000 minutes included)" in out
        assert f"Owner: {world['carla'].email} (Owner of Acme now) becomes its Owner when they accept" in out
        assert f"Northwind keeps agency access until 2027-01-31; {world['admin'].email} stay(s) in" in out
        assert "stays on Northwind's invoice (42 minute(s) of this tree so far in November 2026)" in out
        assert f"waiting for {world['carla'].email}" in out
        assert "Dry run: nothing was written and nobody was emailed." in out

    def test_a_dry_run_with_accepted_by_neither_accepts_nor_moves(self, world, django_capture_on_commit_callbacks):
        before = counts()
        with django_capture_on_commit_callbacks(execute=True):
            out = start(*argv(world, accepted_by=world["carla"].email, dry_run=True))
        assert counts() == before and mail.outbox == []
        assert "accepted at once on behalf of" in out and "none kept" in out
        assert Account.objects.get(pk=world["acme"].pk).depth == 2

    def test_it_starts_a_pending_transfer_and_emails_the_owner_the_link(self, world,
                                                                        django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            out = start(*argv(world, cutover="period_end"))
        transfer = BillingTransfer.objects.get()
        assert transfer.status == "pending" and transfer.created_by is None
        assert transfer.account == world["acme"] and transfer.from_root == world["northwind"]
        assert transfer.cutover == "period_end" and transfer.plan == plan("agency")
        link = transfers.transfer_url(transfer)
        assert link in out and "started" in out
        assert len(mail.outbox) == 1
        assert mail.outbox[0].to == [world["carla"].email] and link in mail.outbox[0].body
        assert AuditEvent.objects.filter(action="billing.transfer_started", actor=None).count() == 2
        assert Account.objects.get(pk=world["acme"].pk).depth == 2  # nothing moves until accepted

    def test_a_new_person_as_owner(self, world, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            out = start(*argv(world, owner_email="  Nora@Acme.Example "))
        assert "nora@acme.example (no user yet: they sign up through the link)" in out
        assert BillingTransfer.objects.get().billing_owner_email == "nora@acme.example"
        assert mail.outbox[0].to == ["nora@acme.example"]

    def test_accepted_by_the_owner_completes_it_at_once(self, world, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            out = start(*argv(world, accepted_by=world["carla"].email.upper(), keep_agency=True,
                              agency_people=world["admin"].email))
        transfer = BillingTransfer.objects.get()
        assert transfer.status == "completed" and transfer.decided_by == world["carla"]
        acme = Account.objects.get(pk=world["acme"].pk)
        assert acme.is_root() and acme.limit_minutes is None
        assert Account.objects.get(pk=world["sales"].pk).parent == acme
        assert Subscription.objects.get(account=acme).plan.code == "agency"
        assert AgencyGrant.objects.get(client=acme, agency=world["northwind"]).is_effective
        assert Membership.objects.get(account=acme, user=world["admin"]).is_agency
        assert f"Owner: {world['carla'].email} (Owner of Acme now) becomes its Owner at once" in out
        assert "Done: Acme is now independent" in out
        assert any("is now independent" in m.subject for m in mail.outbox)

    def test_a_failure_while_accepting_leaves_no_transfer(self, world, monkeypatch):
        def boom(**kwargs):
            from billing.stripe_sync import BillingProviderError

            raise BillingProviderError("Stripe is down.")

        monkeypatch.setattr(transfers, "transfer_accept", boom)
        with pytest.raises(CommandError, match="Stripe is down"):
            start(*argv(world, accepted_by=world["carla"].email))
        assert not BillingTransfer.objects.exists()


class TestApply:
    def test_it_applies_a_scheduled_transfer_once_its_cutover_passed_and_expires_stale_links(
            self, world, django_capture_on_commit_callbacks):
        out = start(*argv(world, cutover="period_end", accepted_by=world["carla"].email))
        assert "becomes independent at 2026-12-01 00:00 UTC" in out
        other = AccountFactory(parent=world["northwind"], name="Other")
        stale = open_transfer({"other": other}, "other")
        assert "0 billing transfer(s) applied, 0 expired" in apply()
        assert Account.objects.get(pk=world["acme"].pk).depth == 2
        with time_machine.travel(datetime.datetime(2026, 12, 1, 0, 5, tzinfo=datetime.UTC), tick=False):
            with django_capture_on_commit_callbacks(execute=True):
                out = apply()
            assert "1 billing transfer(s) applied, 1 expired" in out
            assert Account.objects.get(pk=world["acme"].pk).is_root()
            assert BillingTransfer.objects.get(account=world["acme"]).status == "completed"
            assert BillingTransfer.objects.get(pk=stale.pk).status == "expired"
            assert any("is now independent" in m.subject for m in mail.outbox)
            assert "0 billing transfer(s) applied, 0 expired" in apply()  # again: nothing left to do

    def test_a_due_transfer_that_can_no_longer_apply_is_cancelled_with_an_audit_row(self, world):
        inner = open_transfer(world, "sales")
        BillingTransfer.objects.filter(pk=inner.pk).update(status="scheduled", cutover_at=NOW)
        subtree_move(Account.objects.get(pk=world["acme"].pk), None)  # the tree changed meanwhile
        out = io.StringIO()
        call_command("apply_billing_transfers", stdout=out, stderr=io.StringIO())
        assert "0 billing transfer(s) applied" in out.getvalue()
        assert BillingTransfer.objects.get(pk=inner.pk).status == "cancelled"
        assert AuditEvent.objects.filter(action="billing.transfer_cancelled",
                                         summary__contains="no longer below").exists()

    def test_a_due_transfer_waiting_for_stripe_is_reported_and_fails_the_run(self, world, monkeypatch):
        from billing import stripe_sync, transfers

        inner = open_transfer(world, "sales")
        BillingTransfer.objects.filter(pk=inner.pk).update(
            status="scheduled", cutover_at=NOW, decided_by=world["carla"], billing_owner_email=world["carla"].email)

        def stripe_down(*args, **kwargs):
            raise stripe_sync.BillingProviderError("Stripe could not be reached just now.")

        monkeypatch.setattr(transfers, "_become_root", stripe_down)
        err = io.StringIO()
        with pytest.raises(CommandError, match="0 billing transfer.s. applied, 0 expired .*1 due but not applied"):
            call_command("apply_billing_transfers", stdout=io.StringIO(), stderr=err)
        assert f"Acme Sales ({inner.public_id}): due since 2026-11-14 12:00 UTC" in err.getvalue()
        assert BillingTransfer.objects.get(pk=inner.pk).status == "scheduled"  # retried on the next run
        assert Account.objects.get(pk=world["sales"].pk).depth == 3  # nothing half-done


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


class TestAccountAdminAction:
    @property
    def URL(self):
        return reverse("admin:accounts_account_changelist")

    def test_the_intermediate_page_shows_the_form_for_one_subaccount(self, world, staff_client):
        r = staff_client.post(self.URL, {"action": "start_billing_transfer", "index": 0,
                                         "_selected_action": [world["acme"].pk]})
        assert r.status_code == 200
        assert "admin/billing/transfer_start.html" in [t.name for t in r.templates]
        html = r.content.decode()
        assert "Start a billing transfer of Acme" in html and "its 1 subaccount" in html
        for field in ("billing_owner_email", "plan", "cutover", "keep_agency_access", "agency_people"):
            assert f'name="{field}"' in html
        assert world["carla"].email in html  # suggested: Acme's own people
        assert world["admin"].email in html and world["member"].email not in html  # who may keep access
        assert not BillingTransfer.objects.exists()

    def test_posting_the_form_starts_the_transfer(self, world, staff_client, django_capture_on_commit_callbacks):
        data = {"action": "start_billing_transfer", "_selected_action": [world["acme"].pk], "apply": "yes",
                "billing_owner_email": world["carla"].email, "plan": plan("agency").pk, "cutover": "period_end",
                "keep_agency_access": "yes", "agency_people": [world["admin"].pk]}
        with django_capture_on_commit_callbacks(execute=True):
            r = staff_client.post(self.URL, data)
        assert r.status_code == 302
        transfer = BillingTransfer.objects.get()
        assert transfer.status == "pending" and transfer.created_by is None and transfer.cutover == "period_end"
        assert transfer.keep_agency_access and transfer.agency_people == [world["admin"].pk]
        assert mail.outbox[0].to == [world["carla"].email]
        assert any("Billing transfer of Acme started" in m for m in messages_of(r))

    def test_a_refused_plan_shows_the_form_again_with_the_reason(self, world, staff_client):
        r = staff_client.post(self.URL, {
            "action": "start_billing_transfer", "_selected_action": [world["acme"].pk], "apply": "yes",
            "billing_owner_email": world["carla"].email, "plan": plan("pro").pk, "cutover": "now",
            "keep_agency_access": "no"})
        assert r.status_code == 200 and "does not include" in r.content.decode()
        assert not BillingTransfer.objects.exists()

    @pytest.mark.parametrize("selection, message", [
        (["acme", "sales"], "Select exactly one subaccount"),
        (["northwind"], "already independent"),
    ])
    def test_several_accounts_or_a_root_are_refused(self, world, staff_client, selection, message):
        r = staff_client.post(self.URL, {"action": "start_billing_transfer", "index": 0,
                                         "_selected_action": [world[k].pk for k in selection]})
        assert r.status_code == 302
        assert any(message in m for m in messages_of(r))
        assert not BillingTransfer.objects.exists()


class TestBillingTransferAdmin:
    @property
    def URL(self):
        return reverse("admin:billing_billingtransfer_changelist")

    def test_the_list_is_read_only_and_searchable(self, world, staff_client):
        transfer = open_transfer(world, "acme")
        r = staff_client.get(self.URL)
        assert r.status_code == 200 and list(r.context["cl"].result_list) == [transfer]
        for term in ("acme", str(world["acme"].public_id), "x@example"):
            assert list(staff_client.get(self.URL, {"q": term}).context["cl"].result_list) == [transfer]
        assert list(staff_client.get(self.URL, {"q": "nobody"}).context["cl"].result_list) == []
        assert list(staff_client.get(self.URL, {"status__exact": "completed"}).context["cl"].result_list) == []
        assert staff_client.get(reverse("admin:billing_billingtransfer_add")).status_code == 403
        assert staff_client.get(reverse("admin:billing_billingtransfer_change", args=[transfer.pk])).status_code == 200
        actions = [name for name, _ in r.context["action_form"].fields["action"].choices]
        assert "cancel_selected" in actions and "delete_selected" not in actions

    def test_cancel_selected_cancels_open_ones_and_reports_the_others(self, world, staff_client):
        pending = open_transfer(world, "acme")
        other = AccountFactory(parent=world["northwind"], name="Other")
        done = open_transfer({"other": other}, "other")
        BillingTransfer.objects.filter(pk=done.pk).update(status="completed")
        r = staff_client.post(self.URL, {"action": "cancel_selected", "index": 0,
                                         "_selected_action": [pending.pk, done.pk]})
        assert r.status_code == 302
        assert BillingTransfer.objects.get(pk=pending.pk).status == "cancelled"
        assert BillingTransfer.objects.get(pk=done.pk).status == "completed"
        shown = messages_of(r)
        assert "Other: This transfer is already completed." in shown
        assert "1 billing transfer(s) cancelled; their links no longer work." in shown
        assert AuditEvent.objects.filter(action="billing.transfer_cancelled").count() == 2
