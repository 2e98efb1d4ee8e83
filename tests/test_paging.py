"""``accounts.paging.Paginator``: Django's pages, without a COUNT for a first page that holds every row."""

import pytest
from django.core import paginator as django_paginator
from hypothesis import given
from hypothesis import strategies as st

from accounts.models import Account
from accounts.paging import Paginator
from tests.factories import AccountFactory


def described(paginator, number, *, get=True):
    page = paginator.get_page(number) if get else paginator.page(number)
    return (list(page.object_list), page.number, paginator.count, paginator.num_pages, page.has_next(),
            page.has_previous(), page.start_index(), page.end_index())


@given(rows=st.integers(0, 60), per_page=st.integers(1, 12), orphans=st.integers(0, 4),
       number=st.one_of(st.integers(-2, 12), st.sampled_from(["1", "2", "x", "", None, "1.0", 1.0, 1.5])))
def test_every_page_is_django_s(rows, per_page, orphans, number):
    items = list(range(rows))
    expected = described(django_paginator.Paginator(items, per_page, orphans=orphans), number)
    assert described(Paginator(items, per_page, orphans=orphans), number) == expected


@given(rows=st.integers(0, 30), per_page=st.integers(1, 12), number=st.sampled_from([1, "1", 2, "x", 0, 99]))
def test_page_refuses_what_django_refuses(rows, per_page, number):
    items = list(range(rows))
    outcomes = []
    for cls in (django_paginator.Paginator, Paginator):
        try:
            outcomes.append(described(cls(items, per_page), number, get=False))
        except django_paginator.InvalidPage as exc:
            outcomes.append(type(exc))
    assert outcomes[0] == outcomes[1]


@pytest.mark.django_db
def test_a_first_page_that_holds_every_row_costs_one_query_and_a_longer_list_two(django_assert_num_queries):
    root = AccountFactory()
    for i in range(12):
        AccountFactory(parent=root, name=f"Client {i:02}")
    children = Account.objects.filter(parent=root).order_by("name")
    with django_assert_num_queries(1):
        page = Paginator(children, 12).get_page(1)
        assert [a.name for a in page] == [f"Client {i:02}" for i in range(12)] and page.paginator.num_pages == 1
    with django_assert_num_queries(2):  # the rows, then the count when the page links ask for it
        page = Paginator(children, 5).get_page("1")
        assert [a.name for a in page] == [f"Client {i:02}" for i in range(5)] and page.paginator.num_pages == 3
    with django_assert_num_queries(2):  # a later page: counted first, as Django does
        page = Paginator(children, 5).get_page(3)
        assert [a.name for a in page] == ["Client 10", "Client 11"] and not page.has_next()


@pytest.mark.django_db
def test_a_list_that_counts_with_its_page_is_counted_first_at_any_size(django_assert_num_queries):
    """SubaccountRows reads the expected page's ids with the total in one pass: its first page is not read a row
    longer (that would sort a large tree's rows a second time for the count)."""
    from accounts.selectors import SubaccountRows

    root = AccountFactory()
    for i in range(30):
        AccountFactory(parent=root, name=f"Client {i:02}")
    for size, per_page in ((30, 25), (30, 50)):
        rows = SubaccountRows(root, order=("name", "pk"), subtree=True).expect(1, per_page)
        with django_assert_num_queries(2):  # ids and total, then the figures of the page's rows
            page = Paginator(rows, per_page).get_page(1)
            assert len(page) == min(size, per_page) and page.paginator.count == size


@pytest.mark.django_db
@pytest.mark.parametrize("number", [1, 2])
def test_all_direct_subaccounts_are_counted_by_numchild_and_read_in_one_query(number, django_assert_num_queries):
    from accounts.selectors import SubaccountRows

    root = AccountFactory()
    for i in range(30):
        AccountFactory(parent=root, name=f"Client {i:02}")
    AccountFactory(parent=Account.objects.get(name="Client 03"))  # (a grandchild: not a direct subaccount)
    root.refresh_from_db()
    rows = SubaccountRows(root, order=("name", "pk")).expect(number, 25)
    with django_assert_num_queries(1):  # the page's rows with their figures; the count is numchild
        page = Paginator(rows, 25).get_page(number)
        assert page.paginator.count == 30
        assert [a.name for a in page] == [f"Client {i:02}" for i in range(30)][(number - 1) * 25:number * 25]


@pytest.mark.django_db
@pytest.mark.parametrize("subtree", [False, True])
def test_a_search_that_finds_nothing_costs_one_query_and_no_compilation(subtree, django_assert_num_queries,
                                                                       no_orm_compilation):
    """Nothing matched: the paginator's first page is the slice ``[0:0]``, which the ORM compiles in full to answer
    nothing (about 10 ms for the subaccounts query). It is answered without it, and without a query."""
    from accounts.selectors import SubaccountRows

    root = AccountFactory()
    AccountFactory(parent=root, name="Client")
    no_orm_compilation()
    for expect in (True, False):
        rows = SubaccountRows(root, order=("name", "pk"), text="no such name", subtree=subtree)
        if expect:
            rows.expect(1, 25)
        with django_assert_num_queries(1):  # the count (with the page's ids when expected): nothing after it
            page = Paginator(rows, 25).get_page(1)
            assert list(page) == [] and page.paginator.count == 0


@pytest.mark.django_db
def test_baked_pages_answer_an_empty_slice_without_a_query(django_assert_num_queries):
    from accounts.baked import Baked
    from accounts.models import Account

    pages = Baked(lambda name: Account.objects.filter(name=name).order_by("pk")).pages("nobody")
    with django_assert_num_queries(0):
        assert pages[0:0] == [] and pages[5:5] == []
    with django_assert_num_queries(1):
        assert pages[0:10] == []
