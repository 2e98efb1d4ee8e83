"""Consented support access for platform staff (issue 13 part 6): request, the Owner's decision, scope (that
account only; subaccounts only if chosen; never parent or siblings), read-only, banners, audit, expiry and
revocation on the next request."""

import datetime

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account, AuditEvent
from accounts.services import subaccount_set_access
from members import invitations as inv
from members.models import Invitation
from members.roles import RoleId
from members.services import membership_add
from security import support as svc
from security.models import SecurityPolicy, SupportAccess
from security.services import policy_update
from tests.factories import AccountFactory, UserFactory

pytestmark = pytest.mark.django_db

READ, FULL = SupportAccess.Level.READ, SupportAccess.Level.FULL


def dashboard(account):
    return reverse("accounts:dashboard", kwargs={"account_id": account.public_id})


def support_url(account):
    return reverse("security:support", kwargs={"account_id": account.public_id})


def settings_url(account):
    return reverse("accounts:settings", kwargs={"account_id": account.public_id})


@pytest.fixture
def world(make_member):
    root = AccountFactory(name="Root Co")
    acme = AccountFactory(parent=root, name="Acme")
    sibling = AccountFactory(parent=root, name="Sibling")
    below = AccountFactory(parent=acme, name="Acme Branch")
    other = AccountFactory(name="Other Tenant")
    people = {
        "owner": make_member(acme, RoleId.OWNER), "admin": make_member(acme, RoleId.ADMIN),
        "member": make_member(acme, RoleId.MEMBER), "root_owner": make_member(root, RoleId.OWNER),
        "other_owner": make_member(other, RoleId.OWNER),
    }
    staff = UserFactory(email="agent@platform.test", is_staff=True)
    staff.save()
    return {"root": root, "acme": acme, "sibling": sibling, "below": below, "other": other, "people": people,
            "staff": staff, "staff2": UserFactory(email="colleague@platform.test", is_staff=True)}


def fresh(user):
    from members.models import User

    return User.objects.get(pk=user.pk)


def ask(w, level=READ, hours=4, account=None):
    return svc.support_request(account=account or w["acme"], by=fresh(w["staff"]), level=level,
                               reason="Customer reports calls dropping on agent Sales", hours=hours)


def approve(w, request, include_subaccounts=False):
    return svc.support_decide(support=request, approve=True, by=fresh(w["people"]["owner"]),
                              include_subaccounts=include_subaccounts)


