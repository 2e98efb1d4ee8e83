"""Sortable tables: ``?sort=field`` (ascending) or ``?sort=-field`` (descending), parsed like every other
parameter (R9): only the columns a table declares can be sorted on, anything else falls back to the
table's default order without an error, and the order always ends on the primary key so pages never
overlap or skip a row. Sorting changes the ORDER BY only, never the number of queries.

A view declares its columns once::

    MEMBER_SORTS = Sorting(Column("name", "user__name", "user__email"), Column("joined", "created_at"),
                           default="name")
    self.sort = MEMBER_SORTS.parse(request.GET)
    qs.order_by(*self.sort.order_by)

and the template draws each header with ``{% sort_header sort "joined" "Joined" %}`` (``accounts.templatetags
.sorting``): a link to the other direction that keeps the other query parameters, ``aria-sort`` on the
column the rows follow.
"""

from dataclasses import dataclass, field

from django.db.models import F, OrderBy
from django.http import QueryDict

# Query parameters a new order makes meaningless: another order's page, or a download.
RESET_ON_SORT = ("page", "format")


@dataclass(frozen=True)
class Column:
    """A sortable column: its name in the URL and the fields it orders by, ascending. Only the first field
    turns round for the descending order; the others break ties the same way in both directions."""

    key: str
    fields: tuple
    descending_first: bool = False  # numbers and dates: the first click shows the most / the newest

    def __init__(self, key: str, *fields, descending_first: bool = False):
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "fields", fields or (key,))
        object.__setattr__(self, "descending_first", descending_first)


def _reversed(term):
    """The term in the other direction, empty values (NULL) moving to the other end with it: "never used"
    sorts as the oldest, so it comes first oldest-first and last newest-first."""
    if isinstance(term, OrderBy):
        return OrderBy(term.expression, descending=not term.descending, nulls_first=term.nulls_last or None,
                       nulls_last=term.nulls_first or None)
    if hasattr(term, "desc"):  # an F() or another expression
        return term.desc()
    return term[1:] if term.startswith("-") else f"-{term}"


def _field_name(term) -> str:
    while isinstance(term, OrderBy):
        term = term.expression
    if isinstance(term, F):
        return term.name
    return str(term).lstrip("-")


@dataclass(frozen=True)
class SortOrder:
    """The order a request asked for (or the default), with what a template needs to draw the headers."""

    sorting: "Sorting"
    column: Column
    descending: bool
    params: QueryDict = field(repr=False)

    @property
    def value(self) -> str:
        return f"-{self.column.key}" if self.descending else self.column.key

    @property
    def is_default(self) -> bool:
        return self.value == self.sorting.default

    @property
    def order_by(self) -> tuple:
        first, *rest = self.column.fields
        first = _reversed(first) if self.descending else first
        terms = (first, *rest)
        if self.sorting.tiebreak not in {_field_name(t) for t in terms}:
            terms = (*terms, self.sorting.tiebreak)
        return terms

    @property
    def field_names(self) -> set[str]:
        return {_field_name(t) for t in self.order_by}

    def direction(self, key: str) -> str | None:
        """``ascending`` / ``descending`` for the column the rows follow, None for the others (aria-sort)."""
        if key != self.column.key:
            return None
        return "descending" if self.descending else "ascending"

    def query_for(self, key: str) -> str:
        """The query string that sorts by ``key``: the other direction when it is the current column, the
        column's first direction otherwise; every other parameter kept, the page reset."""
        column = self.sorting.columns[key]
        descending = (not self.descending) if key == self.column.key else column.descending_first
        query = self.params.copy()
        for name in RESET_ON_SORT:
            query.pop(name, None)
        query[self.sorting.param] = f"-{key}" if descending else key
        return query.urlencode()

    def query_with(self, **changes) -> str:
        """This page's query string in the order shown (not one that fell back to the default), without what a new
        order or filter resets (``RESET_ON_SORT``), with ``changes`` (None drops a parameter): a filter's link."""
        query = self.params.copy()
        for name in (*RESET_ON_SORT, self.sorting.param):
            query.pop(name, None)
        if not self.is_default:
            query[self.sorting.param] = self.value
        for name, value in changes.items():
            query.pop(name, None)
            if value is not None:
                query[name] = value
        return query.urlencode()

    @property
    def extra_query(self) -> str:
        """The parameters a page link must carry besides ``page`` and ``q`` (which ``_pagination.html`` adds
        itself), ending with ``&``, or an empty string."""
        encoded = self.query_with(q=None)
        return f"{encoded}&" if encoded else ""


class Sorting:
    """The sortable columns of one table and its default order (a column key, ``-`` for descending)."""

    def __init__(self, *columns: Column, default: str, tiebreak: str = "pk", param: str = "sort"):
        self.columns = {c.key: c for c in columns}
        self.default = default
        self.tiebreak = tiebreak
        self.param = param
        if default.lstrip("-") not in self.columns:
            raise ValueError(f"The default order {default!r} is not one of the columns.")

    def parse(self, params: QueryDict) -> SortOrder:
        """The order ``params`` asks for; a missing, unknown or malformed value gives the default order."""
        value = params.get(self.param) or ""
        if not isinstance(value, str) or value.lstrip("-") not in self.columns or value.startswith("--"):
            value = self.default
        column = self.columns[value.lstrip("-")]
        return SortOrder(self, column, value.startswith("-"), params)
