"""Data requests, services and the background task: each kind end to end, scope, erasure, expiry, email,
failures. The task runs in the test (django-tasks' immediate backend, or the task function called directly)."""

import datetime
import json

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone

from accounts.access import accounts_holding, resolve_access
from accounts.models import AuditEvent
from accounts.services import subaccount_set_access
from agency import services as agency_services
from billing.models import InvoiceLine, UsageRecord, period_start
from billing.services import invoice_close
from members.roles import RoleId
from security.models import SecurityEvent
from tests.factories import AccountFactory, MembershipFactory, UserFactory
from trust import requests, xlsx
from trust.erasure import ERASED_NAME, PERSONAL_CONVERSATION_FIELDS, cleared_value
from trust.models import RESULT_LIFETIME, DataRequest, DataRequestResult
from trust.tasks import run_data_request
from workspace.models import Agent, Contact, Conversation
from workspace.services import conversation_record

pytestmark = pytest.mark.django_db

IMMEDIATE = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


@pytest.fixture
def immediate(settings):
    settings.TASKS = IMMEDIATE


@pytest.fixture
def root():
    return AccountFactory(name="Northwind")


@pytest.fixture
def owner(root, make_member):
    return make_member(root, RoleId.OWNER)


def contact_in(account, by, *, name="Jane Roe", phone="+41791234567", email="jane@example.com", calls=1,
               summary="Jane asked about her order 42."):
    contact = Contact.objects.create(account=account, name=name, phone=phone, email=email)
    agent = Agent.objects.create(account=account, name=f"Agent {account.name}")
    for i in range(calls):
        conversation_record(account=account, agent=agent, contact=contact, by=by, duration_seconds=90,
                            started_at=timezone.now() - datetime.timedelta(hours=i + 1), summary=summary,
                            transcript=[{"speaker": "caller", "text": f"This is {name}."}],
                            recording_url="https://recordings.example/1.mp3", insights={"intent": "order status"},
                            caller_ip="198.51.100.7", caller_location="Zurich")
    return contact


def finish(data_request):
    """Run the queued request as the worker would, and reload it."""
    run_data_request.call(data_request.pk)
    data_request.refresh_from_db()
    return data_request


def result_of(data_request, fmt):
    return bytes(DataRequestResult.objects.get(request=data_request, format=fmt).content)


class TestSubjects:
    @pytest.mark.parametrize("typed,stored", [
        ("+41 79 123 45 67", "+41791234567"), ("0041-79-123.45.67", "+41791234567"),
        ("(+1) 415 555 0123", "+14155550123"), ("  Jane@Example.COM ", "jane@example.com"),
    ])
    def test_phone_numbers_and_emails_are_normalised_like_contacts_store_them(self, typed, stored):
        assert requests.normalise_subject(typed) == stored

    @pytest.mark.parametrize("typed", ["", "0791234567", "+0123456789", "abc", "jane@", "+41 79 12"])
    def test_anything_else_is_refused_at_the_field(self, typed):
        with pytest.raises(ValidationError) as exc:
            requests.normalise_subject(typed)
        assert set(exc.value.error_dict) == {"subject"}

    def test_masked_forms_do_not_give_the_subject_back(self):
        assert requests.mask("+41791234567") == "+417•••67"
        assert requests.mask("jane@example.com") == "j•••@example.com"


