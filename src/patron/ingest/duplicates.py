"""Telling a row exported twice from a real second order.

With an order id, the id says what one order is: the same id with the same cells again is a
duplicate (dropped, counted); the same id with different cells is a conflict (rejected:
patron cannot know which copy is right).  A refund row may share its order's id, so
purchases and returns of one order id are judged separately.  Without an order id, two
identical rows can be two real orders on one day (CDNOW has 255 such rows), so they are kept
and only reported as *possible* duplicates.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["classify_duplicates"]

_SEP = "\x1f"
_NULL = "\x00"


def _row_keys(table: pa.Table) -> pa.Array:
    parts = [pc.fill_null(pc.cast(c, pa.string()), _NULL) for c in table.columns]
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, _SEP)


def classify_duplicates(
    table: pa.Table,
    order_id: pa.Array,
    amount: pa.Array,
    valid: np.ndarray,
    *,
    has_order_id: bool,
) -> np.ndarray:
    """Label each row ``"ok"``, ``"duplicate"``, ``"conflict"`` or ``"possible"``.

    Only rows marked ``valid`` take part; the rest are labelled ``"ok"`` here because they
    are already rejected for another reason.
    """
    import duckdb

    n = table.num_rows
    status = np.full(n, "ok", dtype=object)
    if n == 0 or not valid.any():
        return status
    if has_order_id:
        ids = order_id.filter(pa.array(valid))
        if ids.null_count == 0 and pc.count_distinct(ids).as_py() == len(ids):
            return status  # the usual export: every order id once, nothing to compare
    rows = pa.table(
        {
            "idx": pa.array(np.arange(n, dtype=np.int64)),
            "oid": order_id if has_order_id else pa.nulls(n, pa.string()),
            "neg": pc.fill_null(pc.less(amount, 0), False),
            "k": _row_keys(table),
        }
    ).filter(pa.array(valid))
    con = duckdb.connect()
    try:
        con.register("rows", rows)
        result = con.sql(
            """
            WITH ranked AS (
                SELECT idx, oid,
                       row_number() OVER (PARTITION BY oid, neg, k ORDER BY idx) AS copy,
                       k = first_value(k) OVER (PARTITION BY oid, neg ORDER BY idx) AS same
                FROM rows
            )
            SELECT idx,
                   CASE WHEN oid IS NULL THEN CASE WHEN copy > 1 THEN 'possible' ELSE 'ok' END
                        WHEN NOT same THEN 'conflict'
                        WHEN copy > 1 THEN 'duplicate'
                        ELSE 'ok' END AS status
            FROM ranked WHERE oid IS NULL AND copy > 1 OR oid IS NOT NULL AND (NOT same OR copy > 1)
            """
        ).arrow()
    finally:
        con.close()
    if hasattr(result, "read_all"):
        result = result.read_all()
    status[np.asarray(result["idx"])] = np.asarray(result["status"].to_pylist(), dtype=object)
    return status