def test_request_emails_the_owner_and_reaches_nothing_until_approved(client, world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        request = ask(world)
    assert [m.to for m in mail.outbox] == [[world["people"]["owner"].email]]
    assert "calls dropping" in mail.outbox[0].body
    assert AuditEvent.objects.filter(account=world["acme"], action="support.requested").exists()
    client.force_login(world["staff"])
    assert client.get(dashboard(world["acme"])).status_code == 404
    svc.support_decide(support=request, approve=False, by=fresh(world["people"]["owner"]))
    assert client.get(dashboard(world["acme"])).status_code == 404  # declined


def test_approved_read_only_access_reaches_that_account_only(client, world):
    approve(world, ask(world))
    client.force_login(world["staff"])
    page = client.get(dashboard(world["acme"]))
    assert page.status_code == 200
    assert "You are in this account as platform support (read-only)" in page.content.decode()
    for name in ("root", "sibling", "below", "other"):
        assert client.get(dashboard(world[name])).status_code == 404, name
    assert "Root Co" not in page.content.decode()  # nothing upward named (R6)
    # another staff member has nothing
    client.force_login(world["staff2"])
    assert client.get(dashboard(world["acme"])).status_code == 404


def test_subaccounts_only_if_the_owner_chose_so(client, world):
    approve(world, ask(world), include_subaccounts=True)
    client.force_login(world["staff"])
    assert client.get(dashboard(world["below"])).status_code == 200
    assert client.get(dashboard(world["sibling"])).status_code == 404
    assert client.get(dashboard(world["root"])).status_code == 404


def test_read_only_changes_nothing_and_every_request_is_audited(client, world):
    approve(world, ask(world))
    client.force_login(world["staff"])
    assert client.get(settings_url(world["acme"])).status_code == 200
    assert client.post(settings_url(world["acme"]), {"name": "Renamed"}).status_code == 403
    assert Account.objects.get(pk=world["acme"].pk).name == "Acme"
    rows = AuditEvent.objects.filter(account=world["acme"], action="support.request", actor=world["staff"])
    assert {r.summary for r in rows} == {f"GET {settings_url(world['acme'])}",
                                         f"POST {settings_url(world['acme'])} (refused: read-only)"}
    assert all(r.data["via_support"] == "Read-only" for r in rows)


def test_full_access_acts_and_is_audited_as_support_but_never_grants_or_governs(client, world):
    approve(world, ask(world, level=FULL))
    client.force_login(world["staff"])
    assert client.post(settings_url(world["acme"]), {"name": "Acme Renamed"}).status_code == 302
    renamed = AuditEvent.objects.get(account=world["acme"], action="account.renamed")
    assert renamed.data["via_support"] == "Full" and renamed.actor == world["staff"]
    staff = fresh(world["staff"])
    with pytest.raises(PermissionDenied):
        inv.invitation_create(account=world["acme"], email="new@x.test", role=RoleId.ADMIN, by=staff)
    # Nor a Member or Viewer (a hostile review: staff invited their own address as Member, accepted it while
    # support lasted, and stayed a Member after it ended, listed nowhere for removal).
    for role in (RoleId.MEMBER, RoleId.VIEWER):
        with pytest.raises(PermissionDenied, match="Platform support cannot add people"):
            inv.invitation_create(account=world["acme"], email=staff.email, role=role, by=fresh(world["staff"]))
        with pytest.raises(PermissionDenied, match="Platform support cannot add people"):
            membership_add(account=world["acme"], user=UserFactory(), role=role, by=fresh(world["staff"]))
    assert not Invitation.objects.filter(account=world["acme"]).exists()
    with pytest.raises(PermissionDenied):
        policy_update(account=world["acme"], by=fresh(world["staff"]), require_mfa=SecurityPolicy.MfaScope.NOBODY)
    with pytest.raises(PermissionDenied):  # nor approve their own request
        svc.support_decide(support=ask(world, account=world["below"]), approve=True, by=fresh(world["staff"]))


def test_the_accounts_people_see_a_banner(client, world):
    approve(world, ask(world), include_subaccounts=True)
    client.force_login(world["people"]["member"])
    page = client.get(dashboard(world["acme"])).content.decode()
    assert "Platform support has read-only access to this account" in page
    client.force_login(world["people"]["root_owner"])
    assert "Platform support has" in client.get(dashboard(world["below"])).content.decode()
    assert "Platform support has" not in client.get(dashboard(world["sibling"])).content.decode()
    assert "Platform support has" not in client.get(dashboard(world["root"])).content.decode()


def test_it_ends_at_expiry_on_the_next_request(client, world):
    # Expiry is compared with the database's clock (Now()), which time-machine cannot move: the row is moved.
    request = approve(world, ask(world, hours=2))
    assert request.expires_at - request.decided_at == datetime.timedelta(hours=2)
    client.force_login(world["staff"])
    SupportAccess.objects.filter(pk=request.pk).update(expires_at=timezone.now() + datetime.timedelta(minutes=1))
    assert client.get(dashboard(world["acme"])).status_code == 200
    SupportAccess.objects.filter(pk=request.pk).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert client.get(dashboard(world["acme"])).status_code == 404


def test_revocation_ends_it_on_the_next_request(client, world):
    request = approve(world, ask(world))
    client.force_login(world["staff"])
    assert client.get(dashboard(world["acme"])).status_code == 200
    svc.support_end(support=request, by=fresh(world["people"]["owner"]))
    assert client.get(dashboard(world["acme"])).status_code == 404
    assert AuditEvent.objects.filter(account=world["acme"], action="support.revoked").exists()


# ---- the services refuse ------------------------------------------------------------------------------------

def test_only_staff_ask(world):
    with pytest.raises(PermissionDenied):
        svc.support_request(account=world["acme"], by=fresh(world["people"]["owner"]), level=READ,
                            reason="I would like to look around", hours=4)
    assert not SupportAccess.objects.exists()


@pytest.mark.parametrize("hours,reason", [(73, "A long enough reason"), (0, "A long enough reason"), (4, "short")])
def test_a_request_has_a_reason_and_at_most_72_hours(world, hours, reason):
    with pytest.raises(ValidationError):
        svc.support_request(account=world["acme"], by=fresh(world["staff"]), level=READ, reason=reason, hours=hours)
    assert not SupportAccess.objects.exists()


@pytest.mark.parametrize("who", ["admin", "member", "other_owner", "staff2"])
def test_only_an_owner_decides(world, who):
    request = ask(world)
    actor = world["staff2"] if who == "staff2" else world["people"][who]
    with pytest.raises(PermissionDenied):
        svc.support_decide(support=request, approve=True, by=fresh(actor))
    assert SupportAccess.objects.get(pk=request.pk).status == SupportAccess.Status.REQUESTED


def test_an_owner_above_decides_and_a_decision_is_final(world):
    request = ask(world)
    svc.support_decide(support=request, approve=True, by=fresh(world["people"]["root_owner"]))
    with pytest.raises(ValidationError):
        svc.support_decide(support=request, approve=False, by=fresh(world["people"]["owner"]))


@pytest.mark.parametrize("who", ["admin", "member", "other_owner", "staff2"])
def test_only_the_owner_or_the_staff_member_ends_it(world, who):
    request = approve(world, ask(world))
    actor = world["staff2"] if who == "staff2" else world["people"][who]
    with pytest.raises(PermissionDenied):
        svc.support_end(support=request, by=fresh(actor))
    svc.support_end(support=request, by=fresh(world["staff"]))
    assert SupportAccess.objects.get(pk=request.pk).status == SupportAccess.Status.REVOKED


def test_caps_above_apply_to_support_as_to_the_accounts_own_people(client, world):
    subaccount_set_access(account=world["acme"], matrix={"contacts": "none"}, by=None)
    approve(world, ask(world))
    client.force_login(world["staff"])
    contacts = reverse("workspace:contact-list", kwargs={"account_id": world["acme"].public_id})
    assert client.get(contacts).status_code == 403


# ---- the pages -----------------------------------------------------------------------------------------------

def test_owner_approves_on_the_page(client, world):
    request = ask(world)
    client.force_login(world["people"]["owner"])
    page = client.get(support_url(world["acme"])).content.decode()
    assert "calls dropping" in page and "Approve" in page
    response = client.post(support_url(world["acme"]), {"support": str(request.public_id), "action": "approve",
                                                         "include_subaccounts": "on"})
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.is_active and request.include_subaccounts


def test_an_admin_reads_the_page_but_cannot_decide(client, world):
    request = ask(world)
    client.force_login(world["people"]["admin"])
    assert "Approve" not in client.get(support_url(world["acme"])).content.decode()
    client.post(support_url(world["acme"]), {"support": str(request.public_id), "action": "approve"})
    assert SupportAccess.objects.get(pk=request.pk).status == SupportAccess.Status.REQUESTED


def test_page_isolation(client, world):
    other_request = ask(world, account=world["other"])
    client.force_login(world["people"]["owner"])
    assert client.get(support_url(world["other"])).status_code == 404
    # another account's request through one's own page
    assert client.post(support_url(world["acme"]), {"support": str(other_request.public_id),
                                                    "action": "approve"}).status_code == 404
    assert client.post(support_url(world["acme"]), {"support": "garbage", "action": "approve"}).status_code == 404
    assert SupportAccess.objects.get(pk=other_request.pk).status == SupportAccess.Status.REQUESTED


def test_page_refuses_a_role_without_settings_access(client, world, make_member):
    subaccount_set_access(account=world["below"], matrix={"settings": "none"}, by=None)
    person = make_member(world["below"], RoleId.ADMIN)
    client.force_login(person)
    assert client.get(support_url(world["below"])).status_code == 403


def test_page_query_budget_does_not_grow_with_requests(client, world, count_queries):
    client.force_login(world["people"]["owner"])
    client.get(dashboard(world["acme"]))
    counts = []
    for total in (2, 15):
        while SupportAccess.objects.filter(account=world["acme"]).count() < total:
            staff = UserFactory(is_staff=True)
            svc.support_request(account=world["acme"], by=staff, level=READ, reason="Checking a reported bug",
                                hours=4)
        counts.append(count_queries(lambda: client.get(support_url(world["acme"]))))
    assert counts[0] == counts[1] == 4, counts


def test_staff_page(client, world, count_queries):
    url = reverse("security-staff-support")
    client.force_login(world["people"]["owner"])
    assert client.get(url).status_code == 404  # not for tenants
    client.force_login(world["staff"])
    response = client.post(url, {"account": str(world["acme"].public_id), "level": READ, "hours": "8",
                                 "reason": "Customer asked us to check their agent"})
    assert response.status_code == 302
    assert SupportAccess.objects.get(requested_by=world["staff"]).hours == 8
    response = client.post(url, {"account": "not-an-id", "level": READ, "hours": "100", "reason": "x"})
    assert response.status_code == 200 and set(response.context["form"].errors) == {"account", "hours", "reason"}
    counts = []
    for total in (1, 10):
        while SupportAccess.objects.filter(requested_by=world["staff"]).count() < total:
            SupportAccess.objects.create(account=AccountFactory(), requested_by=world["staff"], level=READ,
                                         reason="Old request", hours=1)
        counts.append(count_queries(lambda: client.get(url)))
    assert counts[0] == counts[1], counts
