"""An account's ``numchild`` is the number of its direct subaccounts after any sequence of the services that add,
move or delete accounts (subaccount_create, subtree_move: a move inside the tree and a billing transfer's move to
the top level, account_delete, provisioning): the Subaccounts and Clients pages, the switcher and the dashboard
show it as the count of direct subaccounts without counting them (issue 14), and deletions and plan changes decide
by it. ``NUMCHILD_EXAMPLES=300`` runs more examples than the suite's 20."""

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Account
from accounts.provisioning import provision
from accounts.services import AccountHasSubaccounts, account_delete, subaccount_create, subtree_move
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

OPS = st.lists(st.tuples(st.sampled_from(["create", "create", "move", "top", "delete", "provision"]),
                         st.integers(0, 10**6), st.integers(0, 10**6)), min_size=1, max_size=14)


def wrong_numchild() -> list[tuple[str, int, int]]:
    """(name, numchild, real number of children) of every account where the two differ."""
    children = (Account.objects.filter(parent_id=OuterRef("pk")).order_by().values("parent_id")
                .annotate(n=Count("pk")).values("n")[:1])
    return [(a.name, a.numchild, a.real) for a in
            Account.objects.annotate(real=Coalesce(Subquery(children), 0)).order_by("path")
            if a.numchild != a.real]


def step(op: str, i: int, j: int, serial: int) -> None:
    accounts = list(Account.objects.order_by("path"))
    target, other = accounts[i % len(accounts)], accounts[j % len(accounts)]
    try:
        with transaction.atomic():
            if op == "create":
                subaccount_create(parent=target, name=f"Made {serial}", by=None)
            elif op == "move" and target.depth > 1 and not other.path.startswith(target.path):
                subtree_move(target, other)
            elif op == "top" and target.depth > 1:  # a billing transfer's move out of the tree
                subtree_move(target, None)
            elif op == "delete":
                account_delete(account=target, by=None)
            elif op == "provision" and target.external_id:
                rows = (f"p{serial},Provisioned {serial},{target.external_id}\n"
                        f"q{serial},Provisioned {serial} below,p{serial}\n")
                report = provision("external_id,name,parent\n" + rows, fmt="csv")
                assert report.applied != bool(report.problems)  # (refused, e.g. a moved-out top with no plan)
    except (ValidationError, AccountHasSubaccounts):
        pass  # refused (depth, a name taken, subaccounts left): nothing changed


@settings(max_examples=int(__import__("os").environ.get("NUMCHILD_EXAMPLES", 20)), deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_numchild_is_the_number_of_direct_subaccounts_after_any_sequence(ops):
    with transaction.atomic():
        root = AccountFactory(name="Root", external_id="root")
        AccountFactory(parent=AccountFactory(parent=root, name="A", external_id="a"), name="A1")
        AccountFactory(name="Other root", external_id="other")
        for serial, (op, i, j) in enumerate(ops):
            step(op, i, j, serial)
            assert wrong_numchild() == [], (op, serial)
        transaction.set_rollback(True)
