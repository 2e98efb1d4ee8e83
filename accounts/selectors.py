"""Reads about the account tree that several views share."""

from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Q, Window
from django.db.models.functions import Lower

from members.models import Membership

from .baked import Baked, empty_slice
from .models import Account, ancestor_or_self_paths, subtree_bounds
from .paging import Paginator
from .params import uuid_or_none


@dataclass(frozen=True)
class SwitcherEntry:
    account: Account
    role: str | None = None  # the person's own role, on entry points
    is_client: bool = False  # reached as an agency user (listed apart from the person's own tree)


# What the switcher shows of an account (``switcher_items``: its name, id and number of children; search results
# their parent's name): the rest of a row (JSON caps, limits, dates) is left unread, 50 rows a page.
SWITCHER_FIELDS = ("public_id", "name", "numchild", "path", "depth", "parent_id")
_NOT_SHOWN = tuple(f.name for f in Account._meta.concrete_fields if f.attname not in {"id", *SWITCHER_FIELDS})


def entry_point_memberships(user):
    """The person's memberships at the top of their reachable forest (not below another of their own
    memberships; agency ones always, while in force), their own first, then agency clients, by name (a list).
    One query on the ``membership_entry_points`` index: whether a membership lies below another is kept on the row
    when memberships or paths change (``members.entry_points``), so nothing here grows with the memberships below
    the tops (10,001 memberships: ~40 ms deciding it per request, before)."""
    return _entry_points(user.pk, limit=None)


def _entry_point_query(user_id, *, limit):
    qs = (Membership.objects.effective().filter(user_id=user_id, below_own=False).select_related("account")
          .defer(*(f"account__{name}" for name in _NOT_SHOWN))
          .order_by("is_agency", Lower("account__name"), "account__path"))
    return qs[:limit] if limit is not None else qs


# compiled once (``accounts.baked``): ``effective()``'s subqueries cost ten times the query to compile
_entry_points = Baked(_entry_point_query)


def entry_points(user, limit: int | None = None) -> list[SwitcherEntry]:
    """``entry_point_memberships`` as switcher entries (the first ``limit`` of them)."""
    return [switcher_entry(m) for m in _entry_points(user.pk, limit=limit)]


def switcher_entry(membership) -> SwitcherEntry:
    return SwitcherEntry(membership.account, membership.get_role_display(), membership.is_agency)


_children = Baked(lambda parent_id: Account.objects.filter(parent_id=parent_id).only(*SWITCHER_FIELDS)
                  .order_by("name", "pk"))


def children_page(parent: Account, *, page: int = 1, per_page: int = 50):
    """One page of an account's direct children, by name (its rows compiled once: ``accounts.baked``), counted by
    the parent's ``numchild``: one query."""
    return Paginator(_children.pages(parent.pk).counted_as(parent.numchild), per_page).get_page(page)


@dataclass
class PeekPage:
    """A page that knows whether another follows without counting every match (it reads one row more): the
    switcher offers "Show more", never a total, so deciding reach for every match would be wasted."""

    object_list: list
    number: int
    has_next: bool

    def __iter__(self):
        return iter(self.object_list)

    def __len__(self):
        return len(self.object_list)

    def next_page_number(self) -> int:
        return self.number + 1

    def has_previous(self) -> bool:
        return self.number > 1

    def previous_page_number(self) -> int:
        return self.number - 1


def peek_page(rows, page, per_page: int) -> PeekPage:
    """The page ``page`` of ``rows``, a function of a slice's start and stop giving its rows."""
    try:
        number = min(max(1, int(page)), 100_000)  # any page past the last is empty; the offset stays sane
    except (TypeError, ValueError):
        number = 1
    start = (number - 1) * per_page
    found = list(rows(start, start + per_page + 1))
    return PeekPage(found[:per_page], number, len(found) > per_page)


# A person with at most this many memberships searches within their ranges; more, and every matching account
# is tested for reach instead.
MAX_SEARCH_MEMBERSHIPS = 20


