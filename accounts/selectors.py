"""Reads about the account tree that several views share."""

from dataclasses import dataclass

from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Q

from members.models import Membership

from .models import Account


@dataclass(frozen=True)
class SwitcherEntry:
    account: Account
    role: str | None = None  # the person's own role, on entry points
    is_client: bool = False  # reached as an agency user (listed apart from the person's own tree)


def entry_points(user) -> list[SwitcherEntry]:
    """The top of the person's reachable forest: accounts they belong to that are not
    below another account they belong to, their own first, then agency clients. One query."""
    memberships = list(Membership.objects.effective().filter(user=user).select_related("account"))
    paths = {m.account.path for m in memberships if not m.is_agency}
    tops = [m for m in memberships if m.is_agency or not any(p in paths for p in m.account.ancestor_paths)]
    tops.sort(key=lambda m: (m.is_agency, m.account.name.lower(), m.account.path))
    return [SwitcherEntry(m.account, m.get_role_display(), m.is_agency) for m in tops]


def children_page(parent: Account, *, page: int = 1, per_page: int = 50):
    """One page of an account's direct children, by name."""
    qs = Account.objects.filter(parent=parent).order_by("name", "pk")
    return Paginator(qs, per_page).get_page(page)


def search_page(user, query: str, *, page: int = 1, per_page: int = 50):
    """Reachable accounts whose name contains ``query``, with their parent for context."""
    qs = (
        Account.objects.reachable_by(user)
        .filter(name__icontains=query.strip())
        .select_related("parent")
        .order_by("name", "pk")
    )
    return Paginator(qs, per_page).get_page(page)


def dashboard_counts(account: Account) -> dict[str, int]:
    """Members here, direct subaccounts and all subaccounts below: two queries."""
    members = Membership.objects.filter(account=account).aggregate(n=Count("pk"))["n"]
    below = account.descendants().aggregate(
        all=Count("pk"), direct=Count("pk", filter=Q(depth=account.depth + 1))
    )
    return {"members": members, "subaccounts": below["direct"], "all_subaccounts": below["all"]}


def subaccount_rows(qs, period=None):
    """Annotate subaccounts with members, agents (correlated counts on indexed columns) and minutes used
    this period by their whole subtree (a join on the usage rollup, one row per account and period, so
    sorting by minutes reads a column instead of summing usage per row). The row count never changes
    the query count."""
    from django.db.models import FilteredRelation, Subquery
    from django.db.models.functions import Coalesce

    from billing.models import BillingTransfer, period_start
    from workspace.models import Agent

    period = period or period_start()

    def count_of(model):
        return Coalesce(Subquery(
            model.objects.filter(account=OuterRef("pk")).order_by().values("account")
            .annotate(n=Count("pk")).values("n")[:1]
        ), 0)

    transfer = BillingTransfer.objects.filter(account=OuterRef("pk"), status__in=BillingTransfer.OPEN).values("status")
    return qs.alias(
        rollup=FilteredRelation("usage_rollups", condition=Q(usage_rollups__period=period)),
    ).annotate(
        members_count=count_of(Membership),
        agents_count=count_of(Agent),
        minutes_used=Coalesce("rollup__subtree_minutes", 0),
        transfer_status=Subquery(transfer[:1]),
    )


FIGURES = ("members_count", "agents_count", "minutes_used", "transfer_status")


def sortable_subaccounts(qs, order: tuple[str, ...], period=None):
    """``qs`` ordered by ``order``, carrying only the figures the order needs (none for a sort by name), so
    a paginator counts and slices it without computing figures for rows it skips."""
    if {field.lstrip("-") for field in order} & set(FIGURES):
        qs = subaccount_rows(qs, period)
    return qs.order_by(*order)


def with_figures(qs, page_rows, order: tuple[str, ...], period=None) -> list[Account]:
    """The rows of one page (``page_rows``, a slice of ``sortable_subaccounts(qs, …)``) with every figure, in
    one query that computes figures for those rows only."""
    return list(subaccount_rows(qs.filter(pk__in=page_rows.values("pk")), period).order_by(*order))


def descendant_or_404(account: Account, public_id) -> Account:
    """A subaccount anywhere below ``account``; anything else (itself, a sibling, another tenant) is 404."""
    from django.shortcuts import get_object_or_404

    return get_object_or_404(account.descendants().select_related("parent"), public_id=public_id)
