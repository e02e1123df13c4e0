"""Excel workbooks: title rows above the header, several sheets, numbers where text belongs.

Cells are turned into text the way the rest of ingest expects: dates as ISO text, numbers
as ``repr`` (so ``13812345678.0`` still shows an id that Excel stored as a number, and
the identifier parser can restore or report it).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa

from patron.errors import InputError
from patron.i18n import _
from patron.ingest.columns import header_score
from patron.ingest.raw import RawTable, unique_names

__all__ = ["read_excel"]

_HEADER_SCAN_ROWS = 30


def _text(cell: object) -> str | None:
    if cell is None:
        return None
    if isinstance(cell, dt.datetime):
        return cell.isoformat(sep=" ")
    if isinstance(cell, dt.date | dt.time):
        return cell.isoformat()
    if isinstance(cell, bool):
        return str(cell).lower()
    if isinstance(cell, float):
        return repr(cell)
    return str(cell)


def _header_row(rows: list[tuple]) -> int:
    for i, row in enumerate(rows):
        if header_score(row) >= 2:
            return i
    return -1


def read_excel(path: Path, *, sheet: str | int | None = None) -> RawTable:
    """Read one sheet: the chosen one, else the first whose header patron recognises."""
    from zipfile import BadZipFile

    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    file = str(path)
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, BadZipFile, OSError, KeyError, ValueError) as exc:
        raise InputError(_("ingest.unreadable", file=file, detail=str(exc)), file=file) from exc
    try:
        names = book.sheetnames
        if sheet is not None:
            if isinstance(sheet, int) and not 0 <= sheet < len(names):
                raise InputError(
                    _("ingest.sheet_not_found", file=file, sheet=sheet, sheets=", ".join(names)),
                    file=file,
                )
            if isinstance(sheet, str) and sheet not in names:
                raise InputError(
                    _("ingest.sheet_not_found", file=file, sheet=sheet, sheets=", ".join(names)),
                    file=file,
                )
            candidates = [names[sheet] if isinstance(sheet, int) else sheet]
        else:
            candidates = names
        for name in candidates:
            rows = book[name].iter_rows(values_only=True)
            head = []
            for row in rows:
                head.append(row)
                if len(head) >= _HEADER_SCAN_ROWS:
                    break
            index = _header_row(head)
            if index < 0 and sheet is not None:
                index = next((i for i, r in enumerate(head) if any(c is not None for c in r)), -1)
            if index < 0:
                continue
            return _read_sheet(file, name, head, index, rows)
    finally:
        book.close()
    raise InputError(
        _("ingest.no_header_in_workbook", file=file, sheets=", ".join(names)), file=file
    )


def _read_sheet(file: str, name: str, head: list[tuple], index: int, rest) -> RawTable:
    header = list(head[index])
    while header and header[-1] is None:
        header.pop()
    columns = unique_names(header)
    width = len(columns)
    cells: list[list[str | None]] = [[] for _ in columns]
    lines: list[int] = []
    malformed: list[tuple[int, str]] = []
    number = index + 1  # 1-based sheet row of the header
    blank = pending = 0

    def take(row: tuple) -> None:
        # Formatting often extends a sheet with empty rows: only blank rows *between* data
        # rows are counted, trailing ones are not rows of the export at all.
        nonlocal number, blank, pending
        number += 1
        values = [_text(c) for c in row]
        if not any(v is not None and v.strip() for v in values):
            pending += 1
            return
        blank, pending = blank + pending, 0
        if len(values) > width and any(v is not None and v.strip() for v in values[width:]):
            malformed.append((number, "\t".join(v or "" for v in values)))
            return
        values = (values + [None] * width)[:width]
        for col, v in zip(cells, values, strict=True):
            col.append(v)
        lines.append(number)

    for row in head[index + 1 :]:
        take(row)
    for row in rest:
        take(row)
    table = pa.table({c: pa.array(v, pa.string()) for c, v in zip(columns, cells, strict=True)})
    return RawTable(
        table,
        np.asarray(lines, dtype=np.int64),
        file,
        sheet=name,
        blank_rows=blank,
        malformed=malformed,
    )
