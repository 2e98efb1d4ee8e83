"""Rule R9: every id, page, filter and hint in a query string or a form survives garbage.

An object id that does not parse is a 404 (like another tenant's id), a filter or hint that does
not parse is ignored, a form field that does not parse is a form error: never a server error. The
test client re-raises a view's exception, so a 500 shows up here as the exception itself.
"""

import datetime
import uuid
from urllib.parse import urlencode

import pytest
from django.urls import reverse

from agency import services as agency_services
from billing.models import period_start
from billing.services import invoice_close
from members.roles import RoleId
from tests.factories import AccountFactory
from workspace.models import Agent, Contact, Conversation

pytestmark = pytest.mark.django_db

UNKNOWN_UUID = "12345678-1234-4234-9234-1234567890ab"
GARBAGE = [
    "not-a-uuid", " ", "x" * 60_000, "../", "../../etc/passwd", "' OR 1=1 --", "\x00", "%00", "a\x00b",
    "-1", "0", "1.5", "99999999999999999999999999", "9" * 5000, "1e309", "2026-13", "2026-13-45", "{}", "[]",
    "null", "\u202e\u200b", UNKNOWN_UUID,
]
ALL = ["", *GARBAGE]


def probe(send, values, expect):
    """Send each value; collect those answered with a server error or an unexpected status.
    ``expect(value)`` gives the statuses allowed for it."""
    bad = []
    for value in values:
        try:
            status = send(value).status_code
        except Exception as exc:  # the test client re-raises what would have been a 500
            bad.append((value[:30], f"{type(exc).__name__}: {str(exc)[:160]}"))
            continue
        if status not in expect(value):
            bad.append((value[:30], status))
    assert not bad, bad


def always(*statuses):
    return lambda value: set(statuses)


def url(ns_name, account, **kwargs):
    return reverse(ns_name, kwargs={"account_id": account.public_id, **kwargs})


def with_query(path, **query):
    return f"{path}?{urlencode(query)}"


@pytest.fixture
def world(make_member):
    agency = AccountFactory(name="Northwind")
    owner = make_member(agency, RoleId.OWNER)
    colleague = make_member(agency, RoleId.MEMBER)
    sub = AccountFactory(parent=agency, name="Acme Corp")
    below = AccountFactory(parent=sub, name="Acme Sales")
    client_account = AccountFactory(name="Blue Harbor", plan_code="pro")
    client_owner = make_member(client_account, RoleId.OWNER)
    grant = agency_services.access_request(agency=agency, client=client_account, by=owner)
    agency_services.access_decide(grant=grant, approve=True, by=client_owner)
    other = AccountFactory(name="Other tenant")
    other_sub = AccountFactory(parent=other, name="Other sub")
    agent = Agent.objects.create(account=agency, name="Reception")
    contact = Contact.objects.create(account=agency, name="Pat", phone="+14155550100")
    return dict(agency=agency, owner=owner, colleague=colleague, sub=sub, below=below, client=client_account,
                client_owner=client_owner, grant=grant, other=other, other_sub=other_sub, agent=agent,
                contact=contact)


@pytest.fixture
def owner_client(client, world):
    client.force_login(world["owner"])
    return client


# ---- accounts: subaccounts, audit, switcher, switch, create -------------------------------------

