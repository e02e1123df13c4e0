"""Writing result tables where users will open them.

CSV files get a UTF-8 byte-order mark: Excel (and WPS) on a Chinese Windows reads a CSV
without one as GBK and shows 中文 as mojibake; with it, both Excel and pandas read it right.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["write_table"]


def write_table(table: pa.Table, path: str | Path) -> Path:
    """Write ``table`` as CSV or Parquet, chosen by the file's suffix."""
    import pyarrow.parquet as pq

    from patron.errors import InputError
    from patron.i18n import _

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        pq.write_table(table, path)
    elif suffix in (".csv", ".tsv"):
        delimiter = "\t" if suffix == ".tsv" else ","
        with path.open("wb") as fh:
            fh.write(codecs.BOM_UTF8)
            for part in _csv_parts(table, delimiter):
                fh.write(part)
    else:
        raise InputError(_("output.bad_suffix", file=str(path)), file=str(path))
    return path


# Rows per piece when a large CSV is formatted in parallel (Arrow's writer is one thread).
_CSV_PIECE = 500_000


def _csv_parts(table: pa.Table, delimiter: str) -> list[bytes]:
    """The CSV text of ``table`` in order, its pieces formatted on all cores.

    Formatting numbers is what writing a CSV costs; Arrow releases the GIL while it does,
    so threads format pieces side by side (3M customers: 5.7 s on one core).
    """
    import io
    import os
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow.csv as pacsv

    def piece(start: int) -> bytes:
        buffer = io.BytesIO()
        options = pacsv.WriteOptions(delimiter=delimiter, include_header=start == 0)
        pacsv.write_csv(table.slice(start, _CSV_PIECE), buffer, write_options=options)
        return buffer.getvalue()

    starts = range(0, max(table.num_rows, 1), _CSV_PIECE)
    if len(starts) == 1:
        return [piece(0)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return list(pool.map(piece, starts))
