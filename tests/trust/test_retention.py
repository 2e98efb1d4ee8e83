"""Data retention: the policy over the tree (inheritance, locks), its service, the preview, "do not store" at write
time (pages, API), and the Data retention page."""

import datetime
import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.services import subaccount_set_access
from developers.services import apikey_create
from members.roles import RoleId
from tests.factories import AccountFactory, account_chain
from trust.models import DataType, ExpiryAction, Period, RetentionRule
from trust.policy import effective_retention
from trust.retention import Choice, policy_update, preview
from workspace.models import Agent, Contact, Conversation
from workspace.services import conversation_record, conversation_update

pytestmark = pytest.mark.django_db

T, R, INS, IP, PH = (DataType.TRANSCRIPTS, DataType.RECORDINGS, DataType.INSIGHTS, DataType.IP_LOCATION,
                   DataType.PHONE_NUMBERS)


def rule(account, data_type, period, action=ExpiryAction.DELETE, locked=False):
    return RetentionRule.objects.create(account=account, data_type=data_type, period=period, action=action,
                                        is_locked=locked)


def conversation(account, days_ago, n=0, **fields):
    agent = Agent.objects.filter(account=account).first() or Agent.objects.create(account=account, name="A")
    contact = Contact.objects.create(account=account, name=f"Ada Lovelace {n}", phone=f"+1415555{n:04d}",
                                     created_at=timezone.now() - datetime.timedelta(days=days_ago))
    values = {"summary": "Ada called", "transcript": [{"role": "caller", "text": "hi"}],
              "recording_url": "https://rec.example/1.mp3", "insights": {"score": 4, "note": "x"},
              "caller_ip": "203.0.113.7", "caller_location": "Berlin, DE", **fields}
    return Conversation.objects.create(account=account, agent=agent, contact=contact, duration_seconds=60,
                                       started_at=timezone.now() - datetime.timedelta(days=days_ago), **values)


class TestInheritance:
    def test_five_levels_follow_the_nearest_rule_and_name_its_source(self, django_assert_num_queries):
        chain = account_chain(5)
        rule(chain[0], T, Period.YEARS_2)
        rule(chain[2], T, Period.DAYS_90, ExpiryAction.ANONYMISE)
        rule(chain[1], R, Period.DAYS_30)
        with django_assert_num_queries(1):
            eff = effective_retention(chain[4])
        assert (eff[T].period, eff[T].action, eff[T].source.pk) == ("90d", "anonymise", chain[2].pk)
        assert (eff[R].period, eff[R].source.pk) == ("30d", chain[1].pk)
        assert (eff[INS].period, eff[INS].source) == ("forever", None)  # nobody set one: kept
        assert effective_retention(chain[1])[T].source.pk == chain[0].pk
        assert eff[T].locked_by is None

    def test_the_topmost_lock_wins_over_every_level_below(self):
        chain = account_chain(5)
        rule(chain[1], T, Period.YEAR_1, locked=True)
        rule(chain[2], T, Period.DAYS_30, locked=True)  # a lock below a lock: the upper one wins
        rule(chain[4], T, Period.FOREVER)
        for level in (2, 3, 4):
            eff = effective_retention(chain[level])[T]
            assert (eff.period, eff.locked_by.pk) == ("1y", chain[1].pk), level
        own = effective_retention(chain[1])[T]  # the locker itself: its own rule, not "locked by"
        assert own.period == "1y" and own.locked_by is None

    def test_a_locked_type_cannot_be_set_below_but_others_can(self, make_member):
        chain = account_chain(5)
        top = make_member(chain[0], RoleId.OWNER)
        policy_update(account=chain[0], by=top, choices={IP: Choice("6m", is_locked=True)})
        with pytest.raises(ValidationError, match="locked"):
            policy_update(account=chain[4], by=top, choices={IP: Choice("1y")})
        policy_update(account=chain[4], by=top, choices={T: Choice("30d")})
        eff = effective_retention(chain[4])
        assert eff[IP].period == "6m" and eff[T].period == "30d"