class TestContactExport:
    def test_end_to_end_through_the_task_backend(self, root, owner, immediate, django_capture_on_commit_callbacks):
        contact = contact_in(root, owner, calls=2)
        contact_in(root, owner, name="Someone else", phone="+41790000000", email="other@example.com")
        with django_capture_on_commit_callbacks(execute=True):
            data_request = requests.contact_export_request(account=root, by=owner, subject="+41 79 123 45 67")
        data_request.refresh_from_db()
        assert data_request.status == DataRequest.Status.COMPLETED
        assert data_request.outcome == {"accounts": 1, "contacts": 1, "conversations": 2}
        assert data_request.expires_at == data_request.finished_at + RESULT_LIFETIME
        data = json.loads(result_of(data_request, "json"))
        assert [c["contact_id"] for c in data["contacts"]] == [str(contact.public_id)]
        assert data["contacts"][0]["email"] == "jane@example.com"
        assert {c["summary"] for c in data["conversations"]} == {"Jane asked about her order 42."}
        assert len(data["usage"]) == 2 and all(u["minutes"] == 2 for u in data["usage"])
        assert "Someone else" not in json.dumps(data)
        book = xlsx.read_workbook(result_of(data_request, "xlsx"))
        assert list(book) == ["About this export", "Contacts", "Conversations", "Usage"]
        assert book["Contacts"][0] == ["account", "account_id", "contact_id", "name", "phone", "email", "created"]
        assert book["Contacts"][1][3:6] == ["Jane Roe", "+41791234567", "jane@example.com"]
        assert len(book["Conversations"]) == 3
        assert AuditEvent.objects.filter(account=root, action="data_request.export_requested").exists()

    def test_email_on_finish_names_the_download_page(self, root, owner, django_capture_on_commit_callbacks):
        contact_in(root, owner)
        data_request = requests.contact_export_request(account=root, by=owner, subject="jane@example.com")
        with django_capture_on_commit_callbacks(execute=True):
            finish(data_request)
        assert len(mail.outbox) == 1
        message = mail.outbox[0]
        assert message.to == [owner.email] and "ready" in message.subject
        assert f"/a/{root.public_id}/trust/requests/" in message.body

    def test_email_matches_whatever_the_case(self, root, owner):
        contact_in(root, owner, email="Jane.Roe@Example.com")
        data_request = finish(requests.contact_export_request(account=root, by=owner, subject="jane.roe@example.COM"))
        assert data_request.outcome["contacts"] == 1

    def test_refused_without_manage_trust_center(self, root, make_member):
        for role in (RoleId.MEMBER, RoleId.VIEWER):
            with pytest.raises(PermissionDenied):
                requests.contact_export_request(account=root, by=make_member(root, role), subject="+41791234567")
        assert not DataRequest.objects.exists()

    def test_bad_input_changes_nothing(self, root, owner):
        with pytest.raises(ValidationError):
            requests.contact_export_request(account=root, by=owner, subject="not a phone")
        assert not DataRequest.objects.exists()

    def test_the_same_request_twice_while_in_progress_is_refused(self, root, owner):
        requests.contact_export_request(account=root, by=owner, subject="+41791234567")
        with pytest.raises(ValidationError, match="already in progress"):
            requests.contact_export_request(account=root, by=owner, subject="+41 79 123 45 67")


