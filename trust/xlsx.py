"""Data request results as ``.xlsx``, written with openpyxl (write-only workbooks: rows stream out, memory
stays flat however many rows a request holds).

Text a tenant typed is never a formula: openpyxl would store a string starting with ``=`` as one, so such
cells are written as explicit string cells. Characters XML cannot hold are dropped. ``workbook(sheets)``
writes, ``read_workbook`` reads back (tests, checks)."""

import datetime
import io
import re
from collections.abc import Iterable, Sequence

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell

SHEET_NAME_MAX = 31
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")
# XML 1.0 allows tab, newline, carriage return and everything from U+0020 except surrogates, U+FFFE, U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def sheet_name(title: str, taken: set[str]) -> str:
    """A valid, unique sheet name (at most 31 characters, none of ``[]:*?/\\``)."""
    base = _BAD_SHEET_CHARS.sub(" ", title).strip()[:SHEET_NAME_MAX] or "Sheet"
    name, n = base, 1
    while name.casefold() in taken:
        n += 1
        suffix = f" ({n})"
        name = base[:SHEET_NAME_MAX - len(suffix)] + suffix
    taken.add(name.casefold())
    return name


def _cell(sheet, value):
    if isinstance(value, datetime.datetime | datetime.date):
        value = value.isoformat()
    if isinstance(value, str):
        cell = WriteOnlyCell(sheet, value=_NOT_XML.sub("", value))
        cell.data_type = "s"  # openpyxl would take a leading "=" as a formula: text stays text
        return cell
    return WriteOnlyCell(sheet, value=value)


def workbook(sheets: Sequence[tuple[str, Iterable[Sequence]]]) -> bytes:
    """The ``.xlsx`` file of ``sheets``: (title, rows), the first row of each being its header."""
    book, taken = Workbook(write_only=True), set()
    for title, rows in sheets:
        sheet = book.create_sheet(sheet_name(title, taken))
        for row in rows:
            sheet.append([_cell(sheet, value) for value in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def read_workbook(content: bytes) -> dict[str, list[list[str]]]:
    """The text of every sheet, by name (empty cells as ""; numbers as their text)."""
    book = load_workbook(io.BytesIO(content), read_only=True, data_only=False)
    return {sheet.title: [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
            for sheet in book.worksheets}
