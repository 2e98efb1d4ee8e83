"""Billing transfer (issue 11): a subaccount becomes an independent, directly billed account."""

import datetime

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from accounts.access import resolve_access
from accounts.models import Account, AuditEvent
from accounts.services import subaccount_move
from agency.models import AgencyGrant, AgencySettings
from billing import transfers
from billing.models import BillingTransfer, Invoice, Subscription, UsageRecord, period_start
from billing.services import invoice_close
from billing.statements import compute_statement
from members.models import Membership, User
from members.roles import RoleId
from tests.billing.conftest import TRANSFER_NOW as NOW
from tests.factories import AccountFactory, UserFactory, account_chain, plan
from workspace.models import Agent, Contact
from workspace.services import conversation_record

pytestmark = pytest.mark.django_db



def fresh(user):
    return User.objects.get(pk=user.pk)


def start(w, **kwargs):
    defaults = dict(account=w["acme"], by=fresh(w["owner"]), billing_owner_email=w["carla"].email, plan=plan("agency"))
    return transfers.transfer_start(**{**defaults, **kwargs})


def talk(account, minutes, when):
    agent = Agent.objects.filter(account=account).first() or Agent.objects.create(account=account, name="A")
    contact = Contact.objects.filter(account=account).first() or Contact.objects.create(
        account=account, name="C", email="c@example.test")
    return conversation_record(account=account, agent=agent, contact=contact, by=None, started_at=when,
                               duration_seconds=minutes * 60)


class TestStart:
    def test_it_proposes_and_changes_nothing_until_accepted(self, world):
        transfer = start(world)
        assert transfer.status == "pending" and transfer.from_root == world["northwind"]
        acme = Account.objects.get(pk=world["acme"].pk)
        assert acme.depth == 2 and acme.parent == world["northwind"]
        assert AuditEvent.objects.filter(action="billing.transfer_started").count() == 2

    @pytest.mark.parametrize("who", ["member", "carla"])
    def test_refused_without_billing_and_subaccount_management_on_the_parent(self, world, who):
        with pytest.raises(PermissionDenied, match="billing and subaccount management"):
            start(world, by=fresh(world[who]))
        assert not BillingTransfer.objects.exists()

    def test_refused_to_an_admin_whose_billing_is_capped_above(self, world, make_member):
        middle = AccountFactory(parent=world["northwind"], name="Middle", access_categories={"billing": "read"})
        admin = make_member(middle, RoleId.ADMIN)
        below = AccountFactory(parent=middle, name="Below middle")
        with pytest.raises(PermissionDenied, match="billing and subaccount management"):
            transfers.transfer_start(account=below, by=fresh(admin), billing_owner_email="x@example.test",
                                     plan=plan("pro"))

    def test_a_root_account_cannot_be_transferred(self, world):
        with pytest.raises(ValidationError, match="already independent"):
            start(world, account=world["northwind"])

    def test_a_plan_without_subaccounts_is_refused_for_an_account_with_some(self, world):
        with pytest.raises(ValidationError, match="does not include"):
            start(world, plan=plan("pro"))
        transfers.transfer_start(account=world["sales"], by=fresh(world["owner"]), billing_owner_email="s@example.test",
                                 plan=plan("pro"))

    def test_one_open_transfer_per_account_and_none_above_or_below(self, world):
        start(world)
        with pytest.raises(ValidationError, match="already has a billing transfer"):
            start(world)
        with pytest.raises(ValidationError, match="above or below"):
            transfers.transfer_start(account=world["sales"], by=fresh(world["owner"]),
                                     billing_owner_email="s@example.test", plan=plan("pro"))

    def test_a_transfer_below_blocks_one_above_and_a_siblings_blocks_nothing(self, world):
        sibling = AccountFactory(parent=world["northwind"], name="Acme Two")
        AccountFactory(parent=world["acme"], name="Acme Support")
        transfers.transfer_start(account=world["sales"], by=fresh(world["owner"]),
                                 billing_owner_email="s@example.test", plan=plan("pro"))
        with pytest.raises(ValidationError, match="above or below"):
            start(world)
        start(world, account=sibling)  # beside it: nothing under way above or below

    def test_only_people_with_admin_rank_above_may_keep_access(self, world):
        with pytest.raises(ValidationError, match="Owners and Admins of the agency's own account"):
            start(world, keep_agency_access=True, agency_people=[world["member"]])