class TestScope:
    @pytest.fixture
    def tree(self, root, owner):
        child = AccountFactory(parent=root, name="Child")
        grandchild = AccountFactory(parent=child, name="Grandchild")
        sibling_tenant = AccountFactory(name="Other tenant")
        for account in (root, child, grandchild, sibling_tenant):
            contact_in(account, owner if account != sibling_tenant else None)
        return root, child, grandchild, sibling_tenant

    def test_subaccounts_only_when_asked(self, tree, owner):
        root, child, grandchild, _ = tree
        alone = finish(requests.contact_export_request(account=root, by=owner, subject="+41791234567"))
        assert alone.outcome["accounts"] == 1 and alone.outcome["contacts"] == 1
        subtree = finish(requests.contact_export_request(account=root, by=owner, subject="+41791234567",
                                                         include_subaccounts=True))
        assert subtree.outcome == {"accounts": 3, "contacts": 3, "conversations": 3}
        names = {c["account"] for c in json.loads(result_of(subtree, "json"))["contacts"]}
        assert names == {"Northwind", "Child", "Grandchild"}

    def test_never_above_beside_or_another_tenant(self, tree, make_member):
        root, child, grandchild, other = tree
        child_owner = make_member(child, RoleId.OWNER)
        data_request = finish(requests.contact_export_request(account=child, by=child_owner, subject="+41791234567",
                                                              include_subaccounts=True))
        names = {c["account"] for c in json.loads(result_of(data_request, "json"))["contacts"]}
        assert names == {"Child", "Grandchild"}
        assert "Northwind" not in result_of(data_request, "json").decode()
        assert "Other tenant" not in result_of(data_request, "json").decode()

    def test_subaccounts_where_the_requester_may_not_are_left_out(self, tree, owner, make_member):
        root, child, grandchild, _ = tree
        # A person who manages the Trust Center of the root only through an agency grant: agency access does not
        # reach subaccounts.
        agency = AccountFactory(name="Agency")
        agency_person = make_member(agency, RoleId.OWNER)
        grant = agency_services.access_request(agency=agency, client=root, by=agency_person)
        agency_services.access_decide(grant=grant, approve=True, by=owner)
        assert [a.name for a in accounts_holding(agency_person, root, "manage_trust_center")] == ["Northwind"]
        data_request = finish(requests.contact_export_request(account=root, by=agency_person,
                                                              subject="+41791234567", include_subaccounts=True))
        assert data_request.outcome["accounts"] == 1

    def test_a_member_of_a_subaccount_gets_only_what_they_manage(self, tree, make_member):
        root, child, grandchild, _ = tree
        person = make_member(child, RoleId.MEMBER)  # no Trust Center in the child
        MembershipFactory(user=person, account=grandchild, role=RoleId.ADMIN)
        with pytest.raises(PermissionDenied):
            requests.contact_export_request(account=child, by=person, subject="+41791234567",
                                            include_subaccounts=True)
        assert [a.name for a in accounts_holding(person, grandchild, "manage_trust_center")] == ["Grandchild"]

    def test_accounts_holding_agrees_with_resolve_access_everywhere(self, tree, owner, make_member):
        root, child, grandchild, _ = tree
        deeper = AccountFactory(parent=grandchild, name="Deeper")
        side = AccountFactory(parent=root, name="Side")
        people = [owner, make_member(child, RoleId.ADMIN), make_member(child, RoleId.MEMBER)]
        capped_admin = make_member(grandchild, RoleId.ADMIN)
        MembershipFactory(user=people[2], account=deeper, role=RoleId.OWNER)
        subaccount_set_access(account=grandchild, matrix={"trust_center": "read"}, by=owner)
        people.append(capped_admin)
        for person in people:
            for top in (root, child, grandchild, deeper, side):
                expected = [a for a in (top, *top.descendants().order_by("path"))
                            if (x := resolve_access(person, a)) is not None and x.has("manage_trust_center")]
                got = accounts_holding(person, top, "manage_trust_center")
                if top not in expected:
                    assert got == [], (person.email, top.name)
                else:
                    assert [a.pk for a in got] == [a.pk for a in expected], (person.email, top.name)

    def test_scope_is_three_queries_after_access_whatever_the_subtree(self, root, owner, django_assert_num_queries):
        for i in range(3):
            child = AccountFactory(parent=root, name=f"C{i}")
            AccountFactory(parent=child, name=f"G{i}")
        resolve_access(owner, root)
        with django_assert_num_queries(3):
            assert len(accounts_holding(owner, root, "manage_trust_center")) == 7

    def test_losing_the_permission_before_it_runs_fails_with_a_reason(self, tree, owner, make_member,
                                                                       django_capture_on_commit_callbacks):
        root, *_ = tree
        admin = make_member(root, RoleId.ADMIN)
        data_request = requests.contact_export_request(account=root, by=admin, subject="+41791234567")
        from members.models import Membership
        from members.services import membership_change_role

        membership_change_role(membership=Membership.objects.get(user=admin, account=root), role=RoleId.VIEWER,
                               by=owner)
        with django_capture_on_commit_callbacks(execute=True):
            finish(data_request)
        assert data_request.status == DataRequest.Status.FAILED
        assert "may no longer run contact requests" in data_request.failure_reason
        assert not DataRequestResult.objects.filter(request=data_request).exists()
        assert len(mail.outbox) == 1 and "failed" in mail.outbox[0].subject
        assert data_request.failure_reason in mail.outbox[0].body