class TestSubaccountList:
    def test_under_that_is_not_a_subaccount_id_is_404(self, owner_client, world):
        path = url("accounts:subaccount-list", world["agency"])
        probe(lambda v: owner_client.get(with_query(path, under=v)), GARBAGE, always(404))
        probe(lambda v: owner_client.get(with_query(path, under=v), headers={"HX-Request": "true"}), GARBAGE,
              always(404))

    def test_known_bug_not_a_uuid_under_is_404_not_500(self, owner_client, world):
        path = url("accounts:subaccount-list", world["agency"])
        assert owner_client.get(path + "?under=not-a-uuid").status_code == 404

    def test_under_valid_empty_other_tenant_and_self(self, owner_client, world):
        path = url("accounts:subaccount-list", world["agency"])
        assert owner_client.get(path + "?under=").status_code == 200
        page = owner_client.get(with_query(path, under=world["sub"].public_id))
        assert page.status_code == 200 and "Acme Sales" in page.content.decode()
        fragment = owner_client.get(with_query(path, under=str(world["sub"].public_id).upper()),
                                    headers={"HX-Request": "true"})
        assert fragment.status_code == 200 and "Acme Sales" in fragment.content.decode()
        assert owner_client.get(with_query(path, under=world["other_sub"].public_id)).status_code == 404
        assert owner_client.get(with_query(path, under=world["agency"].public_id)).status_code == 404

    def test_search_sort_and_page_never_fail(self, owner_client, world):
        path = url("accounts:subaccount-list", world["agency"])
        probe(lambda v: owner_client.get(with_query(path, q=v)), ALL, always(200))
        probe(lambda v: owner_client.get(with_query(path, sort=v)), ALL, always(200))
        # ListView: a page that is not a page number of this list is a 404, the first page when absent.
        probe(lambda v: owner_client.get(with_query(path, page=v)), ALL,
              lambda v: {200} if v in ("", "1") else {404})
        assert "Acme Sales" in owner_client.get(with_query(path, q="sales\x00")).content.decode()
        assert owner_client.get(with_query(path, sort="-name", page="1")).status_code == 200
        assert owner_client.get(with_query(path, page="last")).status_code == 200
        members = url("accounts:subaccount-members", world["agency"], sub_id=world["sub"].public_id)
        probe(lambda v: owner_client.get(with_query(members, page=v)), ALL,
              lambda v: {200} if v in ("", "1") else {404})


class TestAuditLog:
    def test_filters_and_page_never_fail(self, owner_client, world):
        path = url("accounts:audit-log", world["agency"])
        for name in ("actor", "action", "include_subaccounts"):
            probe(lambda v, name=name: owner_client.get(with_query(path, **{name: v})), ALL, always(200))
        probe(lambda v: owner_client.get(with_query(path, page=v)), ALL,
              lambda v: {200} if v in ("", "1") else {404})
        probe(lambda v: owner_client.get(with_query(path, actor=v, action=v, include_subaccounts="on", page=v)),
              GARBAGE, always(404))

    def test_valid_filters_still_filter(self, owner_client, world):
        path = url("accounts:audit-log", world["agency"])
        from accounts.models import AuditEvent

        action = AuditEvent.objects.filter(account=world["agency"], actor_email=world["owner"].email).first().action
        page = owner_client.get(with_query(path, actor=world["owner"].email.upper(), action=action,
                                           include_subaccounts="on"))
        assert page.status_code == 200 and page.context["filter_form"].is_valid()
        assert {e.action for e in page.context["object_list"]} == {action}


class TestSwitcher:
    def test_parent_that_is_not_a_reachable_account_is_404(self, owner_client, world):
        path = reverse("accounts:switcher")
        probe(lambda v: owner_client.get(with_query(path, parent=v)), GARBAGE, always(404))
        assert owner_client.get(with_query(path, parent=world["other"].public_id)).status_code == 404
        page = owner_client.get(with_query(path, parent=world["agency"].public_id))
        assert page.status_code == 200 and "Acme Corp" in page.content.decode()

    def test_search_page_current_and_next_never_fail(self, owner_client, world):
        path = reverse("accounts:switcher")
        for name in ("q", "page", "current", "next"):
            probe(lambda v, name=name: owner_client.get(with_query(path, **{name: v})), ALL, always(200))
            probe(lambda v, name=name: owner_client.get(with_query(path, **{name: v}),
                                                        headers={"HX-Request": "true"}), ALL, always(200))
        probe(lambda v: owner_client.get(with_query(path, q="acme", page=v)), ALL, always(200))
        probe(lambda v: owner_client.get(with_query(path, parent=world["agency"].public_id, page=v)), ALL,
              always(200))

    def test_current_is_a_highlight_hint_ignored_when_not_an_id(self, owner_client, world):
        path = reverse("accounts:switcher")
        page = owner_client.get(with_query(path, current="' OR 1=1 --", q="acme"))
        assert page.context["current_id"] == ""
        current = str(world["sub"].public_id)
        page = owner_client.get(with_query(path, current=current.upper(), q="acme"), headers={"HX-Request": "true"})
        assert page.context["current_id"] == current and "is-current" in page.content.decode()

    def test_search_still_finds(self, owner_client, world):
        page = owner_client.get(with_query(reverse("accounts:switcher"), q="  acme\x00 "))
        assert {e["account"].name for e in page.context["entries"]} == {"Acme Corp", "Acme Sales"}


