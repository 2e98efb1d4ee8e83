"""factory-boy factories. ``account_tree`` builds a tree of any depth and breadth in one call."""

import datetime

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from accounts.models import Account
from billing.models import Plan, Subscription
from members.models import Membership, User
from members.roles import RoleId
from members.services import membership_add

PASSWORD = "correct-horse-battery"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.test")
    name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @classmethod
    def _after_postgeneration(cls, instance, create, results=None):
        if create:
            instance.save(update_fields=["password"])


PLANS = {
    "free": {"name": "Free", "included_minutes": 60, "overage_cents_per_minute": 20, "allows_subaccounts": False,
             "sort_order": 0},
    "pro": {"name": "Pro", "monthly_price_cents": 9900, "included_minutes": 1000, "overage_cents_per_minute": 12,
            "sort_order": 1},
    "agency": {"name": "Agency", "monthly_price_cents": 29900, "included_minutes": 5000,
               "overage_cents_per_minute": 9, "allows_subaccounts": True, "sort_order": 2},
}


def plan(code: str) -> Plan:
    """The seeded plan (re-created when a transactional test flushed the table)."""
    found, _ = Plan.objects.get_or_create(code=code, defaults={**PLANS[code], "is_default": code == "free"})
    return found


class AccountFactory(DjangoModelFactory):
    """A root account (on the Agency plan unless ``plan`` says otherwise), or a child when
    ``parent`` is given (placed by treebeard, on parent billing)."""

    class Meta:
        model = Account

    name = factory.Sequence(lambda n: f"Account {n:04d}")
    parent = None

    @classmethod
    def _create(cls, model_class, *args, parent=None, plan_code="agency", **kwargs):
        instance = model_class(parent=parent, **kwargs)
        if parent is None:
            account = Account.objects.add_root(instance=instance)
            Subscription.objects.create(account=account, plan=plan(plan_code))
            return account
        return Account.objects.add_child(parent, instance=instance)


class MembershipFactory(DjangoModelFactory):
    """Goes through the service so the person's permission rows are written too."""

    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    account = factory.SubFactory(AccountFactory)
    role = RoleId.MEMBER

    @classmethod
    def _create(cls, model_class, *args, user, account, role, **kwargs):
        return membership_add(account=account, user=user, role=role, by=None)


def account_chain(depth: int, *, root: Account | None = None, prefix: str = "Level") -> list[Account]:
    """A root and ``depth - 1`` nested subaccounts below it: [level 1, level 2, ...]."""
    chain = [root or AccountFactory(name=f"{prefix} 1")]
    for level in range(2, depth + 1):
        chain.append(AccountFactory(parent=chain[-1], name=f"{prefix} {level}"))
    return chain


def approved_grant(agency: str = "Agency X", client: str = "Client Co") -> dict:
    """An agency with an Admin, a client on the pro plan with an Owner, and the agency's access to the client
    requested by the Admin and approved by the Owner, through the services (so its permission rows are real):
    ``{"agency", "agency_admin", "client", "owner", "grant"}``, the grant read back approved."""
    from agency import services as agency_services
    from agency.models import AgencyGrant

    agency_account = AccountFactory(name=agency)
    agency_admin = MembershipFactory(account=agency_account, role=RoleId.ADMIN).user
    client_account = AccountFactory(name=client, plan_code="pro")
    owner = MembershipFactory(account=client_account, role=RoleId.OWNER).user
    grant = agency_services.access_request(agency=agency_account, client=client_account, by=agency_admin)
    agency_services.access_decide(grant=grant, approve=True, by=owner)
    return dict(agency=agency_account, agency_admin=agency_admin, client=client_account, owner=owner,
                grant=AgencyGrant.objects.get(pk=grant.pk))


def account_tree(*, breadth: int, depth: int = 2, root: Account | None = None) -> Account:
    """A root with ``breadth`` children per node, ``depth`` levels in all (root included)."""
    root = root or AccountFactory()
    frontier = [root]
    for _ in range(depth - 1):
        frontier = [AccountFactory(parent=node) for node in frontier for _ in range(breadth)]
    root.refresh_from_db()
    return root


def usage(account: Account, minutes: int, *, period=None, day=None, root: Account | None = None):
    """A usage record as metering writes it (paid by the account's root unless ``root`` says otherwise),
    rollups included."""
    from billing.models import period_start
    from billing.services import usage_record_create

    period = period or period_start()
    return usage_record_create(
        account=account, billing_root=root or Account.objects.get(path=account.root_path), period=period,
        occurred_on=day or period, minutes=minutes, seconds=minutes * 60,
    )


def sent_earlier(*invitations):
    """Invitations whose last email went out long enough ago to send them again (``RESEND_INTERVAL``)."""
    from members.invitations import RESEND_INTERVAL
    from members.models import Invitation

    earlier = timezone.now() - RESEND_INTERVAL - datetime.timedelta(seconds=1)
    Invitation.objects.filter(pk__in=[i.pk for i in invitations]).update(last_sent_at=earlier)
    for invitation in invitations:
        invitation.last_sent_at = earlier
    return invitations[0] if len(invitations) == 1 else invitations