def search_page(user, query: str, *, page: int = 1, per_page: int = 50) -> PeekPage:
    """Reachable accounts whose name contains ``query``, with their parent for context; ``parent_reached``
    says whether the person reaches the parent too (R6: only then is it named). No count; compiled once per page
    size and position (``accounts.baked``).

    Two queries: the person's memberships (a third for an agency user: those in force, by the SQL of
    ``effective()``), then the names within what they reach, which is every
    membership's subtree (an agency client: the account alone), each a range on the path index: a member of one
    account deep down reads that account, not every account of the platform whose name matches. Up to
    ``MAX_SEARCH_MEMBERSHIPS`` memberships, every one gives its range, not only the entry points, so search does
    not depend on ``below_own`` (kept apart from the memberships: ``members.entry_points``). With more, the ranges
    are those of the entry points (the memberships not below another of the person's own, which cover the same
    accounts: someone in every account of a big agency has one; a stale flag can then hide a match, as it hides a
    switcher entry, never show one the person does not reach); with more entry points than that too, every
    matching name is tested for reach (a scan of the names: 25 ms at 10,000 accounts, against 13 by range)."""
    text = query.strip()
    # Every membership, without the SQL test of agency grants (PostgreSQL planned that query anew on every run,
    # 0.4 ms, for a person with no agency membership to test). Only an agency membership can be out of force: when
    # none is among these, they are what the memberships in force would list. Otherwise, those in force.
    held = _memberships_of(user.pk, limit=MAX_SEARCH_MEMBERSHIPS + 1)  # entry points first
    if any(m.is_agency for m in held):
        held = _memberships_in_force(user.pk, limit=MAX_SEARCH_MEMBERSHIPS + 1)
    every = len(held) <= MAX_SEARCH_MEMBERSHIPS  # every membership in force: their own ones name the parents
    if not every:  # past the entry points when there are at most as many
        held = [m for m in held if not m.below_own]
    if len(held) > MAX_SEARCH_MEMBERSHIPS:
        return peek_page(lambda start, stop: _search(user.pk, text, start=start, stop=stop), page, per_page)
    if not held:
        return peek_page(lambda start, stop: [], page, per_page)
    subtrees = [subtree_bounds(m.account.path) for m in held if not m.is_agency]
    lows, highs = [low for low, _ in subtrees], [high for _, high in subtrees]
    clients = [m.account.path for m in held if m.is_agency]
    found = peek_page(lambda start, stop: _search_within(user.pk, text, lows, highs, clients, start=start,
                                                         stop=stop, reach_parent=not every), page, per_page)
    if every:  # R6: reached through one of their own (not agency) memberships, the rule of ``_named``'s EXISTS
        own = tuple(m.account.path for m in held if not m.is_agency)
        for account in found:
            account.parent_reached = account.parent_id is not None and account.parent.path.startswith(own)
    return found


def _named(accounts, user_id, text, start, stop, *, reach_parent=True):
    """The accounts whose name contains ``text``, with their parent and (``reach_parent``) whether the person
    reaches the parent through one of their own memberships (``parent_reached``: an agency's access reaches the
    client alone)."""
    named = (accounts.filter(name__icontains=text)
             .select_related("parent").only(*SWITCHER_FIELDS, *(f"parent__{name}" for name in SWITCHER_FIELDS))
             .order_by("name", "pk"))
    if reach_parent:
        named = named.annotate(parent_reached=Exists(Membership.objects.effective().filter(
            user_id=user_id, is_agency=False, account__path__in=ancestor_or_self_paths(OuterRef("parent__path")))))
    return named[start:stop]


def _search_query(user_id, text, *, start, stop):
    return _named(Account.objects.reachable_by_id(user_id), user_id, text, start, stop)


def _search_within_query(user_id, text, lows, highs, clients, *, start, stop, reach_parent=True):
    within = Q(path__in=clients) if clients else Q()
    for low, high in zip(lows, highs, strict=True):
        within |= Q(path__gte=low, path__lte=high)
    return _named(Account.objects.filter(within), user_id, text, start, stop, reach_parent=reach_parent)