class TestAcceptance:
    def test_accept_now_moves_the_subtree_and_keeps_agency_access(self, world):
        transfer = start(world, keep_agency_access=True, agency_people=[world["admin"]])
        token = transfers.transfer_token(transfer)
        found = transfers.transfer_from_token(token)
        done = transfers.transfer_accept(transfer=found, user=fresh(world["carla"]), contact_name="Carla",
                                         contact_email="billing@acme.example")
        assert done.status == "completed"
        acme = Account.objects.get(pk=world["acme"].pk)
        sales = Account.objects.get(pk=world["sales"].pk)
        assert acme.depth == 1 and acme.parent is None and acme.is_root()
        assert sales.depth == 2 and sales.parent == acme and sales.path.startswith(acme.path)
        assert acme.access_categories == {} and acme.limit_minutes is None
        assert Subscription.objects.get(account=acme).plan.code == "agency"
        grant = AgencyGrant.objects.get(client=acme, agency=world["northwind"])
        assert grant.is_effective
        assert AgencySettings.objects.get(account=acme).matrix == {"billing": "read", "members": "read"}
        # the chosen person is in as an agency member; the others of Northwind are not
        assert resolve_access(fresh(world["admin"]), acme).is_agency
        assert resolve_access(fresh(world["owner"]), acme) is None
        assert resolve_access(fresh(world["member"]), sales) is None
        # Carla is its Owner, capped by the agency settings but always governing agency access
        carla = resolve_access(fresh(world["carla"]), acme)
        assert carla.is_owner and carla.may_govern_agency
        northwind = Account.objects.get(pk=world["northwind"].pk)
        assert northwind.numchild == 0

    def test_accept_without_keeping_access_cuts_the_parents_people_off_next_request(self, world, client):
        transfer = start(world)
        client.force_login(world["admin"])
        url = reverse("accounts:dashboard", kwargs={"account_id": world["sales"].public_id})
        assert client.get(url).status_code == 200
        transfers.transfer_accept(transfer=transfer, user=fresh(world["carla"]))
        assert client.get(url).status_code == 404
        assert not AgencyGrant.objects.filter(client=world["acme"]).exists()

    def test_the_usage_sum_across_both_invoices_is_unchanged_at_a_mid_period_cutover(self, world):
        acme, sales = world["acme"], world["sales"]
        talk(acme, 30, NOW - datetime.timedelta(days=5))
        talk(sales, 20, NOW - datetime.timedelta(days=4))
        talk(AccountFactory(parent=world["northwind"], name="Other customer"), 7, NOW - datetime.timedelta(days=3))
        transfer = start(world)
        transfers.transfer_accept(transfer=transfer, user=fresh(world["carla"]))
        with time_machine.travel(NOW + datetime.timedelta(hours=1), tick=False):  # calls after the cut-over
            talk(Account.objects.get(pk=acme.pk), 11, NOW + datetime.timedelta(minutes=5))
            talk(Account.objects.get(pk=sales.pk), 4, NOW + datetime.timedelta(minutes=6))
        period = period_start(NOW)
        old = compute_statement(Account.objects.get(pk=world["northwind"].pk), period)
        new = compute_statement(Account.objects.get(pk=acme.pk), period)
        total = sum(UsageRecord.objects.filter(period=period).values_list("minutes", flat=True))
        assert old.total_minutes + new.total_minutes == total == 30 + 20 + 7 + 11 + 4
        assert new.total_minutes == 15 and old.total_minutes == 57
        assert any("no longer in this account" in ln.description for ln in old.lines)
        with time_machine.travel(NOW + datetime.timedelta(days=30), tick=False):
            inv_old, _ = invoice_close(root=Account.objects.get(pk=world["northwind"].pk), period=period)
            inv_new, _ = invoice_close(root=Account.objects.get(pk=acme.pk), period=period)
        assert inv_old.total_minutes + inv_new.total_minutes == total
        assert Invoice.objects.count() == 2

    def test_at_period_end_the_switch_waits_and_metering_applies_it_on_time(self, world):
        transfer = start(world, cutover=BillingTransfer.Cutover.PERIOD_END)
        transfer = transfers.transfer_accept(transfer=transfer, user=fresh(world["carla"]))
        assert transfer.status == "scheduled" and transfer.cutover_at == datetime.datetime(2026, 12, 1,
                                                                                           tzinfo=datetime.UTC)
        assert Account.objects.get(pk=world["acme"].pk).depth == 2
        talk(world["acme"], 5, NOW)  # before the cut-over: Northwind pays
        with time_machine.travel(datetime.datetime(2026, 12, 1, 0, 5, tzinfo=datetime.UTC), tick=False):
            talk(Account.objects.get(pk=world["acme"].pk), 6, timezone.now())  # after it: Acme pays
        acme = Account.objects.get(pk=world["acme"].pk)
        assert acme.is_root()
        assert list(UsageRecord.objects.order_by("pk").values_list("billing_root", "minutes")) == [
            (world["northwind"].pk, 5), (acme.pk, 6)]

    def test_declined_expired_and_cancelled_transfers_change_nothing(self, world):
        t1 = start(world)
        transfers.transfer_decline(transfer=t1, user=fresh(world["carla"]))
        with pytest.raises(transfers.TransferInvalid, match="declined"):
            transfers.transfer_from_token(transfers.transfer_token(t1))
        t2 = start(world)
        transfers.transfer_cancel(transfer=t2, by=fresh(world["owner"]))
        with pytest.raises(ValidationError, match="cancelled"):
            transfers.transfer_accept(transfer=t2, user=fresh(world["carla"]))
        t3 = start(world)
        with time_machine.travel(NOW + datetime.timedelta(days=30), tick=False):
            with pytest.raises(transfers.TransferInvalid, match="expired"):
                transfers.transfer_from_token(transfers.transfer_token(t3))
            with pytest.raises(ValidationError, match="expired"):
                transfers.transfer_accept(transfer=t3, user=fresh(world["carla"]))
            transfers.apply_due_transfers()
        assert BillingTransfer.objects.get(pk=t3.pk).status == "expired"
        assert Account.objects.get(pk=world["acme"].pk).depth == 2

    def test_only_the_named_billing_owner_accepts(self, world, make_member):
        transfer = start(world)
        with pytest.raises(ValidationError, match="This transfer is for"):
            transfers.transfer_accept(transfer=transfer, user=fresh(world["owner"]))

    def test_accepting_twice_applies_once(self, world):
        transfer = start(world)
        transfers.transfer_accept(transfer=transfer, user=fresh(world["carla"]))
        with pytest.raises(ValidationError, match="already completed"):
            transfers.transfer_accept(transfer=transfer, user=fresh(world["carla"]))
        assert transfers.transfer_apply(transfer=transfer).status == "completed"  # idempotent
        assert Account.objects.filter(depth=1, name="Acme").count() == 1

    def test_a_transfer_whose_tree_changed_meanwhile_is_refused_clearly(self, world):
        """An ancestor became independent first: the subaccount's scheduled transfer no longer applies."""
        inner = transfers.transfer_start(account=world["sales"], by=fresh(world["owner"]),
                                         billing_owner_email="s@example.test", plan=plan("pro"))
        BillingTransfer.objects.filter(pk=inner.pk).update(status="scheduled", cutover_at=NOW)
        from accounts.services import subtree_move

        subtree_move(Account.objects.get(pk=world["acme"].pk), None)  # as an applied outer transfer would
        with pytest.raises(ValidationError, match="no longer below"):
            transfers.transfer_apply(transfer=inner)
        assert Account.objects.get(pk=world["sales"].pk).depth == 2


