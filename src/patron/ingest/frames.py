"""Parquet files and in-memory tables: already typed, so only ids, dates, amounts are checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from patron.errors import InputError
from patron.i18n import _
from patron.ingest.raw import RawTable

__all__ = ["read_parquet", "read_frame"]


def read_parquet(path: Path) -> RawTable:
    """Read a Parquet file; a file that is not Parquet is the user's error, not a crash."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(
            _("ingest.unreadable", file=str(path), detail=str(exc)), file=str(path)
        ) from exc
    return _raw(table, str(path))


def read_frame(source: Any) -> RawTable:
    """An Arrow table, a pandas or polars DataFrame, or an Ibis table (executed once)."""
    kind = type(source).__module__.split(".")[0]
    if isinstance(source, pa.Table):
        table = source
    elif isinstance(source, pa.RecordBatch):
        table = pa.Table.from_batches([source])
    elif kind == "pandas":
        table = pa.Table.from_pandas(source, preserve_index=False)
    elif kind == "polars":
        table = source.to_arrow()
    elif kind == "ibis":
        table = source.to_pyarrow()
    else:
        raise InputError(_("ingest.unsupported_source", kind=type(source).__name__))
    name = f"<{type(source).__module__.split('.')[0]} {type(source).__name__}>"
    return _raw(table, name)


def _raw(table: pa.Table, name: str) -> RawTable:
    table = table.combine_chunks() if table.num_columns else table
    return RawTable(table, np.arange(1, table.num_rows + 1, dtype=np.int64), name)