class TestService:
    def test_roles_without_trust_center_management_are_refused(self, make_member):
        account = AccountFactory()
        for role in (RoleId.MEMBER, RoleId.VIEWER):
            with pytest.raises(PermissionDenied):
                policy_update(account=account, by=make_member(account, role), choices={T: Choice("30d")})
        for role in (RoleId.ADMIN, RoleId.AGENCY_ADMIN):
            policy_update(account=account, by=make_member(account, role), choices={T: Choice("30d")})
        assert not RetentionRule.objects.exclude(period="30d").exists()

    def test_an_outsider_is_refused(self, make_member):
        account, other = AccountFactory(), AccountFactory()
        with pytest.raises(PermissionDenied):
            policy_update(account=account, by=make_member(other, RoleId.OWNER), choices={T: Choice("30d")})

    @pytest.mark.parametrize("data_type,choice,message", [
        (PH, Choice("30d"), "at least 90 days"),
        (IP, Choice("none"), "at least 90 days"),
        (PH, Choice("1y", ExpiryAction.ANONYMISE), "only be deleted"),
        (R, Choice("1y", ExpiryAction.ANONYMISE), "only be deleted"),
        (T, Choice("3w"), "from the list"),
    ])
    def test_bad_choices_are_named_and_change_nothing(self, make_member, data_type, choice, message):
        account = AccountFactory()
        owner = make_member(account, RoleId.OWNER)
        with pytest.raises(ValidationError, match=message) as exc:
            policy_update(account=account, by=owner, choices={T: Choice("90d"), data_type: choice})
        assert data_type in exc.value.error_dict
        assert not RetentionRule.objects.exists()

    def test_changes_are_audited_and_following_again_removes_the_rule(self, make_member):
        account = AccountFactory()
        owner = make_member(account, RoleId.OWNER)
        policy_update(account=account, by=owner, choices={T: Choice("1y", ExpiryAction.ANONYMISE)})
        assert policy_update(account=account, by=owner, choices={T: Choice("1y", ExpiryAction.ANONYMISE)}) == {}
        policy_update(account=account, by=owner, choices={T: None})
        assert not RetentionRule.objects.exists()
        rows = list(AuditEvent.objects.filter(account=account, action="retention.policy_changed")
                    .order_by("created_at", "pk").values_list("summary", flat=True))
        assert rows == ["Data retention: conversation transcripts follows the account above → 1 year, then anonymised",
                        "Data retention: conversation transcripts 1 year, then anonymised → follows the account above"]


class TestPreview:
    def test_counts_what_shortening_would_remove_here_and_in_followers(self, make_member):
        parent = AccountFactory()
        follower, own_rule = AccountFactory(parent=parent), AccountFactory(parent=parent)
        rule(own_rule, T, Period.FOREVER)
        for account in (parent, follower, own_rule):
            for n, days in enumerate((10, 40, 100, 400)):
                conversation(account, days, n=n + 10 * account.depth + account.pk)
        got = {r.data_type: (r.rows, r.accounts) for r in preview(account=parent, choices={
            T: Choice("90d"), R: Choice("30d"), PH: Choice("1y")})}
        # transcripts and recordings: the parent and the follower (not the subaccount with its own rule)
        assert got[T] == (4, 2) and got[R] == (9, 3) and got[PH] == (3, 3)
        assert preview(account=parent, choices={T: Choice("forever")}) == []  # longer: nothing removed
        assert not RetentionRule.objects.filter(account=parent).exists()  # a preview saves nothing

    def test_anonymised_rows_count_only_once_and_delete_after_anonymise_counts_again(self):
        account = AccountFactory()
        rule(account, T, Period.DAYS_30, ExpiryAction.ANONYMISE)
        conversation(account, 40, transcript_anonymised=True)
        conversation(account, 40, n=1)
        assert [r.rows for r in preview(account=account, choices={T: Choice("30d", ExpiryAction.DELETE)})] == [2]


