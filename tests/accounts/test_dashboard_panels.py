"""The dashboard (issue 16 items 2 and 3): first steps, minutes against the pool and plan, blocked calls,
subaccounts near a limit, invitations, agency requests and expiring grants, recent activity; fixed queries."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account
from agency import services as agency_services
from agency.models import AgencyGrant
from members.invitations import invitation_create
from members.roles import RoleId
from tests.factories import AccountFactory, UserFactory, account_tree, plan, usage
from workspace.models import Agent, Contact, Conversation

pytestmark = pytest.mark.django_db


def dashboard(client, account):
    response = client.get(reverse("accounts:dashboard", kwargs={"account_id": account.public_id}))
    assert response.status_code == 200
    return response


def test_first_steps_tick_off_by_doing_them_and_can_be_hidden(client, make_member):
    root = AccountFactory(name="New Co", plan_code="free")
    owner = make_member(root, RoleId.OWNER)
    client.force_login(owner)
    steps = {s.key: s.done for s in dashboard(client, root).context["panels"].checklist}
    assert steps == {"plan": False, "customers": False, "team": False, "agent": False}
    Agent.objects.create(account=root, name="Front desk")
    invitation_create(account=root, email="mate@new.example", role=RoleId.MEMBER, by=owner)
    from billing.plans import plan_change

    plan_change(account=root, plan=plan("agency"), by=owner)
    steps = {s.key: s.done for s in dashboard(client, root).context["panels"].checklist}
    assert steps == {"plan": True, "customers": False, "team": True, "agent": True}
    page = dashboard(client, root).content.decode()
    assert "First steps" in page and "Create a first subaccount" in page
    response = client.post(reverse("accounts:onboarding-dismiss", kwargs={"account_id": root.public_id}),
                           follow=True)
    assert 'id="first-steps"' not in response.content.decode()
    # A member sees no checklist and may not hide it.
    member = make_member(root, RoleId.MEMBER)
    client.force_login(member)
    assert not dashboard(client, root).context["panels"].checklist
    Account.objects.filter(pk=root.pk).update(onboarding_dismissed_at=None)
    assert client.post(reverse("accounts:onboarding-dismiss", kwargs={"account_id": root.public_id})
                       ).status_code == 403
    assert Account.objects.get(pk=root.pk).onboarding_dismissed_at is None


def test_minutes_against_pool_and_plan_blocked_calls_and_subaccounts_near_their_limit(client, make_member):
    root = AccountFactory(name="Agency", plan_code="agency")
    owner = make_member(root, RoleId.OWNER)
    near = AccountFactory(parent=root, name="Nearly Out", limit_minutes=100)
    AccountFactory(parent=root, name="Plenty", limit_minutes=1000)
    usage(near, 85)
    agent = Agent.objects.create(account=near, name="A")
    contact = Contact.objects.create(account=near, name="C", email="c@example.test")
    now = timezone.now()
    Conversation.objects.create(account=near, agent=agent, contact=contact, started_at=now, duration_seconds=60,
                                ended_at=now, status=Conversation.Status.BLOCKED, blocked_reason="pool")
    client.force_login(owner)
    panels = dashboard(client, root).context["panels"]
    assert panels.minutes.used == 85 and panels.minutes.limit is None
    assert (panels.plan_meter.used, panels.plan_meter.limit) == (85, 5000)
    assert panels.blocked == 1
    assert [(s.name, s.used) for s in panels.near_limit] == [("Nearly Out", 85)]
    # Inside the subaccount: its own pool, amber past 80 %.
    sub_panels = dashboard(client, near).context["panels"]
    assert (sub_panels.minutes.used, sub_panels.minutes.limit, sub_panels.minutes.state) == (85, 100, "near")
    assert "85 of 100 in the minutes pool" in dashboard(client, near).content.decode()


def test_blocked_calls_are_this_period_s_of_the_subtree_and_zero_without_any(client, make_member):
    root = AccountFactory(name="Quiet")
    owner = make_member(root, RoleId.OWNER)
    client.force_login(owner)
    response = dashboard(client, root)
    assert response.context["panels"].blocked == 0 and 'id="blocked"' in response.content.decode()
    child = AccountFactory(parent=root, name="Team")
    agent = Agent.objects.create(account=child, name="A")
    contact = Contact.objects.create(account=child, name="C", email="c@example.test")
    this_month = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for started in (this_month + datetime.timedelta(minutes=1), this_month - datetime.timedelta(minutes=1)):
        Conversation.objects.create(account=child, agent=agent, contact=contact, started_at=started,
                                    duration_seconds=60, status=Conversation.Status.BLOCKED, blocked_reason="pool")
    assert dashboard(client, root).context["panels"].blocked == 1  # last month's is not this month's


def test_agency_requests_and_expiring_grants_for_governors_only(client, make_member):
    agency = AccountFactory(name="Agency X")
    ann = make_member(agency, RoleId.ADMIN)
    other_agency = AccountFactory(name="Agency Y")
    yan = make_member(other_agency, RoleId.ADMIN)
    client_account = AccountFactory(name="Client", plan_code="pro")
    olga = make_member(client_account, RoleId.OWNER)
    grant = agency_services.access_request(agency=agency, client=client_account, by=ann)
    agency_services.access_decide(grant=grant, approve=True, by=olga,
                                  expires_at=timezone.now() + datetime.timedelta(days=5))
    agency_services.access_request(agency=other_agency, client=client_account, by=yan)
    client.force_login(olga)
    panels = dashboard(client, client_account).context["panels"]
    assert [g.agency.name for g in panels.agency_requests] == ["Agency Y"]
    assert [g.agency.name for g in panels.expiring_grants] == ["Agency X"]
    client.force_login(make_member(client_account, RoleId.MEMBER))
    panels = dashboard(client, client_account).context["panels"]
    assert not panels.agency_requests and not panels.expiring_grants
    assert AgencyGrant.objects.count() == 2


def test_recent_activity_hides_conversation_rows_and_needs_the_audit_trail(client, make_member):
    root = AccountFactory(name="Solo")
    owner = make_member(root, RoleId.OWNER)
    from accounts.audit import audit

    audit(account=root, actor=owner, action="conversation.recorded", summary="A call")
    audit(account=root, actor=owner, action="account.renamed", summary="Renamed it")
    client.force_login(owner)
    assert [e.summary for e in dashboard(client, root).context["panels"].recent][:1] == ["Renamed it"]
    client.force_login(make_member(root, RoleId.VIEWER))
    assert dashboard(client, root).context["panels"].recent == []


def test_another_tenant_is_404(client, make_member):
    root = AccountFactory(name="Mine")
    client.force_login(make_member(root, RoleId.OWNER))
    other = AccountFactory(name="Theirs")
    assert client.post(reverse("accounts:onboarding-dismiss", kwargs={"account_id": other.public_id})
                       ).status_code == 404
    assert Account.objects.get(pk=other.pk).onboarding_dismissed_at is None


def test_the_dashboard_takes_the_same_queries_at_5_and_500_subaccounts(client, make_member):
    def queries(breadth):
        root = account_tree(breadth=breadth, depth=2)
        owner = make_member(root, RoleId.OWNER)
        for child in Account.objects.filter(parent=root)[:3]:
            Account.objects.filter(pk=child.pk).update(limit_minutes=10)
            usage(child, 9)
        client.force_login(owner)
        with CaptureQueriesContext(connection) as ctx:
            dashboard(client, root)
        return len(ctx.captured_queries)

    small, big = queries(5), queries(500)
    assert small == big == 8, (small, big)  # tests/accounts/test_views.py DASHBOARD_BUDGET


def test_a_new_sign_up_reaches_an_agency_with_a_first_subaccount(client):
    """Done when (issue 16): sign up, upgrade from the plans page, create a subaccount: no dead end."""
    response = client.post(reverse("signup"), {"name": "Nia New", "email": "nia@new.example",
                                               "password": "a-Long-pass-2026!",
                                               "account_name": "Nia's Agency"}, follow=True)
    assert response.status_code == 200
    root = Account.objects.get(name="Nia's Agency")
    user = UserFactory._meta.model.objects.get(email="nia@new.example")
    client.force_login(user)
    steps = dashboard(client, root).context["panels"].checklist
    assert steps[0].url == reverse("billing:plans", kwargs={"account_id": root.public_id})
    client.post(reverse("billing:plan-change", kwargs={"account_id": root.public_id}), {"plan": "agency"})
    response = client.post(reverse("accounts:subaccount-create", kwargs={"account_id": root.public_id}),
                           {"name": "First Customer"}, follow=True)
    assert Account.objects.filter(parent=root, name="First Customer").exists(), response.content.decode()[:500]


def test_minutes_that_left_count_only_against_a_pool(client, make_member):
    # the pool meter counts a departed subaccount's minutes of the period; without a pool nothing does: the
    # figure and the plan meter are the tree's as it is now
    from accounts.services import subtree_move

    root = AccountFactory(name="Agency", plan_code="agency")
    client.force_login(make_member(root, RoleId.OWNER))
    pooled = AccountFactory(parent=root, name="Pooled", limit_minutes=100)
    for parent in (root, pooled):
        leaver = AccountFactory(parent=parent, name=f"Leaver of {parent.name}")
        usage(leaver, 10)
        subtree_move(leaver, None)  # as a billing transfer does
    panels = dashboard(client, root).context["panels"]
    assert (panels.minutes_used, panels.departed, panels.minutes.used, panels.plan_meter.used) == (0, 0, 0, 0)
    panels = dashboard(client, pooled).context["panels"]
    assert (panels.minutes_used, panels.departed, panels.minutes.used, panels.minutes.limit) == (0, 10, 10, 100)
