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
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from patron.errors import InputError
    from patron.i18n import _

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        pq.write_table(table, path)
    elif suffix in (".csv", ".tsv"):
        with path.open("wb") as fh:
            fh.write(codecs.BOM_UTF8)
            options = pacsv.WriteOptions(delimiter="\t" if suffix == ".tsv" else ",")
            pacsv.write_csv(table, fh, write_options=options)
    else:
        raise InputError(_("output.bad_suffix", file=str(path)), file=str(path))
    return path
