"""Data request pages: happy paths, another tenant (404), roles without the permission (refused), query budgets."""

import datetime

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from members.roles import RoleId
from tests.factories import AccountFactory
from trust import requests
from trust.models import RESULT_LIFETIME, DataRequest
from trust.tasks import run_data_request
from workspace.models import Agent, Contact, Conversation
from workspace.services import conversation_record

pytestmark = pytest.mark.django_db


def u(name, account, data_request=None):
    kwargs = {"account_id": account.public_id}
    if data_request is not None:
        kwargs["datarequest_id"] = data_request.public_id
    return reverse(f"trust:{name}", kwargs=kwargs)


@pytest.fixture
def account():
    return AccountFactory(name="Northwind")


@pytest.fixture
def owner(account, make_member):
    return make_member(account, RoleId.OWNER)


@pytest.fixture
def jane(account, owner):
    contact = Contact.objects.create(account=account, name="Jane Roe", phone="+41791234567", email="jane@example.com")
    conversation_record(account=account, agent=Agent.objects.create(account=account, name="A"), contact=contact,
                        by=owner, started_at=timezone.now() - datetime.timedelta(hours=1), duration_seconds=60,
                        summary="Personal words")
    return contact


def finished_export(account, by):
    data_request = requests.contact_export_request(account=account, by=by, subject="jane@example.com")
    run_data_request.call(data_request.pk)
    data_request.refresh_from_db()
    return data_request


class TestList:
    def test_in_progress_and_history_with_status_requester_scope_and_reason(self, client, account, owner, jane,
                                                                           make_member):
        done = finished_export(account, owner)
        queued = requests.contact_export_request(account=account, by=owner, subject="+41791234567")
        failed = DataRequest.objects.create(account=account, kind=DataRequest.Kind.CONTACT_EXPORT, requested_by=owner,
                                            requester_email=owner.email, status=DataRequest.Status.FAILED,
                                            failure_reason="Something specific went wrong", subject_masked="x•••")
        client.force_login(owner)
        response = client.get(u("requests", account))
        page = response.content.decode()
        assert [r.pk for r in response.context["in_progress"]] == [queued.pk]
        assert [r.pk for r in response.context["object_list"]] == [failed.pk, done.pk]
        assert "Something specific went wrong" in page and owner.email in page and "This account" in page
        assert u("request-download", account, done) + "?format=xlsx" in page
        assert "Queued" in page and "Completed" in page and "Failed" in page

    def test_download_links_only_for_those_who_may(self, client, account, owner, jane, make_member):
        done = finished_export(account, owner)
        agency_admin = make_member(account, RoleId.AGENCY_ADMIN)  # views the Trust Center, not an Owner or Admin
        client.force_login(agency_admin)
        page = client.get(u("requests", account)).content.decode()
        assert u("request-download", account, done) not in page
        assert "For the requester and the account" in page

    def test_empty_states(self, client, account, owner):
        client.force_login(owner)
        page = client.get(u("requests", account)).content.decode()
        assert "Nothing in progress." in page and "No finished requests yet." in page

    @pytest.mark.parametrize("role", [RoleId.MEMBER, RoleId.VIEWER])
    def test_refused_without_view_trust_center(self, client, account, make_member, role):
        client.force_login(make_member(account, role))
        assert client.get(u("requests", account)).status_code == 403

    def test_another_tenant_is_404(self, client, account, make_member):
        client.force_login(make_member(AccountFactory(), RoleId.OWNER))
        assert client.get(u("requests", account)).status_code == 404

    def test_costs_a_fixed_number_of_queries(self, client, account, owner, jane, count_queries):
        client.force_login(owner)

        def add(n):
            for i in range(n):
                DataRequest.objects.create(account=account, kind=DataRequest.Kind.CONTACT_EXPORT, requested_by=owner,
                                           requester_email=owner.email, subject_masked=f"x{i}",
                                           status=DataRequest.Status.COMPLETED, finished_at=timezone.now(),
                                           expires_at=timezone.now() + RESULT_LIFETIME)
                DataRequest.objects.create(account=account, kind=DataRequest.Kind.CONTACT_ERASURE,
                                           requested_by=owner, requester_email=owner.email, subject=f"+4179000{i:04d}")

        add(1)
        client.get(u("requests", account))  # "last active" is written on the first visit
        small = count_queries(lambda: client.get(u("requests", account)))
        add(30)
        large = count_queries(lambda: client.get(u("requests", account)))
        assert (small, large) == (5, 6)  # the small list fits on its first page: no COUNT