class TestErasure:
    def test_preview_names_what_will_be_removed(self, root, owner):
        with_calls = contact_in(root, owner, calls=2)
        child = AccountFactory(parent=root, name="Child")
        without = contact_in(child, owner, phone="", calls=0)
        preview = requests.contact_preview(account=root, by=owner, subject="jane@example.com",
                                           include_subaccounts=True)
        assert [(m.contact.pk, m.conversations) for m in preview.matches] == [(with_calls.pk, 2), (without.pk, 0)]
        assert preview.matches[1].contact.account.name == "Child"

    def test_end_to_end_keeps_usage_and_invoices_with_anonymised_references(self, root, owner, immediate,
                                                                             django_capture_on_commit_callbacks):
        last_month = period_start(period_start() - datetime.timedelta(days=1))
        with time_machine.travel(datetime.datetime.combine(last_month, datetime.time(12), tzinfo=datetime.UTC)):
            contact = contact_in(root, owner, calls=2)
        keep = contact_in(root, owner, name="Keep Me", phone="+41790000000", email="keep@example.com")
        lonely = Contact.objects.create(account=root, name="Jane Twin", email="JANE@example.com")
        invoice, _ = invoice_close(root=root, period=last_month)
        lines_before = list(InvoiceLine.objects.filter(invoice=invoice).values_list("description", "minutes",
                                                                                   "amount_cents"))
        usage_before = list(UsageRecord.objects.filter(conversation__contact=contact)
                            .order_by("pk").values_list("pk", "minutes", "conversation_id"))
        assert len(usage_before) == 2
        preview = requests.contact_preview(account=root, by=owner, subject="jane@example.com",
                                           include_subaccounts=False)
        with django_capture_on_commit_callbacks(execute=True):
            data_request = requests.contact_erasure_request(account=root, by=owner, subject="jane@example.com",
                                                            contact_ids=preview.contact_ids)
        data_request.refresh_from_db()
        assert data_request.status == DataRequest.Status.COMPLETED
        assert data_request.outcome == {"contacts_anonymised": 1, "contacts_deleted": 1, "conversations_cleared": 2,
                                        "accounts": 1, "skipped": 0}
        contact.refresh_from_db()
        assert (contact.name, contact.phone, contact.email) == (ERASED_NAME, "", "")
        assert not Contact.objects.filter(pk=lonely.pk).exists()
        for conversation in Conversation.objects.filter(contact=contact):
            assert all(getattr(conversation, f) == cleared_value(f) for f in PERSONAL_CONVERSATION_FIELDS)
        assert Conversation.objects.filter(contact=keep).get().summary  # someone else's untouched
        # usage and invoices: every row kept, same figures, pointing at the anonymised conversation
        assert list(UsageRecord.objects.filter(conversation__contact=contact)
                    .order_by("pk").values_list("pk", "minutes", "conversation_id")) == usage_before
        assert list(InvoiceLine.objects.filter(invoice=invoice).values_list(
            "description", "minutes", "amount_cents")) == lines_before
        assert not any("Jane" in d or "jane@" in d for d, _, _ in lines_before)
        # the request keeps only a masked subject; the audit trail records it without naming the person
        assert data_request.subject == "" and data_request.subject_masked == "j•••@example.com"
        erased = AuditEvent.objects.get(account=root, action="data_request.erased")
        assert erased.actor == owner and "2 contact(s)" in erased.summary and "jane@" not in erased.summary
        assert AuditEvent.objects.filter(account=root, action="data_request.erasure_requested").exists()
        assert not DataRequest.objects.filter(subject__icontains="jane").exists()

    def test_audit_summaries_and_stored_api_answers_no_longer_name_the_contact(self, root, owner):
        from api.models import IdempotencyRecord
        from developers.services import apikey_create
        from workspace.services import contact_create, contact_update

        contact = contact_create(account=root, by=owner, name="Jane Roe", email="jane@example.com")
        contact_update(contact=contact, by=owner, phone="+41791234567")
        key, _ = apikey_create(account=root, by=owner, label="k")
        record = IdempotencyRecord.objects.create(api_key=key, key="abc", fingerprint="x", status_code=201,
                                                  response_body={"id": str(contact.public_id), "name": "Jane Roe",
                                                                 "phone": "", "email": "jane@example.com"})
        preview = requests.contact_preview(account=root, by=owner, subject="jane@example.com",
                                           include_subaccounts=False)
        finish(requests.contact_erasure_request(account=root, by=owner, subject="jane@example.com",
                                                contact_ids=preview.contact_ids))
        summaries = list(AuditEvent.objects.filter(account=root).values_list("summary", flat=True))
        assert not any("Jane Roe" in s for s in summaries), summaries
        record.refresh_from_db()
        assert record.response_body["name"] == ERASED_NAME and record.response_body["email"] == ""

    def test_confirmation_must_match_what_is_erased(self, root, owner):
        contact_in(root, owner)
        with pytest.raises(ValidationError, match="changed since"):
            requests.contact_erasure_request(account=root, by=owner, subject="jane@example.com", contact_ids=[])
        preview = requests.contact_preview(account=root, by=owner, subject="jane@example.com",
                                           include_subaccounts=False)
        Contact.objects.create(account=root, name="Appeared since", email="jane@example.com")
        with pytest.raises(ValidationError, match="changed since"):
            requests.contact_erasure_request(account=root, by=owner, subject="jane@example.com",
                                             contact_ids=preview.contact_ids)
        assert not DataRequest.objects.exists()

    def test_another_tenants_contact_id_cannot_be_slipped_in(self, root, owner):
        mine = contact_in(root, owner)
        other = AccountFactory(name="Other")
        theirs = Contact.objects.create(account=other, name="Theirs", email="jane@example.com")
        with pytest.raises(ValidationError):
            requests.contact_erasure_request(account=root, by=owner, subject="jane@example.com",
                                             contact_ids=[str(mine.public_id), str(theirs.public_id)])
        theirs.refresh_from_db()
        assert theirs.name == "Theirs"

    def test_refused_without_manage_trust_center(self, root, owner, make_member):
        contact_in(root, owner)
        member = make_member(root, RoleId.MEMBER)
        with pytest.raises(PermissionDenied):
            requests.contact_preview(account=root, by=member, subject="jane@example.com", include_subaccounts=False)
        with pytest.raises(PermissionDenied):
            requests.contact_erasure_request(account=root, by=member, subject="jane@example.com", contact_ids=[])

    def test_a_failure_rolls_everything_back_and_is_recorded(self, root, owner, monkeypatch):
        contact = contact_in(root, owner)
        preview = requests.contact_preview(account=root, by=owner, subject="jane@example.com",
                                           include_subaccounts=False)
        data_request = requests.contact_erasure_request(account=root, by=owner, subject="jane@example.com",
                                                        contact_ids=preview.contact_ids)

        def broken(*args, **kwargs):
            raise RuntimeError("disk full")

        monkeypatch.setattr(requests.exports, "render_xlsx", broken)
        with pytest.raises(RuntimeError):
            run_data_request.call(data_request.pk)
        data_request.refresh_from_db()
        assert data_request.status == DataRequest.Status.FAILED
        assert "unexpected error" in data_request.failure_reason
        contact.refresh_from_db()
        assert contact.name == "Jane Roe"  # nothing erased
        assert Conversation.objects.get(contact=contact).summary
        assert not AuditEvent.objects.filter(action="data_request.erased").exists()


