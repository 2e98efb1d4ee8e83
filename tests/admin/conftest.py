"""Fixtures for the platform-staff admin: staff of each kind, and a platform of any size built in bulk."""

import datetime

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.models import Account, AuditEvent
from agency.models import AgencyBaseline, AgencyGrant, AgencySettings
from billing.models import BillingTransfer, Invoice, InvoiceLine, Subscription, UsageRecord, period_start
from billing.rollups import rollups_rebuild
from members.models import Invitation, Membership, User
from members.roles import RoleId
from members.staff import BILLING, SUPPORT, sync_staff_groups
from tests.factories import AccountFactory, UserFactory, plan
from workspace.models import Agent, Contact, Conversation


@pytest.fixture
def superuser(db):
    return UserFactory(is_staff=True, is_superuser=True, email="root@platform.test")


@pytest.fixture
def staff_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def staff_user(db):
    """staff_user("Support") / staff_user("Billing"): a staff member in that group (kept in sync as after
    a migrate)."""

    def make(group_name):
        sync_staff_groups()
        user = UserFactory(is_staff=True)
        user.groups.add(Group.objects.get(name=group_name))
        return user

    return make


@pytest.fixture
def support_client(client, staff_user):
    client.force_login(staff_user(SUPPORT))
    return client


@pytest.fixture
def billing_client(client, staff_user):
    client.force_login(staff_user(BILLING))
    return client


class Platform:
    """Adds ``n`` accounts in bulk (in groups of ten: a root, four children, five grandchildren under the first
    child) with, per account, an Owner, a pending invitation, an agent, a contact, a conversation, a usage
    record and an audit row; per root a subscription, an invoice with a line, agency settings, a baseline and
    an active grant to one agency; per child a pending billing transfer. Call it again to grow the same world."""

    def __init__(self):
        self.agency = AccountFactory(name="The Agency")
        self.plan = plan("agency")
        self.added = 0

    def add(self, n: int) -> None:
        assert n % 10 == 0
        last_root = Account.objects.filter(depth=1).order_by("-path").first()
        first_step = Account._str2int(last_root.path) + 1 if last_root else 1
        stamp = self.added
        roots, children, grandchildren = [], [], []
        for g in range(n // 10):
            name = stamp + g * 10
            root = Account(path=Account._get_path(None, 1, first_step + g), depth=1, numchild=4,
                           name=f"Root {name:05d}")
            roots.append(root)
            for c in range(1, 5):
                child = Account(path=Account._get_path(root.path, 2, c), depth=2, numchild=5 if c == 1 else 0,
                                parent=root, name=f"Child {name + c:05d}")
                children.append(child)
            for gc in range(1, 6):
                grandchildren.append(Account(path=Account._get_path(children[-4].path, 3, gc), depth=3,
                                             parent=children[-4], name=f"Grandchild {name + 4 + gc:05d}"))
        for level in (roots, children, grandchildren):  # parents first: the rows below need their ids
            for a in level:
                a.name_key = a.name.casefold()
                a.parent_id = a.parent.pk if a.parent else None
            Account.objects.bulk_create(level)
        created = sorted([*roots, *children, *grandchildren], key=lambda a: a.path)
        by_path = {a.path: a for a in created}

        users = User.objects.bulk_create([User(email=f"owner{stamp + i}@customer.test", name=f"Owner {stamp + i}",
                                               password="!") for i in range(n)])
        Membership.objects.bulk_create([Membership(user=u, account=a, role=RoleId.OWNER)
                                        for u, a in zip(users, created, strict=True)])
        Invitation.objects.bulk_create([Invitation(account=a, email=f"invitee{stamp + i}@customer.test",
                                                   role=RoleId.MEMBER, sent_by_platform=True)
                                        for i, a in enumerate(created)])
        agents = Agent.objects.bulk_create([Agent(account=a, name=f"Agent {i}") for i, a in enumerate(created)])
        contacts = Contact.objects.bulk_create([Contact(account=a, name=f"Contact {i}", email=f"c{stamp + i}@x.test")
                                                for i, a in enumerate(created)])
        start = timezone.now() - datetime.timedelta(hours=1)
        conversations = Conversation.objects.bulk_create([
            Conversation(account=a, agent=ag, contact=c, started_at=start, duration_seconds=90,
                         ended_at=start + datetime.timedelta(seconds=90))
            for a, ag, c in zip(created, agents, contacts, strict=True)])
        root_of = {a.pk: by_path.get(a.path[:Account.steplen]) for a in created}
        UsageRecord.objects.bulk_create([
            UsageRecord(account=a, billing_root=root_of[a.pk], period=period_start(), occurred_on=period_start(),
                        minutes=2, seconds=90, conversation=conv)
            for a, conv in zip(created, conversations, strict=True)])
        rollups_rebuild()
        AuditEvent.objects.bulk_create([AuditEvent(account=a, action="account.created", summary="Created")
                                        for a in created])
        Subscription.objects.bulk_create([Subscription(account=r, plan=self.plan) for r in roots])
        last_month = period_start(period_start() - datetime.timedelta(days=1))
        invoices = Invoice.objects.bulk_create([
            Invoice(account=r, period=last_month, plan_name="Agency", plan_price_cents=29900, included_minutes=5000,
                    overage_cents_per_minute=9, total_minutes=0, overage_minutes=0, total_cents=29900)
            for r in roots])
        InvoiceLine.objects.bulk_create([InvoiceLine(invoice=i, kind="plan", account=i.account, description="Plan",
                                                     amount_cents=29900) for i in invoices])
        AgencySettings.objects.bulk_create([AgencySettings(account=r, enabled=True) for r in roots])
        AgencyBaseline.objects.bulk_create([AgencyBaseline(account=r) for r in roots])
        AgencyGrant.objects.bulk_create([AgencyGrant(client=r, agency=self.agency, status="active") for r in roots])
        BillingTransfer.objects.bulk_create([
            BillingTransfer(account=c, from_root=root_of[c.pk], from_parent=root_of[c.pk], plan=self.plan,
                            billing_owner_email=f"payer{c.pk}@customer.test", nonce="x") for c in children])
        from security.models import SecurityPolicy, SupportAccess

        SecurityPolicy.objects.bulk_create([SecurityPolicy(account=r, require_mfa="admins") for r in roots])
        SupportAccess.objects.bulk_create([
            SupportAccess(account=r, requested_by=u, level="read", reason="Calls drop after the greeting", hours=24)
            for r, u in zip(roots, users, strict=False)])
        self.added += n


@pytest.fixture
def platform(db):
    return Platform()