class TestDueTransfersNeverBlockMetering:
    def test_a_stale_transfer_is_cancelled_and_the_conversation_is_metered(self, world):
        inner = transfers.transfer_start(account=world["sales"], by=fresh(world["owner"]),
                                         billing_owner_email="s@example.test", plan=plan("pro"))
        BillingTransfer.objects.filter(pk=inner.pk).update(status="scheduled", cutover_at=NOW)
        from accounts.services import subtree_move

        subtree_move(Account.objects.get(pk=world["acme"].pk), None)
        conversation = talk(Account.objects.get(pk=world["sales"].pk), 3, NOW)
        assert conversation.status == "completed" and conversation.usage.billing_root_id == world["acme"].pk
        assert BillingTransfer.objects.get(pk=inner.pk).status == "cancelled"

    def test_expiry_is_audited_on_both_sides(self, world):
        start(world)
        with time_machine.travel(NOW + datetime.timedelta(days=30), tick=False):
            assert transfers.expire_transfers() == 1
        assert AuditEvent.objects.filter(action="billing.transfer_expired").count() == 2

    def test_an_expired_link_no_longer_blocks_a_new_transfer(self, world):
        start(world)
        with time_machine.travel(NOW + datetime.timedelta(days=30), tick=False):
            assert start(world).status == "pending"

    def test_an_agency_added_member_chosen_as_billing_owner_is_no_longer_delegated(self, world):
        helper = UserFactory()
        Membership.objects.create(account=world["acme"], user=helper, role=RoleId.MEMBER, via_agency=True)
        transfer = start(world, billing_owner_email=helper.email)
        transfers.transfer_accept(transfer=transfer, user=fresh(helper))
        m = Membership.objects.get(account=world["acme"], user=helper)
        assert m.role == RoleId.OWNER and not m.via_agency