class TestSwitchAndCreate:
    def test_switch_to_an_account_that_is_not_an_id_is_404(self, owner_client, world):
        path = reverse("accounts:switch")
        probe(lambda v: owner_client.post(path, {"account": v}), ALL, always(404))
        probe(lambda v: owner_client.post(path, {"account": str(world["sub"].public_id), "next": v}), ALL,
              always(302))
        response = owner_client.post(path, {"account": str(world["sub"].public_id),
                                            "next": url("accounts:audit-log", world["agency"])})
        assert response.status_code == 302 and response.url == url("accounts:audit-log", world["sub"])

    def test_create_from_an_account_that_is_not_an_id_is_404(self, owner_client, world):
        path = reverse("accounts:create")
        probe(lambda v: owner_client.get(with_query(path, **{"from": v})), GARBAGE, always(404))
        assert owner_client.get(path + "?from=").status_code == 200
        page = owner_client.get(with_query(path, **{"from": world["agency"].public_id}))
        assert page.status_code == 200 and page.context["origin"] == world["agency"]

    def test_account_forms_refuse_garbage_at_the_field(self, owner_client, world):
        probe(lambda v: owner_client.post(url("accounts:subaccount-limits", world["agency"],
                                              sub_id=world["sub"].public_id),
                                          {"minutes": v, "agents": v, "members": v, "concurrent_calls": v}),
              GARBAGE, lambda v: {302} if v == "0" else {200})  # 0 is a limit; the rest are form errors
        probe(lambda v: owner_client.post(url("accounts:subaccount-defaults", world["agency"]),
                                          {"limits-minutes": v, "access-agents": v}), GARBAGE, always(200))
        probe(lambda v: owner_client.post(url("accounts:subaccount-permissions", world["agency"],
                                              sub_id=world["sub"].public_id), {"agents": v}), GARBAGE, always(200))
        probe(lambda v: owner_client.post(url("accounts:subaccount-status", world["agency"],
                                              sub_id=world["sub"].public_id), {"confirm": v}), [""], always(200))


# ---- members ------------------------------------------------------------------------------------

class TestMembers:
    def test_list_search_and_page(self, owner_client, world):
        path = url("members:list", world["agency"])
        probe(lambda v: owner_client.get(with_query(path, q=v)), ALL, always(200))
        probe(lambda v: owner_client.get(with_query(path, page=v)), ALL,
              lambda v: {200} if v in ("", "1") else {404})
        page = owner_client.get(with_query(path, q=world["colleague"].email.upper() + "\x00"))
        assert [m.user for m in page.context["object_list"]] == [world["colleague"]]

    def test_role_and_transfer_forms(self, owner_client, world):
        from members.models import Membership

        membership = Membership.objects.get(account=world["agency"], user=world["colleague"])
        role_path = reverse("members:role", kwargs={"account_id": world["agency"].public_id,
                                                   "membership_id": membership.public_id})
        probe(lambda v: owner_client.post(role_path, {"role": v}), ALL, always(302))
        transfer = url("members:transfer-ownership", world["agency"])
        probe(lambda v: owner_client.post(transfer, {"member": v, "confirm": "on"}), ALL, always(200))
        assert owner_client.post(role_path, {"role": "admin"}).status_code == 302
        membership.refresh_from_db()
        assert membership.role == "admin"

    def test_invite_form_email_errors_sit_at_the_field(self, owner_client, world):
        path = url("members:invite", world["agency"])
        probe(lambda v: owner_client.post(path, {"email": v, "role": v}), ALL, always(200))
        page = owner_client.post(path, {"email": "a" * 300 + "@example.test", "role": "member"})
        assert "at most 254 characters" in " ".join(page.context["form"].errors["email"])

    def test_invitation_link_garbage_is_410(self, client):
        probe(lambda v: client.get(reverse("invitation-accept", kwargs={"token": v})),
              [v for v in GARBAGE if v.strip() and "/" not in v], always(410))