_search = Baked(_search_query)
# Planned for its values on every run (``prepare=False``): PostgreSQL's generic plan for it intersects the path range
# with the names' trigram index, which reads every name containing a short text ("L5": 10,054 of them, 1.3 ms)
# where the range alone holds one account.
_search_within = Baked(_search_within_query, prepare=False)
# The entry points first, in the order of the ``membership_entry_points`` index (user, ``below_own``), so
# PostgreSQL stops after ``limit`` rows (ordered by id it walked the primary key from the start, past every earlier
# person's rows; by ``below_own`` and id, it sorted all 10,001 of someone in every account: 38 ms).
_memberships_in_force = Baked(lambda user_id, *, limit: Membership.objects.effective().filter(user_id=user_id)
                              .select_related("account").order_by("below_own")[:limit])
_memberships_of = Baked(lambda user_id, *, limit: Membership.objects.filter(user_id=user_id)
                        .select_related("account").order_by("below_own")[:limit])


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
        # (minutes of subaccounts that left this period, which the account's pool still counts: Limits tab)
        minutes_departed=Coalesce("rollup__departed_minutes", 0),
        transfer_status=Subquery(transfer[:1]),
    )


FIGURES = ("members_count", "agents_count", "minutes_used", "transfer_status")


# A subaccount tab's figures (overview, limits) and the number of accounts below it: compiled once.
_figures_of = Baked(lambda pk, period: subaccount_rows(Account.objects.filter(pk=pk), period).order_by("pk")[:1])
_below_count = Baked(lambda low, high, depth: Account.objects.filter(path__gte=low, path__lte=high,
                                                                    depth__gt=depth)).counted()


def figures_of(account: Account, period=None) -> Account:
    """``account`` read again with the figures of ``subaccount_rows`` (members, agents, minutes, transfer)."""
    from billing.models import period_start

    return _figures_of(account.pk, period or period_start())[0]


def count_below(account: Account) -> int:
    """How many accounts lie below ``account`` (``Account.descendants``), at any depth."""
    return _below_count(*subtree_bounds(account.path), account.depth)[0][0]


def sortable_subaccounts(qs, order: tuple[str, ...], period=None):
    """``qs`` ordered by ``order``, carrying only the figures the order needs (none for a sort by name), so
    a paginator counts and slices it without computing figures for rows it skips."""
    if {field.lstrip("-") for field in order} & set(FIGURES):
        qs = subaccount_rows(qs, period)
    return qs.order_by(*order)


def _subaccount_base(parent_id, low, high, text, *, subtree, search):
    if subtree:  # every account below (``Account.descendants``), with its parent named
        qs = Account.objects.filter(path__gt=low, path__lte=high).select_related("parent")
    else:
        qs = Account.objects.filter(parent_id=parent_id)
    return qs.filter(name__icontains=text) if search else qs


def _subaccount_page_query(parent_id, low, high, text, period, *, subtree, search, order, start, stop):
    base = _subaccount_base(parent_id, low, high, text, subtree=subtree, search=search)
    shown = sortable_subaccounts(base, order, period)[start:stop].values("pk")
    # (the page's rows by their ids alone: filtered by ``base`` again, PostgreSQL read every match a second time)
    return _subaccount_figures_query(shown, period, subtree=subtree, order=order)


def _subaccount_window_query(parent_id, low, high, text, period, *, subtree, search, order, start, stop):
    """The slice's ids in order, each with the number of rows in all: the count and the page in one pass."""
    base = _subaccount_base(parent_id, low, high, text, subtree=subtree, search=search)
    return (sortable_subaccounts(base, order, period).annotate(total=Window(Count("pk")))
            .values_list("pk", "total")[start:stop])


def _subaccount_figures_query(ids, period, *, subtree, order):
    qs = Account.objects.filter(pk__in=ids)
    return subaccount_rows(qs.select_related("parent") if subtree else qs, period).order_by(*order)