class TestFailureLeavesNothingHalfDone:
    @pytest.mark.parametrize("step", ["_move_to_top", "_become_root", "_keep_agency"])
    def test_a_failure_at_any_step_rolls_everything_back_and_can_be_retried(self, world, monkeypatch, step):
        transfer = start(world, keep_agency_access=True, agency_people=[world["admin"]])
        before = {a.pk: (a.path, a.depth, a.parent_id, a.numchild) for a in Account.objects.all()}
        original = getattr(transfers, step)

        def boom(*args, **kwargs):
            original(*args, **kwargs)
            raise ValidationError("Injected failure")

        monkeypatch.setattr(transfers, step, boom)
        with pytest.raises(ValidationError, match="Injected"):
            transfers.transfer_accept(transfer=transfer, user=fresh(world["carla"]))
        assert {a.pk: (a.path, a.depth, a.parent_id, a.numchild) for a in Account.objects.all()} == before
        assert BillingTransfer.objects.get(pk=transfer.pk).status == "pending"
        assert not Subscription.objects.filter(account=world["acme"]).exists()
        assert not AgencyGrant.objects.filter(client=world["acme"]).exists()
        assert Membership.objects.get(account=world["acme"], user=world["carla"]).role == RoleId.OWNER
        monkeypatch.setattr(transfers, step, original)
        assert transfers.transfer_accept(transfer=transfer, user=fresh(world["carla"])).status == "completed"


class TestMoveWithinTheTree:
    def test_a_subtree_moves_under_another_parent_and_its_caps_apply(self, world):
        other = AccountFactory(parent=world["northwind"], name="Other", access_categories={"agents": "read"})
        subaccount_move(account=world["acme"], new_parent=other, by=fresh(world["owner"]))
        acme = Account.objects.get(pk=world["acme"].pk)
        sales = Account.objects.get(pk=world["sales"].pk)
        assert acme.parent == other and acme.depth == 3 and sales.depth == 4
        assert not resolve_access(fresh(world["carla"]), acme).has("manage_agents")
        assert Account.objects.get(pk=other.pk).numchild == 1

    def test_refusals(self, world, make_member):
        chain = account_chain(5, root=world["northwind"], prefix="Deep")
        with pytest.raises(ValidationError, match="levels deep"):
            subaccount_move(account=world["acme"], new_parent=chain[3], by=fresh(world["owner"]))
        with pytest.raises(ValidationError, match="below itself"):
            subaccount_move(account=world["acme"], new_parent=world["sales"], by=fresh(world["owner"]))
        with pytest.raises(ValidationError, match="own tree"):
            subaccount_move(account=world["acme"], new_parent=AccountFactory(), by=fresh(world["owner"]))
        with pytest.raises(PermissionDenied):
            subaccount_move(account=world["sales"], new_parent=chain[1], by=fresh(world["carla"]))
        assert Account.objects.get(pk=world["acme"].pk).parent_id == world["northwind"].pk


class TestPages:
    def test_reopening_the_first_step_writes_no_session_but_still_starts_over(self, world, client):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        client.force_login(world["owner"])
        url = reverse("billing:transfer-start", kwargs={"account_id": world["northwind"].public_id,
                                                        "sub_id": world["acme"].public_id})
        step = f"transfer_{world['acme'].public_id}-current_step"
        assert client.get(url).status_code == 200
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200  # a reload: the wizard's state is already fresh
        assert not [q for q in queries.captured_queries if "django_session" in q["sql"] and "UPDATE" in q["sql"]]
        client.post(url, {step: "owner", "owner-owner": str(world["carla"].pk)})  # on to the plan step
        with CaptureQueriesContext(connection) as queries:
            r = client.get(url)  # opening it again starts over, and that is saved
        assert "owner-owner" in r.content.decode()
        assert [q for q in queries.captured_queries if "django_session" in q["sql"] and "UPDATE" in q["sql"]]
        r = client.post(url, {step: "owner", "owner-owner": str(world["carla"].pk)})
        assert r.status_code == 200 and "plan" in r.content.decode()

    def test_the_wizard_walks_four_steps_and_starts_the_transfer(self, world, client):
        client.force_login(world["owner"])
        url = reverse("billing:transfer-start", kwargs={"account_id": world["northwind"].public_id,
                                                        "sub_id": world["acme"].public_id})
        prefix = f"transfer_{world['acme'].public_id}"
        step = f"{prefix}-current_step"
        assert client.get(url).status_code == 200
        r = client.post(url, {step: "owner", "owner-owner": str(world["carla"].pk)})
        assert r.status_code == 200 and "plan" in r.content.decode()
        r = client.post(url, {step: "plan", "plan-plan": plan("agency").pk, "plan-cutover": "now"})
        # back keeps what was entered
        r = client.post(url, {step: "access", "wizard_goto_step": "plan"})  # back keeps what was entered
        assert f'value="{plan("agency").pk}"' in r.content.decode() and "checked" in r.content.decode()
        client.post(url, {step: "plan", "plan-plan": plan("agency").pk, "plan-cutover": "now"})
        r = client.post(url, {step: "access", "access-keep": "keep", "access-people": [str(world["admin"].pk)]})
        html = r.content.decode()
        assert "leave this account tree" in html and world["carla"].email in html and world["admin"].email in html
        r = client.post(url, {step: "review", "review-confirm": "on"})
        assert r.status_code == 302
        transfer = BillingTransfer.objects.get()
        assert transfer.keep_agency_access and transfer.agency_people == [world["admin"].pk]

    def test_the_wizard_is_refused_to_a_member_and_404_for_another_tenant(self, world, client, make_member):
        url = reverse("billing:transfer-start", kwargs={"account_id": world["northwind"].public_id,
                                                        "sub_id": world["acme"].public_id})
        client.force_login(world["member"])
        assert client.get(url).status_code == 403
        client.force_login(make_member(AccountFactory(), RoleId.OWNER))
        assert client.get(url).status_code == 404

    def test_the_customer_signs_up_through_the_link_and_accepts(self, world, client):
        transfer = start(world, billing_owner_email="newowner@acme.example")
        link = reverse("billing:transfer-accept", kwargs={"token": transfers.transfer_token(transfer)})
        html = client.get(link).content.decode()
        assert "Take over billing for Acme" in html and "$299.00" in html
        r = client.post(link, {"decision": "accept", "name": "Nora", "password": "a-Long-pass-2026",
                               "contact_name": "Nora", "contact_email": "ap@acme.example"})
        assert r.status_code == 302
        acme = Account.objects.get(pk=world["acme"].pk)
        assert acme.is_root()
        assert Membership.objects.get(account=acme, user__email="newowner@acme.example").role == "owner"
        assert client.get(link).status_code == 410  # single use

    def test_the_billing_tab_shows_a_pending_transfer_on_both_sides(self, world, client):
        start(world)
        client.force_login(world["owner"])
        html = client.get(reverse("accounts:subaccount-billing", kwargs={
            "account_id": world["northwind"].public_id, "sub_id": world["acme"].public_id})).content.decode()
        assert "Waiting for the customer" in html and "Cancel the transfer" in html