# ---- agency -------------------------------------------------------------------------------------

class TestAgency:
    def test_clients_pages(self, owner_client, world):
        path = url("agency:clients", world["agency"])
        for name in ("page", "spage", "q"):
            probe(lambda v, name=name: owner_client.get(with_query(path, **{name: v})), ALL, always(200))
        assert "Blue Harbor" in owner_client.get(with_query(path, page="1", spage="1")).content.decode()
        assert "Blue Harbor" in owner_client.get(with_query(path, q="harbor\x00")).content.decode()

    def test_client_people_remove_that_is_not_an_id_is_404(self, owner_client, world):
        path = url("agency:client-people", world["agency"], grant_id=world["grant"].public_id)
        probe(lambda v: owner_client.post(path, {"remove": v}), GARBAGE, always(404))
        probe(lambda v: owner_client.post(path, {"membership": v}), ALL, always(200))
        probe(lambda v: owner_client.post(path, {"remove": v}), [""], always(200))

    def test_client_people_valid_add_and_remove_still_work(self, owner_client, world):
        from members.models import Membership

        path = url("agency:client-people", world["agency"], grant_id=world["grant"].public_id)
        mine = Membership.objects.get(account=world["agency"], user=world["colleague"])
        assert owner_client.post(path, {"membership": mine.pk}).status_code == 302
        added = Membership.objects.get(account=world["client"], user=world["colleague"], is_agency=True)
        assert owner_client.post(path, {"remove": str(added.public_id)}).status_code == 302
        assert not Membership.objects.filter(pk=added.pk).exists()

    def test_request_access_form(self, owner_client, world):
        path = url("agency:request", world["agency"])
        probe(lambda v: owner_client.post(path, {"client": v, "expires_at": v, "note": v[:300]}), ALL,
              always(200))

    def test_client_side_forms(self, client, world):
        client.force_login(world["client_owner"])
        grant_kwargs = {"grant_id": world["grant"].public_id}
        probe(lambda v: client.post(url("agency:decide", world["client"], **grant_kwargs),
                                    {"decision": v, "expires_at": v}), ALL, always(302))
        probe(lambda v: client.post(url("agency:grant-edit", world["client"], **grant_kwargs),
                                    {"expires_at": v, "cap-agents": v}), GARBAGE, always(200))
        probe(lambda v: client.post(url("agency:client-settings", world["client"]), {"agents": v}), GARBAGE,
              always(200))
        tomorrow = (datetime.date.today() + datetime.timedelta(days=2)).isoformat()
        response = client.post(url("agency:grant-edit", world["client"], **grant_kwargs),
                               {"expires_at": tomorrow, **{f"cap-{c}": "full" for c in (
                                   "agents", "conversations", "contacts", "settings", "members", "subaccounts",
                                   "trust_center", "developer_tools", "billing", "usage")}})
        assert response.status_code in (200, 302)

    def test_baseline_form(self, owner_client, world):
        path = url("agency:baseline", world["agency"])
        probe(lambda v: owner_client.post(path, {"agents": v, "scope": v}), ALL, always(200))


# ---- billing ------------------------------------------------------------------------------------

