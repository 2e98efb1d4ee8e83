"""Query-string and form parameters, parsed without ever raising a server error (rule R9).

An object id that does not parse is a 404, like an id of an object the person cannot see; a filter
or a hint that does not parse is ignored. Page numbers need nothing here: ``Paginator.get_page``
falls back to a valid page and ``ListView`` answers 404 for a page that is not one.
"""

import uuid

from django.http import Http404

SEARCH_MAX_LENGTH = 200  # longer search text matches nothing useful, and SQLite refuses LIKE patterns over 50,000 bytes


def uuid_or_none(value) -> uuid.UUID | None:
    """``value`` as a UUID, or None when it is missing or not one (any length, any characters)."""
    if value is None or isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def uuid_or_404(value, message: str = "No such account.") -> uuid.UUID:
    """``value`` as a UUID, or a 404 (never the ValidationError a UUIDField lookup raises on garbage)."""
    parsed = uuid_or_none(value)
    if parsed is None:
        raise Http404(message)
    return parsed


def search_text(params, name: str = "q") -> str:
    """Free search text from ``params`` (a QueryDict): stripped, without NUL characters (PostgreSQL
    cannot store or compare them) and at most ``SEARCH_MAX_LENGTH`` characters."""
    value = params.get(name) or ""
    return value.replace("\x00", "").strip()[:SEARCH_MAX_LENGTH]