class TestMovePage:
    def test_the_move_page_lists_only_targets_with_room_and_moves(self, world, client):
        other = AccountFactory(parent=world["northwind"], name="Other")
        client.force_login(world["owner"])
        url = reverse("accounts:subaccount-move", kwargs={"account_id": world["northwind"].public_id,
                                                          "sub_id": world["acme"].public_id})
        html = client.get(url).content.decode()
        assert "Other" in html and f'value="{world["sales"].public_id}"' not in html  # not below itself
        r = client.post(url, {"new_parent": str(other.public_id)})
        assert r.status_code == 302 and Account.objects.get(pk=world["acme"].pk).parent_id == other.pk

    def test_the_move_page_is_refused_to_a_member_and_404_elsewhere(self, world, client, make_member):
        url = reverse("accounts:subaccount-move", kwargs={"account_id": world["northwind"].public_id,
                                                          "sub_id": world["acme"].public_id})
        client.force_login(world["member"])
        assert client.get(url).status_code == 403
        client.force_login(make_member(AccountFactory(), RoleId.OWNER))
        assert client.get(url).status_code == 404
        client.force_login(world["owner"])
        AccountFactory(parent=world["northwind"], name="Somewhere")
        r = client.post(url, {"new_parent": str(AccountFactory().public_id)})  # another tenant's account
        assert r.status_code == 200 and "Select a valid choice" in r.content.decode()


