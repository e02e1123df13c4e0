"""Where the summary runs: the transactions as an Ibis table on some backend.

An Ibis table stays on its own backend.  A clean Parquet file (what ``patron ingest``
writes) is read by DuckDB directly.  Everything else goes through
:func:`patron.read_transactions` and is handed to DuckDB as Arrow, without a copy.

What a query would otherwise have to scan for -- the last date (the default ``as_of``) and
whether any row lacks a customer, date or amount -- is taken from Parquet footers and
Arrow null counts when they hold it, so the summary is then a single query.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from patron.errors import InputError
from patron.i18n import _

if TYPE_CHECKING:
    import ibis.expr.types as ir
    import pyarrow as pa

__all__ = [
    "REQUIRED",
    "Source",
    "HashSample",
    "open_source",
    "is_clean_parquet",
    "MEMORY_LIMIT_VARIABLE",
]

REQUIRED = ("customer_id", "ts", "amount")
_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")

# When patron starts DuckDB itself, DuckDB's own default bounds its memory (80% of RAM);
# ``PATRON_DUCKDB_MEMORY_LIMIT`` (e.g. "2GB") sets another bound.  Beyond the bound DuckDB
# spills to a private temporary directory, removed afterwards.  The summary itself is
# written to stay lean (see summary.py), so no tighter default is needed: a tight bound
# makes DuckDB spill and costs time (bench/README.md).
MEMORY_LIMIT_VARIABLE = "PATRON_DUCKDB_MEMORY_LIMIT"


@dataclass
class Source:
    """The raw transactions table, how to run an expression on it, and what is known.

    ``table`` is the user's table as it is (extra columns and all), so that filters reach
    the scan; :meth:`rows` gives the normalised ``customer_id, ts, amount`` of some rows.
    """

    table: ir.Table
    run: Any  # expr -> pyarrow.Table
    last_date: dt.date | None = None
    rows_with_nulls: int | None = None
    stats_known: bool = False
    _cleanup: list = field(default_factory=list)

    def rows(self, *predicates: Any) -> ir.Table:
        """``customer_id`` (text), ``ts`` and ``amount`` (float) of the rows kept."""
        t = self.table
        if self.rows_with_nulls:
            predicates = (
                *predicates,
                t.customer_id.notnull(),
                t.ts.notnull(),
                t.amount.notnull(),
            )
        if predicates:
            t = t.filter(*predicates)
        cid = t.customer_id
        return t.select(
            customer_id=cid if cid.type().is_string() else cid.cast("string"),
            ts=t.ts,
            amount=t.amount.cast("float64"),
        )

    def learn_stats(self) -> None:
        """Last date and rows with nulls, in one pass on the source's own backend."""
        t = self.table
        has_null = t.customer_id.isnull() | t.ts.isnull() | t.amount.isnull()
        row = self.run(t.aggregate(last=t.ts.max(), nulls=has_null.sum())).to_pylist()[0]
        self.last_date = _as_date(row["last"])
        self.rows_with_nulls = int(row["nulls"] or 0)
        self.stats_known = True

    def close(self) -> None:
        """Release what patron opened for this source (DuckDB and its spill directory)."""
        for step in reversed(self._cleanup):
            step()
        self._cleanup.clear()


@dataclass(frozen=True)
class HashSample:
    """The customers of a clean Parquet file whose id hashes to 0 modulo ``every``.

    Whole histories, so a summary of the sample is a summary of those customers.  Given to
    :func:`open_source`, it is read like the file itself, with the footer's statistics
    (the file's last date and null count bound the sample's), so summarising it scans the
    file once instead of twice.
    """

    path: Path
    every: int

    def filter(self, table: ir.Table) -> ir.Table:
        """The Ibis filter: DuckDB's hash, as a signed integer (see ``CleanParquet``)."""
        return table.filter(table.customer_id.hash() % self.every == 0)


def _as_date(value: object) -> dt.date | None:
    if value is None:
        return None
    return value.date() if isinstance(value, dt.datetime) else value


def open_source(tx: Any) -> Source:
    """The :class:`Source` for anything :func:`patron.summarize` accepts."""
    import ibis

    if isinstance(tx, ibis.expr.types.Table):
        _check_columns(tx)
        return Source(tx, lambda expr: expr.to_pyarrow())  # runs on the table's backend
    if isinstance(tx, HashSample):
        source = _clean_parquet(Path(tx.path))
        if source is None:
            raise ValueError(f"{tx.path} is not a clean transactions Parquet file")
        if tx.every > 1:
            source.table = tx.filter(source.table)
        return source
    if isinstance(tx, str | Path) and Path(tx).suffix.lower() in _PARQUET_SUFFIXES:
        source = _clean_parquet(Path(tx))
        if source is not None:
            return source
    # A Transactions can only exist once its module is loaded; looking it up there keeps
    # the fast paths from importing the readers (and pandas with them).
    loaded = sys.modules.get("patron.ingest.transactions")
    if loaded is None or not isinstance(tx, loaded.Transactions):
        from patron.ingest import read_transactions

        tx = read_transactions(tx)
    return _from_arrow(tx.to_arrow())


