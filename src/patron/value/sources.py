"""What ``analyze`` reads: a clean Parquet file in place, anything else through ingest.

A Parquet file that already is a clean transactions table (what ``patron ingest`` writes:
text customer ids, timestamps, numeric amounts, no missing values) needs none of the
parsing and checking of :func:`patron.read_transactions`; DuckDB summarises it where it
lies, which on 10M rows saves most of the run.  Its report is counted by DuckDB and its
rows are read only if something asks for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from patron.ingest.transactions import IngestReport, Transactions

__all__ = ["CleanParquet", "open_transactions"]


class CleanParquet(Transactions):
    """A clean Parquet file standing in for the transactions read from it."""

    def __init__(self, path: Path, report: IngestReport, *, sample_every: int = 1) -> None:
        import pyarrow as pa

        self.path = path
        self.sample_every = sample_every
        self.report = report
        self.rejected = pa.table(
            {name: pa.array([], pa.string()) for name in ("line", "reason", "column", "value")}
        )
        self._table = None

    def sample_sql(self) -> str:
        """The SQL condition keeping the sampled customers (all of them by default)."""
        if self.sample_every <= 1:
            return "TRUE"
        # The same test as the Ibis filter of sampled_table compiles to (a signed hash).
        return f"CAST(CAST(hash(customer_id) AS BIT) AS BIGINT) % {self.sample_every} = 0"

    def sampled_table(self):
        """The sampled rows for :func:`patron.summarize` (a :class:`HashSample`)."""
        from patron.engine.sources import HashSample

        return HashSample(self.path, self.sample_every)

    def to_arrow(self):
        """The rows, read on first use."""
        if self._table is None:
            import pyarrow.parquet as pq

            self._table = pq.read_table(self.path)
        return self._table

    def __len__(self) -> int:
        return self.report.rows_read


def _clean_report(path: Path, *, count_customers: bool = True) -> IngestReport | None:
    """Counts of a clean Parquet file, or None when it is not clean.

    Counting distinct customers is most of the scan's cost; a caller that learns the number
    from the summary anyway passes ``count_customers=False`` and fills it in (it is 0
    until then).
    """
    import duckdb

    from patron.engine.sources import is_clean_parquet

    if not is_clean_parquet(path):
        return None
    with duckdb.connect() as con:
        rows, nulls, purchases, returns, customers = con.execute(
            """
            SELECT count(*),
                   count(*) FILTER (customer_id IS NULL OR ts IS NULL OR amount IS NULL),
                   count(*) FILTER (amount >= 0), count(*) FILTER (amount < 0),
                   {customers}
            FROM read_parquet($path)
            """.replace("{customers}", "count(DISTINCT customer_id)" if count_customers else "0"),
            {"path": str(path)},
        ).fetchone()
    if nulls:
        return None  # read_transactions reports each such row
    return IngestReport(
        source=str(path),
        rows_read=rows,
        purchases=purchases,
        returns=returns,
        duplicates=0,
        rejected=0,
        customers=customers,
        columns={"customer_id": "customer_id", "ts": "ts", "amount": "amount"},
    )


def open_transactions(source: Any, *, count_customers: bool = True, **options: Any) -> Transactions:
    """The transactions of ``source``: in place for a clean Parquet file, else ingested.

    ``count_customers=False``: a clean Parquet file's report leaves ``customers`` at 0 for
    the caller to fill in (see :func:`_clean_report`).
    """
    from patron.ingest import read_transactions

    if isinstance(source, Transactions):
        return source
    plain = all(options.get(k) is None for k in ("customer", "date", "amount", "order_id"))
    if plain and isinstance(source, str | Path) and str(source).lower().endswith(".parquet"):
        report = _clean_report(Path(source), count_customers=count_customers)
        if report is not None:
            return CleanParquet(Path(source), report)
    return read_transactions(source, **options)