class TestMyData:
    def test_end_to_end(self, root, owner, make_member, django_capture_on_commit_callbacks):
        viewer = make_member(root, RoleId.VIEWER)
        other_tenant = AccountFactory(name="Elsewhere Ltd")
        MembershipFactory(user=viewer, account=other_tenant, role=RoleId.MEMBER)
        SecurityEvent.objects.create(user=viewer, email=viewer.email, kind=SecurityEvent.Kind.LOGIN_SUCCEEDED,
                                     ip="203.0.113.9", user_agent="Firefox")
        AuditEvent.objects.create(account=root, actor=viewer, action="account.switched", summary="Switched here")
        AuditEvent.objects.create(account=root, actor=owner, action="x", summary="Not the viewer's")
        data_request = requests.my_data_request(account=root, by=viewer)
        with django_capture_on_commit_callbacks(execute=True):
            finish(data_request)
        assert data_request.status == DataRequest.Status.COMPLETED
        data = json.loads(result_of(data_request, "json"))
        assert {"field": "email", "value": viewer.email} in data["profile"]
        assert {m["account"] for m in data["memberships"]} == {"Northwind", "Elsewhere Ltd"}
        assert data["login_activity"][0]["ip"] == "203.0.113.9"
        assert [a["summary"] for a in data["audit"]] == ["Switched here"]
        book = xlsx.read_workbook(result_of(data_request, "xlsx"))
        assert list(book) == ["About this export", "Profile", "Memberships", "Login activity",
                              "Actions (audit trail)"]
        assert mail.outbox[0].to == [viewer.email]
        assert f"/a/{root.public_id}/trust/my-data/" in mail.outbox[0].body

    def test_accounts_no_longer_reached_are_not_named(self, root, owner, make_member):
        person = make_member(root, RoleId.MEMBER)
        gone = AccountFactory(name="Former Employer")
        AuditEvent.objects.create(account=gone, actor=person, action="x", summary="Did something in Former Employer")
        data = json.loads(result_of(finish(requests.my_data_request(account=root, by=person)), "json"))
        assert "Former Employer" not in json.dumps(data)
        assert data["audit"][0]["account"] == "an account you no longer reach"

    def test_only_people_who_reach_the_account(self, root):
        with pytest.raises(PermissionDenied):
            requests.my_data_request(account=root, by=UserFactory())