def _duckdb(cleanup: list):
    """A private in-memory DuckDB with bounded memory and its own spill directory.

    Returns the Ibis backend and a runner that executes an expression's SQL straight on
    DuckDB into Arrow (Ibis' own ``to_pyarrow`` converts through pandas, which costs an
    import and a copy for nothing here).
    """
    import duckdb
    import ibis

    spill = tempfile.mkdtemp(prefix="patron-duckdb-")
    cleanup.append(lambda: shutil.rmtree(spill, ignore_errors=True))
    config = {"temp_directory": spill}
    if os.environ.get(MEMORY_LIMIT_VARIABLE):
        config["memory_limit"] = os.environ[MEMORY_LIMIT_VARIABLE]
    raw = duckdb.connect(config=config)
    cleanup.append(raw.close)
    con = ibis.duckdb.from_connection(raw)

    def run(expr: ir.Table) -> pa.Table:
        return raw.sql(con.compile(expr)).to_arrow_table()

    return con, raw, run


def _from_arrow(table: pa.Table) -> Source:
    import pyarrow.compute as pc

    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise _missing(missing, table.column_names)
    table = table.select(list(REQUIRED))
    cleanup: list = []
    con, raw, run = _duckdb(cleanup)
    raw.register("patron_transactions", table)  # DuckDB scans the Arrow buffers in place
    view = con.table("patron_transactions")
    _check_columns(view)
    return Source(
        view,
        run,
        last_date=_as_date(pc.max(table.column("ts")).as_py()) if table.num_rows else None,
        rows_with_nulls=sum(table.column(c).null_count for c in REQUIRED),
        stats_known=True,
        _cleanup=cleanup,
    )


def is_clean_parquet(path: Path) -> bool:
    """Whether ``path`` is a Parquet file with typed ``customer_id``, ``ts`` and ``amount``."""
    return _parquet_file(Path(path)) is not None


def _parquet_file(path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid):
        return None  # read_transactions gives the user the proper message
    schema = file.schema_arrow
    if not all(name in schema.names for name in REQUIRED):
        return None
    cid, ts, amount = (schema.field(name).type for name in REQUIRED)
    if not (
        (pa.types.is_string(cid) or pa.types.is_large_string(cid))
        and (pa.types.is_timestamp(ts) or pa.types.is_date(ts))
        and (
            pa.types.is_floating(amount)
            or pa.types.is_integer(amount)
            or pa.types.is_decimal(amount)
        )
    ):
        return None
    return file


def _clean_parquet(path: Path) -> Source | None:
    """The fast path: a Parquet file that already is a clean transactions table."""
    file = _parquet_file(path)
    if file is None:
        return None
    cleanup: list = []
    con, _, run = _duckdb(cleanup)
    source = Source(con.read_parquet(path), run, _cleanup=cleanup)
    _parquet_stats(file, source)
    return source


def _parquet_stats(file, source: Source) -> None:
    """Last date and null count from the footer statistics, when every row group has them."""
    meta = file.metadata
    index = {meta.schema.column(i).name: i for i in range(meta.num_columns)}
    last = None
    nulls = 0
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for name in REQUIRED:
            stats = group.column(index[name]).statistics
            if stats is None or not stats.has_null_count:
                return
            nulls += stats.null_count
        stats = group.column(index["ts"]).statistics
        if group.num_rows > stats.null_count:
            if not stats.has_min_max or not isinstance(stats.max, dt.date):
                return
            last = stats.max if last is None else max(last, stats.max)
    source.last_date = _as_date(last)
    source.rows_with_nulls = nulls
    source.stats_known = True


def _missing(missing: list[str], found: list[str]) -> InputError:
    return InputError(
        _("engine.missing_columns", missing=", ".join(missing), found=", ".join(found)),
        column=missing[0],
    )


def _check_columns(table: ir.Table) -> None:
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise _missing(missing, list(table.columns))
    checks = (
        ("customer_id", lambda t: t.is_string() or t.is_integer(), "engine.bad_type.customer_id"),
        ("ts", lambda t: t.is_timestamp() or t.is_date(), "engine.bad_type.ts"),
        ("amount", lambda t: t.is_numeric(), "engine.bad_type.amount"),
    )
    for name, ok, key in checks:
        dtype = table[name].type()
        if not ok(dtype):
            raise InputError(_(key, type=dtype), column=name)
