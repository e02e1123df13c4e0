"""A source read as it is: columns, cells and the line each row came from.

Every reader (delimited text, Excel, Parquet, data frames) produces a :class:`RawTable`, so
the rest of ingest works the same whatever the format, and every rejected row can still be
traced to its line in the user's file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from patron.errors import InputError
from patron.i18n import _

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["RawTable", "load_source", "unique_names"]


@dataclass
class RawTable:
    """Cells as read (text for CSV and Excel, typed for Parquet and frames).

    ``lines`` holds, for each row, its line in the file (header = its own line) or its
    1-based position for in-memory sources.  ``blank_rows`` counts wholly empty rows that
    were skipped: they hold no data, but the report still shows them.  ``malformed`` holds
    rows that could not be split into the header's columns, as (line, text): rejected rows.
    """

    table: pa.Table
    lines: np.ndarray
    source: str
    encoding: str | None = None
    sheet: str | None = None
    blank_rows: int = 0
    malformed: list[tuple[int, str]] = field(default_factory=list)


def unique_names(names: list[object]) -> list[str]:
    """Header cells as usable, distinct column names (blank → column_3, repeats → name_2)."""
    seen: dict[str, int] = {}
    out = []
    for i, name in enumerate(names, start=1):
        text = "" if name is None else str(name).strip()
        text = text or f"column_{i}"
        if text in seen:
            seen[text] += 1
            text = f"{text}_{seen[text]}"
        else:
            seen[text] = 1
        out.append(text)
    return out


def load_source(source: Any, *, sheet: str | int | None = None) -> RawTable:
    """Read any supported source into a :class:`RawTable`."""
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.exists():
            raise InputError(_("ingest.file_not_found", file=str(path)), file=str(path))
        suffix = path.suffix.lower()
        if suffix in (".xlsx", ".xlsm"):
            from patron.ingest.excel import read_excel

            return read_excel(path, sheet=sheet)
        if suffix == ".xls":
            raise InputError(_("ingest.xls_unsupported", file=str(path)), file=str(path))
        if suffix == ".parquet":
            from patron.ingest.frames import read_parquet

            return read_parquet(path)
        from patron.ingest.delimited import read_delimited

        return read_delimited(path)
    from patron.ingest.frames import read_frame

    return read_frame(source)
