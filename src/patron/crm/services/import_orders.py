"""The orders of an import: natural keys, UTC times, and one upsert over a staging table.

An order's natural key is (source, order number). A file without order numbers still
needs one, or importing the next export (which repeats last month's orders) would count
them twice: each row gets ``auto-`` and a hash of its customer, time, amount and how many
identical rows came before it in the file, so the same export gives the same keys and two
identical rows (two real coffees) stay two orders.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from patron.crm.services import bulk

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlalchemy.orm import Session

__all__ = ["OrderCounts", "order_numbers", "local_to_utc", "upsert_orders"]

_STAGE = "patron_import_orders"
_COLUMNS = ("customer_id", "ordered_at", "amount", "status", "channel")


@dataclass(frozen=True)
class OrderCounts:
    """How many of a file's orders were new, changed, or already stored as they are."""

    inserted: int
    updated: int
    unchanged: int


def order_numbers(table: pa.Table) -> pa.Array:
    """Each row's order number: its order id, else a key made from the row (see above)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = table["order_id"].combine_chunks()
    missing = np.asarray(pc.is_null(ids))
    if not missing.any():
        return pc.utf8_slice_codeunits(ids, 0, 128)
    rows = pa.array(np.flatnonzero(missing))
    customers = table["customer_id"].take(rows).to_pylist()
    times = pc.strftime(table["ts"].take(rows), "%Y-%m-%dT%H:%M:%S").to_pylist()
    amounts = table["amount"].take(rows).to_pylist()
    seen: Counter[str] = Counter()
    keys = []
    for customer, time, amount in zip(customers, times, amounts, strict=True):
        base = f"{customer}\x1f{time}\x1f{amount:.2f}"
        digest = hashlib.sha256(f"{base}\x1f{seen[base]}".encode()).hexdigest()
        seen[base] += 1
        keys.append("auto-" + digest[:32])
    out = ids.to_pylist()
    for i, key in zip(np.flatnonzero(missing).tolist(), keys, strict=True):
        out[i] = key
    return pc.utf8_slice_codeunits(pa.array(out, pa.string()), 0, 128)


def local_to_utc(ts: pa.Array | pa.ChunkedArray, timezone: str) -> pa.Array:
    """Shop-local wall-clock times (as exports write them) as UTC instants."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if ts.type.tz is not None:
        return pc.cast(ts, pa.timestamp("us", "UTC"))
    local = pc.assume_timezone(ts, timezone, ambiguous="earliest", nonexistent="earliest")
    return pc.cast(local, pa.timestamp("us", "UTC"))


def upsert_orders(
    session: Session, orders: pa.Table, *, source: str, batch_id: int, now: dt.datetime
) -> OrderCounts:
    """Insert new orders, update changed ones, leave equal ones alone.

    ``orders`` has ``order_no`` (unique), ``customer_id``, ``ordered_at`` (UTC),
    ``amount`` (rounded to cents), ``status`` and ``channel``. Changed and new rows are
    stamped with ``batch_id``.
    """
    import pyarrow as pa
    from sqlalchemy import text

    kind = bulk.dialect(session)
    connection = session.connection()
    rows = orders.num_rows
    values = {"source": source, "batch": batch_id, "now": bulk.db_time(session, now)}
    seen = connection.execute(
        text("SELECT 1 FROM orders WHERE source = :source LIMIT 1"), values
    ).first()
    if seen is None:
        # The first import from a source (the big historical load): nothing to compare
        # with, so the rows go straight in. The caller holds the source's import lock.
        stamped = orders.append_column("source", pa.array([source] * rows, pa.string()))
        stamped = stamped.append_column("batch_id", pa.array([batch_id] * rows, pa.int64()))
        times = pa.array([now] * rows, pa.timestamp("us", "UTC"))
        stamped = stamped.append_column("created_at", times).append_column("updated_at", times)
        bulk.load_rows(session, "orders", bulk.db_values(stamped, kind))
        return OrderCounts(rows, 0, 0)

    bulk.create_temp(
        session,
        _STAGE,
        [
            ("order_no", "text"),
            ("customer_id", "int"),
            ("ordered_at", "time"),
            ("amount", "money"),
            ("status", "text"),
            ("channel", "text"),
        ],
    )
    bulk.load_rows(session, _STAGE, bulk.db_values(orders, kind))
    if kind == "postgresql":
        connection.exec_driver_sql(f"CREATE UNIQUE INDEX ON {_STAGE} (order_no)")
        connection.exec_driver_sql(f"ANALYZE {_STAGE}")
    changed = bulk.distinct_from(session, [(f"o.{c}", f"s.{c}") for c in _COLUMNS])
    assignments = ", ".join(f"{c} = s.{c}" for c in _COLUMNS)
    updated = connection.execute(
        text(
            f"UPDATE orders AS o SET {assignments}, batch_id = :batch, updated_at = :now "
            f"FROM {_STAGE} AS s "
            f"WHERE o.source = :source AND o.order_no = s.order_no AND {changed}"
        ),
        values,
    ).rowcount
    # No ON CONFLICT: imports of one source are serialised (see imports.import_file), and
    # the anti-join costs less than speculative insertion.
    names = ", ".join(_COLUMNS)
    inserted = connection.execute(
        text(
            f"INSERT INTO orders (source, order_no, {names}, batch_id, created_at, updated_at) "
            f"SELECT :source, s.order_no, {', '.join(f's.{c}' for c in _COLUMNS)}, "
            f":batch, :now, :now FROM {_STAGE} AS s WHERE NOT EXISTS "
            "(SELECT 1 FROM orders AS o WHERE o.source = :key AND o.order_no = s.order_no)"
        ),
        {**values, "key": source},  # one parameter per use: PostgreSQL types each once
    ).rowcount
    bulk.drop_temp(session, _STAGE)
    return OrderCounts(int(inserted), int(updated), rows - int(inserted) - int(updated))
