"""Pages of a list that may hold more rows than anyone pages through (a busy account's calls, its audit trail)."""

from django.core import paginator as django_paginator
from django.utils.functional import cached_property

# The rows a list offers in one order: enough to page through (400 pages of 25), and a count that stops there
# reads at most this many index entries, however many rows match. Filters and search narrow the rest.
MAX_ROWS = 10_000


def count_at_most(queryset, cap: int) -> int:
    """The rows of ``queryset``, counted no further than ``cap + 1`` (``SELECT COUNT(*) FROM (… LIMIT cap + 1)``, in
    any order): a count over ``cap`` says only that more match."""
    return queryset.order_by().values("pk")[: cap + 1].count()


class Paginator(django_paginator.Paginator):
    """Django's ``Paginator``, but the first page of a list that fits on it costs no ``COUNT``: it reads one row
    more than a page holds, and when that row is not there the rows read are all of them. Most accounts' members,
    invoices, clients and audit trails fit on one page, so their pages make one query where Django makes two. When
    more rows match, the page is those rows, and the count is read only when asked (the page links), as before.
    A list that reads its count with its page (``counts_first``: ``accounts.selectors.SubaccountRows``) is paged as
    Django pages it."""

    def validate_number(self, number):
        if (self.allow_empty_first_page and "count" not in self.__dict__
                and not getattr(self.object_list, "counts_first", False)):
            try:
                first = number == 1 or (isinstance(number, str) and int(number) == 1)
            except ValueError:
                first = False
            if first:  # the first page always exists (empty or not): no need to count for it
                return 1
        return super().validate_number(number)

    def page(self, number):
        number = self.validate_number(number)
        if number != 1 or "count" in self.__dict__:  # (a ``counts_first`` list was counted to validate the number)
            return super().page(number)
        fits = self.per_page + self.orphans  # what the first page shows when it is the only one
        rows = list(self.object_list[:fits + 1])
        if len(rows) <= fits:
            self.count = len(rows)
            return self._get_page(rows, 1, self)
        return self._get_page(rows[:self.per_page], 1, self)


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
