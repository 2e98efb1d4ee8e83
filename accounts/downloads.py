"""File downloads: a Content-Disposition that survives any account name, and CSV a spreadsheet
will not execute. Every view that sends a CSV goes through ``csv_download``.

Names come from tenants (accounts, plans, agents), so a download's filename and its cells are
untrusted text:

- the filename is sent twice (RFC 6266): an ASCII ``filename="..."`` fallback with quotes,
  backslashes, control and non-ASCII characters removed, and the real name as
  ``filename*=UTF-8''<percent-encoded>`` (RFC 5987/8187), which current browsers prefer.
  (``django.utils.http.content_disposition_header`` sends only one of the two, and keeps ``/``
  unencoded in ``filename*``, so it is not used here.)
- a text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as a
  formula by Excel, LibreOffice and Google Sheets (CSV injection); it gets a leading ``'``.
  Only ``str`` cells are touched: numbers the app computes must be passed as numbers (``int``,
  ``Decimal``; see ``money``), so a negative amount stays a number.
"""

import csv
import re
import unicodedata
from collections.abc import Iterable, Sequence
from decimal import Decimal
from urllib.parse import quote

from django.http import HttpResponse

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NOT_IN_QUOTED_FILENAME = re.compile(r'["\\\x00-\x1f\x7f]')
_CENT = Decimal("0.01")


def spreadsheet_safe(value):
    """The cell as written to a CSV: text that a spreadsheet would evaluate gets a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def money(cents: int) -> Decimal:
    """An amount in cents as a number with two decimals (written as ``12.30``, never neutralised)."""
    return (Decimal(cents) / 100).quantize(_CENT)


def ascii_filename(filename: str) -> str:
    """The ``filename="..."`` fallback: accents folded (Zürich → Zurich), anything else non-ASCII,
    quotes, backslashes and control characters dropped; ``download.<ext>`` when nothing is left."""
    folded = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii")
    cleaned = _NOT_IN_QUOTED_FILENAME.sub("", folded).strip()
    stem, dot, extension = cleaned.rpartition(".") if "." in cleaned else (cleaned, "", "")
    if not stem.strip(" .-_"):
        return f"download.{extension}" if extension.strip(" .-_") else "download"
    return cleaned


def attachment_disposition(filename: str) -> str:
    """``attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded name>``."""
    # safe="": quote() then leaves only RFC 5987 attr-chars (letters, digits, "-._~") unencoded.
    return f"attachment; filename=\"{ascii_filename(filename)}\"; filename*=UTF-8''{quote(filename, safe='')}"


def csv_download(filename: str, rows: Iterable[Sequence]) -> HttpResponse:
    """A CSV attachment of ``rows`` (the first one being the header), every text cell neutralised."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = attachment_disposition(filename)
    writer = csv.writer(response)
    writer.writerows([spreadsheet_safe(cell) for cell in row] for row in rows)
    return response
