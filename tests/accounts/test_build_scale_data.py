"""``build_scale_data`` writes exactly the rows the services would (issue 14, item 5): the same plan built
through the services and through the command's bulk inserts gives the same database, compared by natural
keys (paths, emails, names), permission rows, audit rows and rollups included."""

import datetime
import io

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from accounts.management.commands.build_scale_data import make_user, tree_plan, usage_plan
from accounts.models import Account, AccountUserObjectPermission, AuditEvent
from accounts.services import account_create, subaccount_create
from billing.models import (
    Plan,
    Subscription,
    UsageDayRollup,
    UsagePayerGroup,
    UsagePayerRollup,
    UsageRecord,
    UsageRollup,
    period_start,
)
from billing.services import subscription_start, usage_record_create
from members.models import Membership
from members.roles import RoleId
from members.services import membership_add
from workspace.models import Agent
from workspace.services import agent_create

pytestmark = pytest.mark.django_db

SIZES = {"subaccounts": 12, "small": 4, "usage_last": 48, "usage_this": 32, "seed": 3}


def by_services():
    """The command's plan, one service call at a time."""
    this = period_start()
    last = period_start(this - datetime.timedelta(days=1))
    roots = []
    for name, email, prefix, size in (("Scale Agency", "owner@scale.example", "Scale", SIZES["subaccounts"]),
                                      ("Small Agency", "small@scale.example", "Small", SIZES["small"])):
        root = account_create(name=name, owner=make_user(email))
        subscription_start(account=root, plan=Plan.objects.get(code="agency"))
        made = []
        for node in tree_plan(prefix, size):
            parent = root if node.parent is None else made[node.parent]
            made.append(subaccount_create(parent=Account.objects.get(pk=parent.pk), name=node.name, by=None))
        for account in sorted(made, key=lambda a: Account.objects.get(pk=a.pk).path):
            agent_create(account=account, by=None, name="Front desk")
        roots.append(Account.objects.get(pk=root.pk))
    big, small = roots
    deep = Account.objects.filter(path__startswith=big.path, depth=5).order_by("path").first()
    membership_add(account=deep, user=make_user("deep@scale.example"), role=RoleId.MEMBER, by=None)
    many = make_user("many@scale.example")
    for account in Account.objects.filter(path__startswith=big.path).order_by("path"):
        membership_add(account=account, user=many, role=RoleId.MEMBER, by=None)
    for index, root in enumerate(roots):
        accounts = list(Account.objects.filter(path__startswith=root.path, depth__gt=1).order_by("path"))
        share = len(accounts) / (SIZES["subaccounts"] + SIZES["small"])
        for period, count, seed in ((last, SIZES["usage_last"], SIZES["seed"]),
                                    (this, SIZES["usage_this"], SIZES["seed"] + 1)):
            for i, day, minutes in usage_plan(int(count * share), len(accounts), period, seed + index):
                usage_record_create(account=accounts[i], billing_root=root, period=period_start(day), occurred_on=day,
                                    minutes=minutes, seconds=minutes * 60 - 30)


def snapshot() -> dict:
    path = dict(Account.objects.values_list("pk", "path"))
    public = {str(k): path[v] for k, v in Account.objects.values_list("public_id", "pk")}
    public |= {str(k): f"agent@{path[v]}" for k, v in Agent.objects.values_list("public_id", "account_id")}

    def rows(qs, *fields):
        return sorted(qs.values_list(*fields))

    return {
        "accounts": sorted((a.path, a.name, a.name_key, a.depth, a.numchild, path.get(a.parent_id), a.status,
                            a.access_categories, tuple(a.limits().values())) for a in Account.objects.all()),
        "subscriptions": rows(Subscription.objects, "account__path", "plan__code"),
        "memberships": rows(Membership.objects, "user__email", "account__path", "role", "is_agency", "via_agency",
                            "below_own", "created_by"),
        "permissions": rows(AccountUserObjectPermission.objects, "user__email", "content_object__path",
                            "permission__codename"),
        "agents": rows(Agent.objects, "account__path", "name", "language", "status"),
        "audit": sorted((path[e.account_id], e.action, e.summary, e.actor_email,
                         sorted((k, public.get(v, v)) for k, v in e.data.items())) for e in AuditEvent.objects.all()),
        "usage": rows(UsageRecord.objects, "account__path", "billing_root__path", "period", "occurred_on", "minutes",
                      "seconds"),
        "rollups": rows(UsageRollup.objects, "account__path", "period", "own_minutes", "subtree_minutes"),
        "days": rows(UsageDayRollup.objects, "account__path", "day", "own_minutes", "subtree_minutes"),
        "payers": rows(UsagePayerRollup.objects, "billing_root__path", "period", "account__path", "minutes"),
        "payer groups": rows(UsagePayerGroup.objects.filter(lines__gt=0), "billing_root__path", "period", "minutes",
                             "lines"),
    }


def test_the_command_writes_what_the_services_write():
    with transaction.atomic():
        call_command("build_scale_data", "--many", "--no-conversation-events",
                     *(f"--{k.replace('_', '-')}={v}" for k, v in SIZES.items()), stdout=io.StringIO())
        bulk = snapshot()
        transaction.set_rollback(True)
    with transaction.atomic():
        by_services()
        services = snapshot()
        transaction.set_rollback(True)
    assert bulk["usage"] and bulk["permissions"] and len(bulk["accounts"]) == 2 + 12 + 4
    for key in services:
        assert bulk[key] == services[key], key


