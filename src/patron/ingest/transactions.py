"""What ingest hands on: the clean transactions, the rejected rows and the report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["IngestReport", "Transactions"]


@dataclass(frozen=True)
class IngestReport:
    """Where every input row went.

    ``rows_read == purchases + returns + duplicates + rejected`` always holds: a row is
    either kept (as a purchase or a return), dropped as an exact duplicate, or rejected with
    a reason.  ``possible_duplicates`` counts identical rows that were *kept* because the
    file has no order id to tell two real orders apart from one exported twice;
    ``blank_rows`` counts wholly empty rows between data rows, which are not rows read.
    """

    source: str
    rows_read: int
    purchases: int
    returns: int
    duplicates: int
    rejected: int
    customers: int
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    possible_duplicates: int = 0
    ids_restored: int = 0
    blank_rows: int = 0
    columns: dict[str, str] = field(default_factory=dict)
    encoding: str | None = None
    sheet: str | None = None

    def to_dict(self) -> dict:
        """The report as plain JSON-ready values."""
        return asdict(self)


class Transactions:
    """A clean transactions table with the account of how it was made.

    The table has ``customer_id`` (string), ``ts`` (timestamp), ``amount`` (float64,
    negative for a return), ``order_id`` (string, may be null) and every other input
    column, kept as read.  ``rejected`` has one row per rejected input row: ``line`` (as
    in the file), ``reason`` (a stable code), ``column``, ``value``, and the raw cells.
    """

    def __init__(self, table: pa.Table, rejected: pa.Table, report: IngestReport) -> None:
        self._table = table
        self.rejected = rejected
        self.report = report

    def to_arrow(self) -> pa.Table:
        """The clean transactions as an Arrow table."""
        return self._table

    def to_pandas(self):
        """The clean transactions as a pandas DataFrame (needs pandas)."""
        return self._table.to_pandas()

    def to_polars(self):
        """The clean transactions as a polars DataFrame (needs polars)."""
        import polars as pl

        return pl.from_arrow(self._table)

    def __len__(self) -> int:
        return self._table.num_rows

    def __repr__(self) -> str:
        r = self.report
        return (
            f"<Transactions {r.source!r}: {len(self)} rows, {r.customers} customers, "
            f"{r.returns} returns, {r.rejected} rejected>"
        )