class TestBilling:
    def test_invoice_format_and_lists(self, owner_client, world):
        last = (period_start() - datetime.timedelta(days=1)).replace(day=1)
        invoice, _ = invoice_close(root=world["agency"], period=last)
        path = url("billing:invoice-detail", world["agency"], invoice_id=invoice.public_id)
        probe(lambda v: owner_client.get(with_query(path, format=v)), ALL, always(200))
        csv = owner_client.get(with_query(path, format="csv"))
        assert csv["Content-Type"].startswith("text/csv")
        invoices = url("billing:invoice-list", world["agency"])
        probe(lambda v: owner_client.get(with_query(invoices, page=v)), ALL,
              lambda v: {200} if v in ("", "1") else {404})
        for name in ("billing:overview", "billing:usage"):
            probe(lambda v, name=name: owner_client.get(with_query(url(name, world["agency"]), period=v)), ALL,
                  always(200))

    def test_checkout_session_id_that_is_not_one_never_reaches_stripe(self, owner_client, world, settings,
                                                                       monkeypatch):
        from billing import stripe_sync

        settings.STRIPE_SECRET_KEY = "sk_test_not_used"
        calls = []
        monkeypatch.setattr(stripe_sync, "payment_method_from_checkout", lambda root, sid: calls.append(sid))
        path = url("billing:payment-method", world["agency"])
        probe(lambda v: owner_client.get(with_query(path, session_id=v)), ALL, always(302))
        probe(lambda v: owner_client.get(with_query(path, cancelled=v)), ALL, always(302))
        assert calls == []
        response = owner_client.get(with_query(path, session_id="cs_test_../../v1/customers"), follow=True)
        assert "link back from Stripe is not valid" in response.content.decode() and calls == []
        response = owner_client.get(with_query(path, session_id="cs_test_a1B2c3"), follow=True)
        assert calls == ["cs_test_a1B2c3"] and "Card saved" in response.content.decode()


# ---- workspace ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["agent", "contact", "conversation"])
def test_workspace_list_filters_and_page(owner_client, world, kind):
    path = url(f"workspace:{kind}-list", world["agency"])
    for name in ("q", "status"):
        probe(lambda v, name=name: owner_client.get(with_query(path, **{name: v})), ALL, always(200))
    probe(lambda v: owner_client.get(with_query(path, page=v)), ALL, lambda v: {200} if v in ("", "1") else {404})


def test_workspace_valid_filters_still_filter(owner_client, world):
    Conversation.objects.create(account=world["agency"], agent=world["agent"], contact=world["contact"],
                                started_at=datetime.datetime(2026, 1, 5, 9, tzinfo=datetime.UTC),
                                duration_seconds=61)
    page = owner_client.get(with_query(url("workspace:conversation-list", world["agency"]), q="recept\x00",
                                       status=Conversation.Status.COMPLETED))
    assert page.status_code == 200
    assert owner_client.get(with_query(url("workspace:agent-list", world["agency"]), q="Recep")).context[
        "object_list"][0] == world["agent"]


def test_workspace_conversation_form_refuses_garbage_ids_and_dates(owner_client, world):
    path = url("workspace:conversation-create", world["agency"])
    probe(lambda v: owner_client.post(path, {"agent": v, "contact": v, "direction": v, "started_at": v,
                                             "duration_seconds": v}), ALL, always(200))
    other_agent = Agent.objects.create(account=world["other"], name="Theirs")
    page = owner_client.post(path, {"agent": other_agent.pk, "contact": world["contact"].pk, "direction": "inbound",
                                    "started_at": "2026-13-01T10:00", "duration_seconds": "60"})
    assert page.status_code == 200 and {"agent", "started_at"} <= set(page.context["form"].errors)


def test_unknown_uuid_in_a_path_is_still_404(owner_client, world):
    assert owner_client.get(url("workspace:agent-detail", world["agency"], pk=uuid.uuid4())).status_code == 404
    assert owner_client.get(f"/a/{UNKNOWN_UUID}/").status_code == 404
    assert owner_client.get("/a/not-a-uuid/").status_code == 404


def test_signup_form_garbage_is_a_form_error(client, db):
    path = reverse("signup")
    probe(lambda v: client.post(path, {"name": v, "email": v, "password": v, "account_name": v}), ALL,
          always(200))