class TestTheOldPoolKeepsWhatDepartedUsed:
    """A billing transfer (or a move) takes a subaccount's minutes out of the old lineage's figures, but the
    pools it drew from keep counting them until the period ends: otherwise a subaccount whose pool is full could
    transfer a used-up child away and draw the pool again, billed to the root that set the limit."""

    def test_a_used_up_child_transferred_away_does_not_free_the_pool(self, world):
        acme, sales = world["acme"], world["sales"]  # Acme has a 500-minute pool
        support = AccountFactory(parent=acme, name="Acme Support")
        assert talk(sales, 500, NOW - datetime.timedelta(days=1)).status == "completed"
        assert talk(support, 1, NOW - datetime.timedelta(hours=3)).status == "blocked"
        sam = UserFactory(email="sam@sales.example")
        transfer = start(world, account=sales, billing_owner_email=sam.email)
        transfers.transfer_accept(transfer=transfer, user=fresh(sam))
        assert Account.objects.get(pk=sales.pk).is_root()

        from billing.selectors import minutes_drawn_from_pools, minutes_used_in_subtrees
        acme = Account.objects.get(pk=acme.pk)
        # the lists show the tree as it is now; the pool remembers what it gave
        assert minutes_used_in_subtrees([acme], period_start(NOW))[acme.pk] == 0
        assert minutes_drawn_from_pools([acme], period_start(NOW))[acme.pk] == 500
        blocked = talk(support, 1, NOW - datetime.timedelta(hours=2))
        assert blocked.status == "blocked" and blocked.blocked_reason == "A minutes pool above this account is used up."
        own = talk(acme, 1, NOW - datetime.timedelta(hours=1))
        assert own.status == "blocked" and "500 of 500 minutes used" in own.blocked_reason
        assert not UsageRecord.objects.filter(account__in=[acme, support], period=period_start(NOW)).exists()

        # the record is not a cache of the ledger: the rebuild keeps it
        from billing.rollups import expected_rollups, rollups_rebuild, stored_rollups
        rollups_rebuild()
        assert stored_rollups() == expected_rollups()
        assert talk(support, 1, NOW - datetime.timedelta(minutes=30)).status == "blocked"

        # the transferred account took its minutes along: its own lineage counts them, under its new owner
        assert minutes_used_in_subtrees([Account.objects.get(pk=sales.pk)], period_start(NOW))[sales.pk] == 500

    def test_the_pool_counts_them_for_their_period_only(self, world):
        acme, sales = world["acme"], world["sales"]
        last_period = NOW.replace(day=1) - datetime.timedelta(days=2)
        assert talk(sales, 500, last_period).status == "completed"  # last month's pool
        sam = UserFactory(email="sam@sales.example")
        transfers.transfer_accept(transfer=start(world, account=sales, billing_owner_email=sam.email),
                                  user=fresh(sam))
        assert talk(Account.objects.get(pk=acme.pk), 500, NOW - datetime.timedelta(hours=1)).status == "completed"

    def test_the_agency_dashboard_shows_the_pool_with_what_left(self, world, client):
        acme, sales = world["acme"], world["sales"]
        talk(sales, 450, NOW - datetime.timedelta(days=1))
        talk(acme, 20, NOW - datetime.timedelta(days=1))
        sam = UserFactory(email="sam@sales.example")
        transfers.transfer_accept(transfer=start(world, account=sales, billing_owner_email=sam.email),
                                  user=fresh(sam))
        client.force_login(world["owner"])
        page = client.get(reverse("accounts:dashboard", kwargs={"account_id": acme.public_id})).content.decode()
        assert '<p class="stat-value">20</p>' in page  # Acme's minutes as the tree is now
        assert "470 of 500 in the minutes pool (450 of them by subaccounts that left this month)" in page
        # the agency's list of subaccounts near their limit counts them too
        page = client.get(reverse("accounts:dashboard", kwargs={"account_id": world["northwind"].public_id}))
        assert "Acme</a>: 470 of 500 minutes" in page.content.decode()
        # and so does Acme's Limits tab
        page = client.get(reverse("accounts:subaccount-limits", kwargs={
            "account_id": world["northwind"].public_id, "sub_id": acme.public_id})).content.decode()
        assert "470 of 500 · 94 %" in page and "450 of them by subaccounts that left this period." in page

    def test_the_migration_gives_this_months_transfers_their_departed_minutes_back(self, world):
        from billing.models import UsageRollup
        from billing.rollups import departed_from_transfers

        sales = world["sales"]
        talk(sales, 120, NOW - datetime.timedelta(days=1))
        talk(sales, 30, NOW.replace(day=1) - datetime.timedelta(days=3))  # last month's: not this month's pool
        sam = UserFactory(email="sam@sales.example")
        transfers.transfer_accept(transfer=start(world, account=sales, billing_owner_email=sam.email),
                                  user=fresh(sam))
        with time_machine.travel(NOW + datetime.timedelta(hours=1), tick=False):
            talk(Account.objects.get(pk=sales.pk), 9, NOW + datetime.timedelta(minutes=30))  # the new root's
        UsageRollup.objects.update(departed_minutes=0)  # as a transfer left them before migration 0012
        assert departed_from_transfers(period_start(NOW)) == 2
        assert dict(UsageRollup.objects.filter(departed_minutes__gt=0, period=period_start(NOW)).values_list(
            "account__name", "departed_minutes")) == {"Northwind": 120, "Acme": 120}