class TestContactExportPage:
    def test_starts_an_export_and_says_so(self, client, account, owner, jane):
        client.force_login(owner)
        response = client.post(u("request-export", account), {"subject": "+41 79 123 45 67"}, follow=True)
        data_request = DataRequest.objects.get()
        assert data_request.kind == DataRequest.Kind.CONTACT_EXPORT and data_request.subject == "+41791234567"
        assert "started" in response.content.decode()
        assert response.redirect_chain[-1][0] == u("requests", account)

    def test_bad_input_is_named_at_the_field_and_changes_nothing(self, client, account, owner):
        client.force_login(owner)
        response = client.post(u("request-export", account), {"subject": "call me"})
        assert response.status_code == 200
        assert "international format" in response.content.decode()
        assert not DataRequest.objects.exists()

    def test_subaccount_choice_only_when_there_are_subaccounts(self, client, account, owner):
        client.force_login(owner)
        assert "include_subaccounts" not in client.get(u("request-export", account)).content.decode()
        AccountFactory(parent=account)
        account.refresh_from_db()
        assert "include_subaccounts" in client.get(u("request-export", account)).content.decode()

    @pytest.mark.parametrize("role", [RoleId.MEMBER, RoleId.VIEWER])
    def test_refused_without_manage_trust_center(self, client, account, make_member, role):
        client.force_login(make_member(account, role))
        for name in ("request-export", "request-erasure"):
            assert client.get(u(name, account)).status_code == 403
            assert client.post(u(name, account), {"subject": "+41791234567"}).status_code == 403
        assert not DataRequest.objects.exists()

    def test_another_tenant_is_404(self, client, account, make_member):
        client.force_login(make_member(AccountFactory(), RoleId.OWNER))
        for name in ("request-export", "request-erasure"):
            assert client.post(u(name, account), {"subject": "+41791234567"}).status_code == 404


class TestErasurePage:
    def test_confirmation_names_what_will_be_removed_then_erases_it(self, client, account, owner, jane, settings,
                                                                    django_capture_on_commit_callbacks):
        settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
        client.force_login(owner)
        response = client.post(u("request-erasure", account), {"subject": "jane@example.com"})
        page = response.content.decode()
        assert "Jane Roe" in page and "+41791234567" in page and "Erased contact" in page
        assert "cannot be undone" in page
        assert not DataRequest.objects.exists()  # nothing yet
        ids = [str(m.contact.public_id) for m in response.context["preview"].matches]
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(u("request-erasure", account), {"subject": "jane@example.com", "confirm": "1",
                                                                   "contact_ids": ids})
        assert response.status_code == 302
        jane.refresh_from_db()
        assert jane.name == "Erased contact" and jane.email == "" and jane.phone == ""
        assert Conversation.objects.get(contact=jane).summary == ""
        assert AuditEvent.objects.filter(account=account, action="data_request.erased", actor=owner).exists()
        assert DataRequest.objects.get().status == DataRequest.Status.COMPLETED

    def test_nothing_matching_is_said(self, client, account, owner):
        client.force_login(owner)
        page = client.post(u("request-erasure", account), {"subject": "nobody@example.com"}).content.decode()
        assert "Nothing to erase" in page

    def test_a_stale_or_forged_confirmation_changes_nothing(self, client, account, owner, jane):
        client.force_login(owner)
        response = client.post(u("request-erasure", account), {"subject": "jane@example.com", "confirm": "1",
                                                               "contact_ids": ["not-a-uuid"]})
        assert response.status_code == 200 and "changed since" in response.content.decode()
        assert not DataRequest.objects.exists()
        jane.refresh_from_db()
        assert jane.name == "Jane Roe"


