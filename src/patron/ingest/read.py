"""`read_transactions`: any export in, one clean transactions table out, every row accounted.

The steps are deliberately separate so each can be reasoned about: load the source as
text (:mod:`patron.ingest.raw`), find the columns (:mod:`~patron.ingest.columns`), parse
identifiers, dates and amounts column-wise, reject what cannot be used (with the line and
the reason), then sort out duplicates (:mod:`~patron.ingest.duplicates`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from patron.errors import InputError
from patron.i18n import _
from patron.ingest.amounts import parse_amounts
from patron.ingest.columns import recognise
from patron.ingest.dates import DateParseError, parse_date, parse_dates
from patron.ingest.duplicates import classify_duplicates
from patron.ingest.identifiers import normalise_ids
from patron.ingest.raw import RawTable, load_source
from patron.ingest.transactions import IngestReport, Transactions

__all__ = ["read_transactions"]

CANONICAL = {"customer": "customer_id", "date": "ts", "amount": "amount", "order_id": "order_id"}


def read_transactions(
    source: Any,
    *,
    customer: str | None = None,
    date: str | None = None,
    amount: str | None = None,
    order_id: str | None = None,
    sheet: str | int | None = None,
    as_of: str | dt.date | None = None,
    strict: bool = False,
    dedupe: bool = False,
) -> Transactions:
    """Read an order export into a clean transactions table.

    Parameters
    ----------
    source
        A path (CSV, TSV, .xlsx, Parquet), a pandas or polars DataFrame, an Arrow table or
        an Ibis table.
    customer, date, amount, order_id
        Column names, when patron cannot recognise them on its own.
    sheet
        Excel sheet name or 0-based index; default the first sheet with a known header.
    as_of
        Rows dated after this (a date means the whole day) are rejected; by default, rows
        dated after now, which are typos (2052 for 2025) rather than orders.
    strict
        Raise :class:`~patron.errors.InputError` on the first rejected row instead of
        reporting it.
    dedupe
        Without an order id, identical rows may be two real orders; they are kept and
        counted as possible duplicates unless ``dedupe`` drops them.

    Returns
    -------
    Transactions
        ``.to_arrow()`` the clean table, ``.rejected`` the rejected rows, ``.report`` the
        account: ``rows_read == purchases + returns + duplicates + rejected``.

    Examples
    --------
    >>> import pyarrow as pa, patron
    >>> tx = patron.read_transactions(pa.table({
    ...     "客户编号": ["C1", "C1", ""], "下单时间": ["2024年3月5日", "2024-03-09", "2024-03-10"],
    ...     "实付金额": ["¥1,234.50", "-20", "5"]}))
    >>> tx.report.purchases, tx.report.returns, tx.report.rejected
    (1, 1, 1)
    """
    raw = load_source(source, sheet=sheet)
    cut = _as_of_cut(as_of)
    roles = recognise(
        raw.table.column_names,
        source=raw.source,
        customer=customer,
        date=date,
        amount=amount,
        order_id=order_id,
    )
    raw, blank = _drop_blank_rows(raw)
    if raw.table.num_rows == 0 and not raw.malformed:
        raise InputError(_("ingest.empty", file=raw.source), file=raw.source)
    return _build(raw, roles, blank=blank, cut=cut, strict=strict, dedupe=dedupe)


def _as_of_cut(as_of: str | dt.date | None) -> dt.datetime | None:
    """The first instant that is *after* ``as_of`` (default: now)."""
    if as_of is None:
        return dt.datetime.now()
    if isinstance(as_of, dt.datetime):
        return as_of
    if isinstance(as_of, dt.date):
        return dt.datetime.combine(as_of, dt.time()) + dt.timedelta(days=1)
    try:
        parsed = parse_date(str(as_of))
    except DateParseError as exc:
        raise InputError(_("ingest.bad_as_of", value=as_of), value=as_of) from exc
    has_time = any(ch in str(as_of) for ch in ":时")
    return parsed if has_time else parsed + dt.timedelta(days=1)


def _drop_blank_rows(raw: RawTable) -> tuple[RawTable, int]:
    table = raw.table
    if table.num_rows == 0 or table.num_columns == 0:
        return raw, 0
    filled = None
    for col in table.columns:
        text = pc.utf8_trim_whitespace(pc.cast(col, pa.string()))
        has = pc.fill_null(pc.greater(pc.utf8_length(text), 0), False)
        filled = has if filled is None else pc.or_(filled, has)
    blank = table.num_rows - pc.sum(filled).as_py() if filled is not None else 0
    if blank == 0:
        return raw, 0
    keep = np.asarray(filled)
    raw = RawTable(
        table.filter(filled),
        raw.lines[keep],
        raw.source,
        raw.encoding,
        raw.sheet,
        raw.blank_rows,
        raw.malformed,
    )
    return raw, blank


def _first_reason(*candidates: tuple[pa.Array, str]) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the first failing field's reason and column (in the order given)."""
    n = len(candidates[0][0])
    reason = np.full(n, None, dtype=object)
    column = np.full(n, None, dtype=object)
    for reasons, name in candidates:
        r = reasons.to_numpy(zero_copy_only=False).astype(object)
        fill = (reason == None) & (r != None)  # noqa: E711 - elementwise on object arrays
        reason[fill] = r[fill]
        column[fill] = name
    return reason, column


def _rename(reasons: pa.Array, mapping: dict[str, str | None]) -> pa.Array:
    out = reasons
    for old, new in mapping.items():
        hit = pc.fill_null(pc.equal(out, old), False)
        out = pc.if_else(hit, pa.scalar(new, pa.string()), out)
    return out