class TestTheProvidersPeopleLeaveTheSubtree:
    """People of the tree above who hold memberships inside the transferred subtree (an agency employee made Admin
    of a client's team, say) lose them at the switch, kept or not: a kept person's access is the agency membership
    on the account itself, which the customer can revoke; a direct membership below would outlive that."""

    @pytest.fixture
    def planted(self, world, make_member):
        employee = world["admin"]  # Northwind's Admin…
        make_member(world["sales"], RoleId.ADMIN, user=employee)  # …also Admin of Acme Sales, directly
        make_member(world["acme"], RoleId.MEMBER, user=world["member"])  # Northwind's Member, also in Acme
        neighbour = make_member(AccountFactory(parent=world["northwind"], name="Other client"), RoleId.OWNER)
        make_member(world["sales"], RoleId.MEMBER, user=neighbour)  # only a sibling client's person: stays
        return dict(world, employee=employee, neighbour=neighbour)

    @pytest.mark.parametrize("keep", [False, True])
    def test_they_lose_every_membership_below_at_the_switch(self, planted, keep):
        w = planted
        transfer = start(w, keep_agency_access=keep, agency_people=[w["employee"]] if keep else [])
        transfers.transfer_accept(transfer=transfer, user=fresh(w["carla"]))
        sales, acme = Account.objects.get(pk=w["sales"].pk), Account.objects.get(pk=w["acme"].pk)
        assert resolve_access(fresh(w["employee"]), sales) is None  # agency access is not inherited below Acme
        assert resolve_access(fresh(w["member"]), acme) is None
        assert bool(resolve_access(fresh(w["employee"]), acme)) is keep  # as an agency member only
        assert set(Membership.objects.filter(account__in=[acme, sales], is_agency=False)
                   .values_list("user__email", "account__name")) == {
            (w["carla"].email, "Acme"), (w["neighbour"].email, "Acme Sales")}
        assert AuditEvent.objects.filter(account=sales, action="member.removed",
                                         summary__contains="Acme became independent of Northwind").count() == 1

    def test_the_billing_owner_keeps_theirs(self, planted):
        w = planted  # Northwind's Member, also a member of Acme, is made its Owner
        transfer = start(planted, billing_owner_email=w["member"].email)
        transfers.transfer_accept(transfer=transfer, user=fresh(w["member"]))
        acme = Account.objects.get(pk=w["acme"].pk)
        assert Membership.objects.get(account=acme, user=w["member"]).role == RoleId.OWNER
        assert resolve_access(fresh(w["employee"]), Account.objects.get(pk=w["sales"].pk)) is None

    def test_the_wizard_and_the_acceptance_page_name_them(self, planted, client):
        w = planted
        client.force_login(w["owner"])
        url = reverse("billing:transfer-start", kwargs={"account_id": w["northwind"].public_id,
                                                        "sub_id": w["acme"].public_id})
        step = f"transfer_{w['acme'].public_id}-current_step"
        client.get(url)
        client.post(url, {step: "owner", "owner-owner": str(w["carla"].pk)})
        client.post(url, {step: "plan", "plan-plan": plan("agency").pk, "plan-cutover": "now"})
        html = client.post(url, {step: "access", "access-keep": "none"}).content.decode()
        leaving = html[html.index('data-testid="transfer-leaving"'):].split("</p>")[0]
        assert f"{w['employee'].email} (Admin in Acme Sales)" in leaving
        assert f"{w['member'].email} (Member in Acme)" in leaving and w["neighbour"].email not in leaving
        client.post(url, {step: "review", "review-confirm": "on"})
        client.logout()
        client.force_login(w["carla"])
        token = transfers.transfer_token(BillingTransfer.objects.get())
        link = reverse("billing:transfer-accept", kwargs={"token": token})
        html = client.get(link).content.decode()
        leaving = html[html.index('data-testid="transfer-leaving"'):].split("</p>")[0]
        assert w["employee"].email in leaving and w["member"].email in leaving
        keep = html[html.index("keep their access"):].split("</p>")[0]
        assert w["carla"].email in keep and w["member"].email not in keep


class TestNothingMovesAcrossAnOpenTransfer:
    """The customer accepts an account with its subtree as it is: while the transfer is open or scheduled, nothing
    moves into it, out of it or under it."""

    @pytest.mark.parametrize("move", ["out of it", "into it", "the account itself"])
    def test_a_move_is_refused(self, world, move):
        acme, sales = world["acme"], world["sales"]
        other = AccountFactory(parent=world["northwind"], name="Other client")
        transfers.transfer_accept(transfer=start(world, cutover=BillingTransfer.Cutover.PERIOD_END),
                                  user=fresh(world["carla"]))  # scheduled for the end of the period
        account, new_parent = {"out of it": (sales, other), "into it": (other, acme),
                               "the account itself": (acme, other)}[move]
        with pytest.raises(ValidationError, match="billing transfer is under way"):
            subaccount_move(account=Account.objects.get(pk=account.pk),
                            new_parent=Account.objects.get(pk=new_parent.pk), by=fresh(world["owner"]))
        assert Account.objects.get(pk=sales.pk).parent_id == acme.pk
        assert Account.objects.get(pk=other.pk).parent_id == world["northwind"].pk


def test_only_people_who_hold_all_of_agency_admin_may_keep_access(frozen_clock, make_member):
    # a root that is itself a client under agency access caps its own people by its agency settings: keeping one
    # of them as Agency Admin (uncapped, everything but billing) would give them more than they hold (R1)
    client_root = AccountFactory(name="Client root")
    AgencySettings.objects.create(account=client_root, enabled=True, matrix={"contacts": "none"})
    capped_admin = make_member(client_root, RoleId.ADMIN)
    team = AccountFactory(parent=client_root, name="Team")
    assert "view_contacts" not in resolve_access(capped_admin, team).permissions
    assert list(transfers.agency_candidates(team)) == []
    carla = make_member(team, RoleId.OWNER)
    with pytest.raises(ValidationError, match="who hold every permission of Agency Admin here"):
        transfers.transfer_start(account=team, by=fresh(capped_admin), billing_owner_email=carla.email,
                                 plan=plan("agency"), keep_agency_access=True, agency_people=[capped_admin])
    assert not BillingTransfer.objects.exists()
    uncapped = make_member(AccountFactory(name="Agency root"), RoleId.ADMIN)
    assert list(transfers.agency_candidates(AccountFactory(parent=uncapped.memberships.get().account))) == [uncapped]