class TestDownloads:
    @pytest.fixture
    def export(self, root, make_member):
        requester = make_member(root, RoleId.ADMIN)
        contact_in(root, requester)
        return finish(requests.contact_export_request(account=root, by=requester, subject="jane@example.com"))

    def test_requester_owners_and_admins_only(self, root, owner, export, make_member):
        parent_admin_root = AccountFactory(name="Parent")
        assert requests.result_for(data_request=export, by=export.requested_by, fmt="xlsx").size > 0
        assert requests.result_for(data_request=export, by=owner, fmt="json")
        assert requests.result_for(data_request=export, by=make_member(root, RoleId.ADMIN), fmt="json")
        for role in (RoleId.MEMBER, RoleId.VIEWER, RoleId.AGENCY_ADMIN):
            with pytest.raises(PermissionDenied):
                requests.result_for(data_request=export, by=make_member(root, role), fmt="json")
        with pytest.raises(PermissionDenied):  # another tenant's Owner
            requests.result_for(data_request=export, by=make_member(parent_admin_root, RoleId.OWNER), fmt="json")

    def test_an_owner_from_above_may(self, owner, make_member):
        child = AccountFactory(parent=owner.memberships.get().account, name="Child")
        child_admin = make_member(child, RoleId.ADMIN)
        contact_in(child, child_admin)
        export = finish(requests.contact_export_request(account=child, by=child_admin, subject="jane@example.com"))
        assert requests.result_for(data_request=export, by=owner, fmt="json")

    def test_a_persons_own_data_is_theirs_alone(self, root, owner, make_member):
        member = make_member(root, RoleId.MEMBER)
        mine = finish(requests.my_data_request(account=root, by=member))
        assert requests.result_for(data_request=mine, by=member, fmt="json")
        with pytest.raises(PermissionDenied):
            requests.result_for(data_request=mine, by=owner, fmt="json")

    def test_expired_after_seven_days_and_purged(self, export, owner):
        with time_machine.travel(export.finished_at + RESULT_LIFETIME - datetime.timedelta(minutes=1)):
            assert requests.result_for(data_request=export, by=owner, fmt="xlsx")
        with time_machine.travel(export.finished_at + RESULT_LIFETIME + datetime.timedelta(minutes=1)):
            with pytest.raises(Http404):
                requests.result_for(data_request=export, by=owner, fmt="xlsx")
            assert requests.purge_expired() == 2
        assert DataRequest.objects.filter(pk=export.pk).exists()  # the history stays

    def test_unknown_formats_and_unfinished_requests_are_404(self, root, owner, export):
        with pytest.raises(Http404):
            requests.result_for(data_request=export, by=owner, fmt="csv")
        queued = requests.contact_export_request(account=root, by=owner, subject="+41791234567")
        with pytest.raises(Http404):
            requests.result_for(data_request=queued, by=owner, fmt="json")


def test_the_task_runs_a_request_once(root, owner):
    contact_in(root, owner)
    data_request = requests.contact_export_request(account=root, by=owner, subject="jane@example.com")
    assert run_data_request.call(data_request.pk) == DataRequest.Status.COMPLETED
    assert run_data_request.call(data_request.pk) is None
    assert DataRequestResult.objects.filter(request=data_request).count() == 2


def test_a_request_is_enqueued_after_commit(root, owner, django_capture_on_commit_callbacks):
    from django_tasks_db.models import DBTaskResult

    with django_capture_on_commit_callbacks(execute=True):
        requests.my_data_request(account=root, by=owner)
    assert DBTaskResult.objects.count() == 1


def test_the_purge_command_deletes_expired_files_only(root, owner):
    from io import StringIO

    from django.core.management import call_command

    contact_in(root, owner)
    old = finish(requests.contact_export_request(account=root, by=owner, subject="jane@example.com"))
    fresh = finish(requests.contact_export_request(account=root, by=owner, subject="+41791234567"))
    DataRequest.objects.filter(pk=old.pk).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    out = StringIO()
    call_command("purge_data_request_results", stdout=out)
    assert "Deleted 2 expired" in out.getvalue()
    assert not DataRequestResult.objects.filter(request=old).exists()
    assert DataRequestResult.objects.filter(request=fresh).count() == 2