class TestDoNotStore:
    def test_nothing_of_a_type_set_to_do_not_store_is_saved(self, make_member):
        parent = AccountFactory()
        account = AccountFactory(parent=parent)
        owner = make_member(parent, RoleId.OWNER)
        policy_update(account=parent, by=owner, choices={T: Choice("none"), INS: Choice("none")})
        agent = Agent.objects.create(account=account, name="A")
        contact = Contact.objects.create(account=account, name="Ada", phone="+14155550100")
        c = conversation_record(account=account, agent=agent, contact=contact, by=owner, duration_seconds=60,
                                started_at=timezone.now() - datetime.timedelta(minutes=5), summary="secret",
                                transcript=[{"role": "caller", "text": "secret"}], insights={"note": "secret"},
                                recording_url="https://rec.example/a.mp3", caller_ip="203.0.113.9")
        c.refresh_from_db()
        assert (c.summary, c.transcript, c.insights) == ("", [], {})
        assert c.recording_url and c.caller_ip == "203.0.113.9"  # kept: their policy stores them
        conversation_update(conversation=c, by=owner, summary="edited secret")
        c.refresh_from_db()
        assert c.summary == ""

    def test_the_api_records_through_the_same_service(self, client, make_member):
        account = AccountFactory()
        owner = make_member(account, RoleId.OWNER)
        policy_update(account=account, by=owner, choices={T: Choice("none"), R: Choice("none")})
        agent = Agent.objects.create(account=account, name="A")
        contact = Contact.objects.create(account=account, name="Ada", phone="+14155550100")
        _, key = apikey_create(account=account, by=owner, label="k")
        response = client.post(f"/api/v1/accounts/{account.public_id}/conversations", json.dumps({
            "agent_id": str(agent.public_id), "contact_id": str(contact.public_id), "duration_seconds": 61,
            "started_at": (timezone.now() - datetime.timedelta(minutes=5)).isoformat(), "summary": "secret",
            "transcript": [{"role": "caller", "text": "secret"}], "recording_url": "https://rec.example/a.mp3",
            "insights": {"score": 5}, "caller_ip": "2001:db8::1", "caller_location": "Oslo, NO"}),
            content_type="application/json", HTTP_X_API_KEY=key)
        assert response.status_code == 201, response.content
        body = response.json()
        assert (body["summary"], body["transcript"], body["recording_url"]) == ("", [], "")
        assert body["insights"] == {"score": 5} and body["caller_ip"] == "2001:db8::1"
        c = Conversation.objects.get(account=account)
        assert (c.summary, c.transcript, c.recording_url) == ("", [], "")


def page(account):
    return reverse("trust:retention", kwargs={"account_id": account.public_id})


def form_data(**overrides):
    data = {f"{t}_period": "follow" for t in DataType.values}
    data.update({f"{t}_action": "delete" for t in (T, INS, IP)})
    data.update(overrides)
    return data