class TestMyDataPage:
    @pytest.mark.parametrize("role", [RoleId.OWNER, RoleId.MEMBER, RoleId.VIEWER])
    def test_any_member_asks_and_downloads_their_own(self, client, account, make_member, role):
        person = make_member(account, role)
        client.force_login(person)
        assert client.get(u("my-data", account)).status_code == 200
        response = client.post(u("my-data", account), follow=True)
        assert "being gathered" in response.content.decode()
        data_request = DataRequest.objects.get(requested_by=person)
        run_data_request.call(data_request.pk)
        page = client.get(u("my-data", account)).content.decode()
        assert u("request-download", account, data_request) in page
        download = client.get(u("request-download", account, data_request) + "?format=json")
        assert download.status_code == 200 and download["Content-Type"] == "application/json"
        assert person.email in download.content.decode()

    def test_lists_only_the_persons_own_requests(self, client, account, owner, make_member):
        requests.my_data_request(account=account, by=owner)
        member = make_member(account, RoleId.MEMBER)
        client.force_login(member)
        response = client.get(u("my-data", account))
        assert list(response.context["object_list"]) == []
        assert "You have not asked" in response.content.decode()

    def test_the_navigation_offers_it_to_those_without_the_trust_center(self, client, account, make_member):
        client.force_login(make_member(account, RoleId.MEMBER))
        page = client.get(reverse("accounts:dashboard", args=[account.public_id])).content.decode()
        assert u("my-data", account) in page and f'href="{u("index", account)}"' not in page

    def test_twice_while_in_progress_says_so(self, client, account, owner):
        client.force_login(owner)
        client.post(u("my-data", account))
        response = client.post(u("my-data", account), follow=True)
        assert "already in progress" in response.content.decode()
        assert DataRequest.objects.count() == 1

    def test_another_tenant_is_404(self, client, account, make_member):
        client.force_login(make_member(AccountFactory(), RoleId.OWNER))
        assert client.get(u("my-data", account)).status_code == 404
        assert client.post(u("my-data", account)).status_code == 404

    def test_costs_a_fixed_number_of_queries(self, client, account, owner, count_queries):
        client.force_login(owner)

        def add(n):
            for _ in range(n):
                DataRequest.objects.create(account=account, kind=DataRequest.Kind.MY_DATA, requested_by=owner,
                                           requester_email=owner.email, status=DataRequest.Status.COMPLETED,
                                           finished_at=timezone.now(), expires_at=timezone.now() + RESULT_LIFETIME)

        add(1)
        client.get(u("my-data", account))
        small = count_queries(lambda: client.get(u("my-data", account)))
        add(30)
        large = count_queries(lambda: client.get(u("my-data", account)))
        assert (small, large) == (4, 5)  # the small list fits on its first page: no COUNT


class TestDownloadPage:
    def test_requester_and_owner_download_both_formats(self, client, account, owner, jane, make_member):
        admin = make_member(account, RoleId.ADMIN)
        done = finished_export(account, admin)
        for reader in (admin, owner):
            client.force_login(reader)
            xlsx_file = client.get(u("request-download", account, done) + "?format=xlsx")
            assert xlsx_file.status_code == 200 and xlsx_file.content[:2] == b"PK"
            assert xlsx_file["Content-Disposition"].startswith('attachment; filename="contact-export-')
            assert xlsx_file["Cache-Control"] == "no-store"
            assert client.get(u("request-download", account, done) + "?format=json").status_code == 200

    @pytest.mark.parametrize("role", [RoleId.AGENCY_ADMIN, RoleId.MEMBER, RoleId.VIEWER])
    def test_refused_to_others(self, client, account, owner, jane, make_member, role):
        done = finished_export(account, owner)
        client.force_login(make_member(account, role))
        assert client.get(u("request-download", account, done)).status_code == 403

    def test_another_tenants_request_is_404(self, client, account, owner, jane, make_member):
        done = finished_export(account, owner)
        other = AccountFactory()
        client.force_login(make_member(other, RoleId.OWNER))
        assert client.get(u("request-download", account, done)).status_code == 404
        assert client.get(u("request-download", other, done)).status_code == 404  # their account, not their request

    def test_a_subaccount_request_is_not_reachable_through_its_parent_url(self, client, account, owner, make_member):
        child = AccountFactory(parent=account)
        Contact.objects.create(account=child, name="J", email="jane@example.com")
        done = finished_export(child, owner)
        client.force_login(owner)
        assert client.get(u("request-download", account, done)).status_code == 404
        assert client.get(u("request-download", child, done)).status_code == 200

    def test_gone_after_seven_days(self, client, account, owner, jane):
        done = finished_export(account, owner)
        client.force_login(owner)
        with time_machine.travel(done.finished_at + RESULT_LIFETIME + datetime.timedelta(seconds=1)):
            assert client.get(u("request-download", account, done)).status_code == 404
            page = client.get(u("requests", account)).content.decode()
            assert "Expired" in page and u("request-download", account, done) not in page

    def test_garbage_format_is_404(self, client, account, owner, jane):
        done = finished_export(account, owner)
        client.force_login(owner)
        assert client.get(u("request-download", account, done) + "?format=../../etc").status_code == 404