def test_each_usage_record_has_the_audit_row_recording_its_call_writes():
    """By default the command also writes the "conversation.recorded" row ``conversation_record`` writes for each
    call (most of a busy trail), in the account and on the day of the call, with the service's summary and keys."""
    from workspace.models import Contact
    from workspace.services import conversation_record

    with transaction.atomic():
        call_command("build_scale_data", *(f"--{k.replace('_', '-')}={v}" for k, v in SIZES.items()),
                     stdout=io.StringIO())
        usage = sorted(UsageRecord.objects.values_list("account_id", "occurred_on", "minutes"))
        events = AuditEvent.objects.filter(action="conversation.recorded")
        assert sorted((e.account_id, e.created_at.date(), int(e.summary.split("(")[1].split()[0])) for e in events) \
            == usage
        bulk = events.first()
        account = Account.objects.get(pk=bulk.account_id)
        agent = Agent.objects.filter(account=account).first()
        contact = Contact.objects.create(account=account, name="C", email="c@example.test")
        made = conversation_record(account=account, agent=agent, contact=contact, by=None,
                                   started_at=min(datetime.datetime.combine(bulk.created_at.date(), datetime.time(8),
                                                                            datetime.UTC),
                                                  timezone.now() - datetime.timedelta(hours=1)),  # not in the future
                                   duration_seconds=int(bulk.summary.split("(")[1].split()[0]) * 60)
        service = AuditEvent.objects.filter(action="conversation.recorded").order_by("-pk").first()
        assert (service.summary, sorted(service.data)) == (bulk.summary, sorted(bulk.data))
        assert service.data["id"] == str(made.public_id) and service.actor_email == bulk.actor_email == ""
        transaction.set_rollback(True)


def small_tenant() -> dict:
    """The small agency's rows, its paths relative to its root (the root's own path differs between builds)."""
    root = Account.objects.get(name="Small Agency", depth=1)
    accounts = Account.objects.filter(path__startswith=root.path)
    rel = {a.pk: "~" + a.path[len(root.path):] for a in accounts}
    public = {str(a.public_id): rel[a.pk] for a in accounts}
    public |= {str(k): f"agent@{rel[v]}" for k, v in Agent.objects.filter(account__in=accounts)
               .values_list("public_id", "account_id")}

    def rows(qs, *fields, paths=1):
        """``fields`` of ``qs``'s rows of the small agency, the first ``paths`` (account ids) as relative paths."""
        return sorted(tuple(rel[v] if i < paths else v for i, v in enumerate(row)) for row in qs.values_list(*fields))

    return {
        "accounts": sorted((rel[a.pk], a.name, a.name_key, a.depth, a.numchild, rel.get(a.parent_id), a.status,
                            a.access_categories, tuple(a.limits().values())) for a in accounts),
        "subscriptions": rows(Subscription.objects.filter(account__in=accounts), "account", "plan__code"),
        "memberships": rows(Membership.objects.filter(account__in=accounts), "account", "user__email", "role",
                            "is_agency", "via_agency", "created_by__email"),
        "permissions": rows(AccountUserObjectPermission.objects.filter(content_object__in=accounts),
                            "content_object", "user__email", "permission__codename"),
        "agents": rows(Agent.objects.filter(account__in=accounts), "account", "name", "language", "status"),
        "audit": sorted((rel[e.account_id], e.action, e.summary, e.actor_email,
                         sorted((k, public.get(v, v)) for k, v in e.data.items()))
                        for e in AuditEvent.objects.filter(account__in=accounts)),
        "usage": rows(UsageRecord.objects.filter(account__in=accounts), "account", "billing_root", "period",
                      "occurred_on", "minutes", "seconds", paths=2),
        "rollups": rows(UsageRollup.objects.filter(account__in=accounts), "account", "period", "own_minutes",
                        "subtree_minutes"),
        "days": rows(UsageDayRollup.objects.filter(account__in=accounts), "account", "day", "own_minutes",
                     "subtree_minutes"),
        "payers": rows(UsagePayerRollup.objects.filter(account__in=accounts), "account", "billing_root", "period",
                       "minutes", paths=2),
    }


def test_without_big_builds_the_small_agency_as_beside_the_big_one():
    """``--without-big`` (the platform ``bench/small_tenant.py`` compares with) gives the small agency exactly
    the rows it has in the full build: same names, agents, audit rows, usage records and rollups."""
    options = [f"--{k.replace('_', '-')}={v}" for k, v in SIZES.items()]
    with transaction.atomic():
        call_command("build_scale_data", "--many", *options, stdout=io.StringIO())
        beside = small_tenant()
        transaction.set_rollback(True)
    with transaction.atomic():
        call_command("build_scale_data", "--without-big", *options, stdout=io.StringIO())
        alone = small_tenant()
        assert not Account.objects.filter(name="Scale Agency").exists()
        assert not Membership.objects.filter(user__email__in=("owner@scale.example", "deep@scale.example")).exists()
        transaction.set_rollback(True)
    assert len(alone["accounts"]) == 1 + 4 and alone["usage"] and alone["rollups"] and alone["permissions"]
    for key in beside:
        assert alone[key] == beside[key], key
