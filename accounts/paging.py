"""Pages of a list that may hold more rows than anyone pages through (a busy account's calls, its audit trail)."""

from django.core.paginator import Paginator
from django.utils.functional import cached_property

# The rows a list offers in one order: enough to page through (400 pages of 25), and a count that stops there
# reads at most this many index entries, however many rows match. Filters and search narrow the rest.
MAX_ROWS = 10_000


def count_at_most(queryset, cap: int) -> int:
    """The rows of ``queryset``, counted no further than ``cap + 1`` (``SELECT COUNT(*) FROM (… LIMIT cap + 1)``, in
    any order): a count over ``cap`` says only that more match."""
    return queryset.order_by().values("pk")[: cap + 1].count()


class AtMostPaginator(Paginator):
    """A ``Paginator`` over the first ``cap`` rows of its list: ``count`` is exact up to ``cap`` (``SELECT COUNT(*)
    FROM (… LIMIT cap + 1)``) and ``more`` says whether more match. A page past the cap is out of range (404)."""

    cap = MAX_ROWS

    @cached_property
    def count(self) -> int:
        found = count_at_most(self.object_list, self.cap)
        self.more = found > self.cap
        return min(found, self.cap)

    more = False