def test_the_former_payers_statement_names_a_transferred_account_as_it_was(world, client):
    from accounts.services import account_rename
    from billing.statements import live_statement, statement_lines, statement_rows

    talk(world["acme"], 30, NOW - datetime.timedelta(days=2))
    talk(world["sales"], 5, NOW - datetime.timedelta(days=2))
    transfers.transfer_accept(transfer=start(world), user=fresh(world["carla"]))
    account_rename(account=Account.objects.get(pk=world["acme"].pk), name="Acme Renamed Ltd", by=fresh(world["carla"]))
    northwind = Account.objects.get(pk=world["northwind"].pk)
    labels = {ln.description for ln in compute_statement(northwind, period_start(NOW)).lines}
    assert labels == {"Acme (no longer in this account)", "Acme Sales (no longer in this account)"}
    statement = live_statement(northwind, period_start(NOW))
    [lines] = statement_lines(statement, statement_rows(statement)[0:10])
    assert {ln.description for ln in lines} == labels
    client.force_login(world["owner"])
    page = client.get(reverse("billing:overview", kwargs={"account_id": northwind.public_id})).content.decode()
    assert "Acme (no longer in this account)" in page and "Renamed" not in page
    # searched by the name its line shows: the new owner's name for it finds nothing (the former payer cannot probe
    # it), the old one finds it
    found = {text: [name for _, _, name, _ in statement_rows(statement, search=text)[0:10]]
             for text in ("renamed", "acme", "SALES")}
    assert found == {"renamed": [], "acme": ["Acme Renamed Ltd", "Acme Sales"], "SALES": ["Acme Sales"]}
    url = reverse("billing:overview", kwargs={"account_id": northwind.public_id})

    def table(q):
        html = client.get(url, {"q": q}).content.decode()
        return html[html.index('id="statement"'):].split("</table>")[0]

    assert "no longer in this account" not in table("Renamed")
    assert "Acme (no longer in this account)" in table("acme")



def test_a_transferred_lines_search_folds_case_as_the_lines_still_in_the_tree(world):
    """A line that left matches a search exactly when it would if it were still in the tree: its kept name is
    compared as the database compares names (SQLite folds ASCII letters only; PostgreSQL upper-cases one
    character for one), not by Python's own case folding."""
    from accounts.services import account_rename
    from billing.statements import live_statement, statement_rows

    account_rename(account=world["acme"], name="Straße École", by=fresh(world["owner"]))
    inside = AccountFactory(parent=world["northwind"], name="Straße École inside")
    talk(world["acme"], 30, NOW - datetime.timedelta(days=2))
    talk(inside, 5, NOW - datetime.timedelta(days=2))
    transfers.transfer_accept(transfer=start(world), user=fresh(world["carla"]))
    statement = live_statement(Account.objects.get(pk=world["northwind"].pk), period_start(NOW))
    for text in ("strasse", "STRASSE", "straße", "STRAßE", "école", "ÉCOLE", "École", "straSSe éCOLE"):
        found = {pk for pk, _, _, _ in statement_rows(statement, search=text)[0:10]}
        assert (world["acme"].pk in found) == (inside.pk in found), text
    assert {pk for pk, _, _, _ in statement_rows(statement, search="straße")[0:10]} == {world["acme"].pk, inside.pk}

def test_the_backfill_ignores_transfers_completed_before_the_period(world):
    from billing.models import UsageRollup
    from billing.rollups import departed_from_transfers
    from billing.services import usage_record_create

    sam = UserFactory(email="sam@sales.example")
    transfer = transfers.transfer_accept(transfer=start(world, account=world["sales"], billing_owner_email=sam.email),
                                         user=fresh(sam))
    BillingTransfer.objects.filter(pk=transfer.pk).update(cutover_at=NOW.replace(day=1) - datetime.timedelta(days=3))
    usage_record_create(account=Account.objects.get(pk=world["sales"].pk), billing_root=world["northwind"],
                        period=period_start(NOW), occurred_on=NOW.date(), minutes=7, seconds=420)
    UsageRollup.objects.update(departed_minutes=0)
    assert departed_from_transfers(period_start(NOW)) == 0
    assert not UsageRollup.objects.filter(departed_minutes__gt=0).exists()