class TestPage:
    def test_shows_where_each_value_comes_from_without_naming_unreachable_accounts(self, client, make_member):
        chain = account_chain(3, prefix="Tier")
        rule(chain[0], T, Period.YEAR_1, locked=True)
        rule(chain[1], R, Period.DAYS_90)
        client.force_login(make_member(chain[2], RoleId.OWNER))
        text = client.get(page(chain[2])).content.decode()
        assert "Deleted after 1 year" in text and "Locked by an account above this one" in text
        assert "Tier 1" not in text and "Tier 2" not in text
        client.force_login(make_member(chain[0], RoleId.OWNER))
        text = client.get(page(chain[2])).content.decode()
        assert "Locked by Tier 1" in text and "Tier 2" in text

    def test_shortening_asks_first_with_the_count_then_saves(self, client, make_member):
        account = AccountFactory()
        client.force_login(make_member(account, RoleId.ADMIN))
        for n in range(3):
            conversation(account, 100, n=n)
        conversation(account, 10, n=9)
        response = client.post(page(account), form_data(transcripts_period="90d"))
        assert response.status_code == 200 and response.templates[0].name == "trust/retention_confirm.html"
        assert response.context["removals"][0].rows == 3
        assert not RetentionRule.objects.exists()  # nothing saved before confirming
        response = client.post(page(account), {**form_data(transcripts_period="90d"), "confirm": "yes"})
        assert response.status_code == 302
        assert RetentionRule.objects.get(account=account).period == "90d"
        assert Conversation.objects.filter(account=account).exclude(summary="").count() == 4  # the purge removes
        # lengthening again saves at once
        assert client.post(page(account), form_data(transcripts_period="1y")).status_code == 302

    def test_bad_input_is_shown_at_the_field(self, client, make_member):
        account = AccountFactory()
        client.force_login(make_member(account, RoleId.OWNER))
        response = client.post(page(account), form_data(phone_numbers_period="30d"))
        assert response.status_code == 200 and response.context["form"].errors["phone_numbers_period"]
        response = client.post(page(account), form_data(recordings_period="garbage"))
        assert response.status_code == 200 and not RetentionRule.objects.exists()

    def test_read_level_views_and_cannot_save_and_members_are_refused(self, client, make_member):
        parent = AccountFactory()
        child = AccountFactory(parent=parent)
        subaccount_set_access(account=child, matrix={"trust_center": "read"}, by=make_member(parent, RoleId.OWNER))
        client.force_login(make_member(child, RoleId.ADMIN))  # Trust Center capped at Read by the parent
        response = client.get(page(child))
        assert response.status_code == 200 and "can view but not change" in response.content.decode()
        assert client.post(page(child), form_data(transcripts_period="1y")).status_code == 403
        assert not RetentionRule.objects.exists()
        for role in (RoleId.MEMBER, RoleId.VIEWER):  # no Trust Center in their role (the permission matrix)
            client.force_login(make_member(child, role))
            assert client.get(page(child)).status_code == 403

    def test_a_capped_trust_center_is_refused(self, client, make_member):
        parent = AccountFactory()
        child = AccountFactory(parent=parent)
        owner = make_member(parent, RoleId.OWNER)
        subaccount_set_access(account=child, matrix={"trust_center": "none"}, by=owner)
        client.force_login(make_member(child, RoleId.ADMIN))
        assert client.get(page(child)).status_code == 403

    def test_another_tenants_page_is_404(self, client, make_member):
        mine, theirs = AccountFactory(), AccountFactory()
        client.force_login(make_member(mine, RoleId.OWNER))
        assert client.get(page(theirs)).status_code == 404
        assert client.post(page(theirs), form_data(transcripts_period="30d", confirm="yes")).status_code == 404
        assert not RetentionRule.objects.exists()

    def test_query_budget_is_absolute_and_does_not_grow(self, client, make_member, count_queries):
        chain = account_chain(4)
        client.force_login(make_member(chain[0], RoleId.OWNER))
        client.get(page(chain[3]))  # first visit records "last active"
        counts = []
        for n in (1, 30):
            for i in range(n):
                conversation(chain[3], 5, n=100 * n + i)
            rule(chain[n % 3], DataType.values[n % 5], Period.YEAR_1)
            counts.append(count_queries(lambda: client.get(page(chain[3]))))
        assert counts == [RETENTION_PAGE_BUDGET] * 2


# session + user, the account with its lineage, the person's memberships and permission rows and the security
# policies (one query), the retention lineage's rules.
RETENTION_PAGE_BUDGET = 4


class TestIndex:
    def url(self, account):
        return reverse("trust:index", kwargs={"account_id": account.public_id})

    def test_isolation_permission_and_budget(self, client, make_member, count_queries):
        account, other = AccountFactory(), AccountFactory()
        client.force_login(make_member(account, RoleId.MEMBER))
        assert client.get(self.url(account)).status_code == 403  # no Trust Center in a Member's role
        client.force_login(make_member(account, RoleId.OWNER))
        assert client.get(self.url(other)).status_code == 404
        response = client.get(self.url(account))
        text = response.content.decode()
        assert "Data retention" in text and "Public trust page" in text and "Not published" in text
        assert count_queries(lambda: client.get(self.url(account))) == INDEX_BUDGET


# session + user, the account with the person's membership, permission rows and security policy (one query), the page
INDEX_BUDGET = 4
