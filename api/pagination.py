from rest_framework.pagination import CursorPagination


class Cursor(CursorPagination):
    """Opaque cursors (``?cursor=``), ``?limit=`` up to 100. Stable under inserts, no COUNT(*)."""

    page_size = 25
    page_size_query_param = "limit"
    max_page_size = 100
    ordering = "-created_at"