_subaccount_count = Baked(_subaccount_base).counted()
_subaccount_page = Baked(_subaccount_page_query)
_subaccount_window = Baked(_subaccount_window_query)
_subaccount_figures = Baked(_subaccount_figures_query)


class SubaccountRows:
    """The rows of a subaccounts table for a ``Paginator``: the direct children of ``parent``, or with
    ``subtree=True`` every account below it; those whose name contains ``text`` when given; ordered by
    ``order``. ``count()`` is one query, and a slice one query that computes the figures (members, agents,
    minutes, transfer) for the slice's rows only; both compiled once (``accounts.baked``). Told the page to come
    (``expect``), ``count()`` reads that page's ids with the total in one pass over the matching rows (a search
    scans them once, not twice) and the slice then reads the figures of those ids alone.

    Listing all the direct children, the count is the parent's ``numchild``: no query, and each slice one query.

    ``accounts.paging.Paginator`` counts it first, as Django does (``counts_first``): its first page read without a
    count would sort a large tree's rows twice (the page, then the count), where the expected page sorts them once."""

    counts_first = True

    def __init__(self, parent: Account, *, order: tuple[str, ...], text: str = "", subtree: bool = False,
                 period=None):
        from billing.models import period_start

        low, high = subtree_bounds(parent.path)
        self._args = (parent.pk, low, high, text or "")
        self._shape = {"subtree": subtree, "search": bool(text)}
        self.order, self.period = tuple(order), period or period_start()
        self._expected, self._ids, self._total = None, None, None
        if not subtree and not text:
            # The direct children, all of them: as many as the parent's ``numchild`` (kept by every service that
            # adds, moves or deletes an account), so no COUNT reads them all; a slice is then one query.
            self._total = parent.numchild

    def expect(self, page, per_page: int) -> "SubaccountRows":
        """The paginator will ask for page ``page`` (as the request gave it) of ``per_page`` rows."""
        try:
            number = int(page)
        except (TypeError, ValueError):
            return self
        if 1 <= number <= 100_000:  # (beyond, the paginator's own count and refusal decide)
            self._expected = ((number - 1) * per_page, number * per_page)
        return self

    def count(self) -> int:
        if self._total is None and self._expected is not None:
            start, stop = self._expected
            found = _subaccount_window(*self._args, self.period, **self._shape, order=self.order, start=start,
                                       stop=stop)
            if found:  # (a page past the last has no row to carry the total)
                self._ids, self._total = [pk for pk, _ in found], found[0][1]
            elif start == 0:  # the first page is empty: nothing matches
                self._ids, self._total = [], 0
        if self._total is None:
            self._total = _subaccount_count(*self._args, **self._shape)[0][0]
        return self._total

    def __getitem__(self, key: slice) -> list[Account]:
        if not isinstance(key, slice) or key.step is not None:
            raise TypeError("SubaccountRows takes a slice.")
        if empty_slice(key) or self._total == 0:  # (the ORM would compile the whole query to find nothing)
            return []
        if self._ids is not None and (key.start or 0, key.stop) == self._expected:
            return _subaccount_figures(self._ids, self.period, subtree=self._shape["subtree"], order=self.order)
        return _subaccount_page(*self._args, self.period, **self._shape, order=self.order, start=key.start or 0,
                                stop=key.stop)

    def __iter__(self):
        return iter(self[0:None])


_descendant = Baked(lambda low, high, depth, public_id: Account.objects.filter(
    path__gte=low, path__lte=high, depth__gt=depth, public_id=public_id).select_related("parent")[:1])


def descendant_or_404(account: Account, public_id) -> Account:
    """A subaccount anywhere below ``account``; anything else (itself, a sibling, another tenant) is 404. One
    query, compiled once (``accounts.baked``): every subaccount tab asks it."""
    from django.http import Http404

    public_id = uuid_or_none(public_id)
    found = _descendant(*subtree_bounds(account.path), account.depth, public_id) if public_id else []
    if not found:
        raise Http404("No such subaccount.")
    return found[0]