def _build(raw, roles, *, blank, cut, strict, dedupe) -> Transactions:
    table = raw.table
    n = table.num_rows
    cust, cust_reason, restored = normalise_ids(table[roles["customer"]])
    cust_reason = _rename(
        cust_reason,
        {"id_missing": "customer_missing", "id_precision_lost": "customer_id_precision_lost"},
    )
    ts, date_reason = parse_dates(table[roles["date"]])
    amount, amount_reason = parse_amounts(table[roles["amount"]])
    late = pc.fill_null(pc.greater_equal(ts, pa.scalar(cut, ts.type)), False)
    checks = [
        (cust_reason, roles["customer"]),
        (date_reason, roles["date"]),
        (pc.if_else(late, "date_after_as_of", pa.nulls(n, pa.string())), roles["date"]),
    ]
    checks.append((amount_reason, roles["amount"]))
    if "order_id" in roles:
        oid, oid_reason, restored_o = normalise_ids(table[roles["order_id"]])
        restored += restored_o
        # An order id is optional: missing is fine, a damaged one is not.
        oid_reason = _rename(
            oid_reason, {"id_missing": None, "id_precision_lost": "order_id_precision_lost"}
        )
        checks.append((oid_reason, roles["order_id"]))
    else:
        oid = pa.nulls(n, pa.string())
    reason, column = _first_reason(*checks)

    valid = reason == None  # noqa: E711
    status = classify_duplicates(table, oid, amount, valid, has_order_id="order_id" in roles)
    conflict = status == "conflict"
    reason[conflict] = "order_id_conflict"
    column[conflict] = roles.get("order_id")
    duplicate = (status == "duplicate") | ((status == "possible") & dedupe)
    keep = (reason == None) & ~duplicate  # noqa: E711

    clean = _clean_table(table, roles, cust, ts, amount, oid, keep)
    rejected = _rejected_table(raw, roles, reason, column)
    kept_amount = np.asarray(clean["amount"])
    by_reason: dict[str, int] = {}
    for r in rejected["reason"].to_pylist():
        by_reason[r] = by_reason.get(r, 0) + 1
    report = IngestReport(
        source=raw.source,
        rows_read=n + len(raw.malformed),
        purchases=int((kept_amount >= 0).sum()),
        returns=int((kept_amount < 0).sum()),
        duplicates=int(duplicate[reason == None].sum()),  # noqa: E711
        rejected=rejected.num_rows,
        customers=len(pc.unique(clean["customer_id"])),
        rejected_by_reason=dict(sorted(by_reason.items())),
        possible_duplicates=int(((status == "possible") & ~dedupe).sum()),
        ids_restored=int(restored),
        columns={CANONICAL[k]: v for k, v in roles.items()},
        encoding=raw.encoding,
        sheet=raw.sheet,
        blank_rows=blank + raw.blank_rows,
    )
    if strict and rejected.num_rows:
        raise _strict_error(raw.source, rejected)
    return Transactions(clean, rejected, report)


def _clean_table(table, roles, cust, ts, amount, oid, keep) -> pa.Table:
    mask = pa.array(keep)
    columns = {"customer_id": cust, "ts": ts, "amount": amount, "order_id": oid}
    out = {k: v.filter(mask) for k, v in columns.items()}
    used = set(roles.values())
    for name in table.column_names:
        if name in used:
            continue
        target = name if name not in out else f"{name}_source"
        out[target] = table[name].filter(mask)
    return pa.table(out)


def _rejected_table(raw: RawTable, roles, reason, column) -> pa.Table:
    table = raw.table
    rows = np.flatnonzero(reason != None)  # noqa: E711
    index = pa.array(rows, pa.int64())
    value = pa.array([None] * len(rows), pa.string())
    if len(rows):
        cells = {name: pc.cast(table[name], pa.string()).take(index) for name in table.column_names}
        value = pa.array(
            [cells[c][i].as_py() if c is not None else None for i, c in enumerate(column[rows])],
            pa.string(),
        )
    else:
        cells = {name: pa.array([], pa.string()) for name in table.column_names}
    out = {
        "line": pa.array(raw.lines[rows], pa.int64()),
        "reason": pa.array(list(reason[rows]), pa.string()),
        "column": pa.array(list(column[rows]), pa.string()),
        "value": value,
    }
    for name, values in cells.items():
        out[name if name not in out else f"{name}_source"] = values
    rejected = pa.table(out)
    if raw.malformed:
        extra = pa.table(
            {
                "line": pa.array([m[0] for m in raw.malformed], pa.int64()),
                "reason": pa.array(["row_malformed"] * len(raw.malformed), pa.string()),
                "column": pa.nulls(len(raw.malformed), pa.string()),
                "value": pa.array([m[1] for m in raw.malformed], pa.string()),
            }
        )
        rejected = pa.concat_tables([rejected, extra], promote_options="default")
    return rejected.sort_by("line")


def _strict_error(source: str, rejected: pa.Table) -> InputError:
    first = rejected.slice(0, 1).to_pylist()[0]
    return InputError(
        _(
            "ingest.strict_rejected",
            file=source,
            line=first["line"],
            column=first["column"] or "-",
            value=first["value"],
            reason=_(f"reason.{first['reason']}"),
            more=rejected.num_rows - 1,
        ),
        file=source,
        line=first["line"],
        column=first["column"],
        value=first["value"],
    )
