"""Reading a file for import: an order export through ingest, or a customer list.

Both give a :class:`FileData`: one row per customer id with its profile (what
:func:`~patron.crm.services.import_customers.resolve_customers` takes), the orders ready
to stage (for an order export), the rejected rows and the report. A customer list has no
dates or amounts, so it is not a transactions table: it is read with ingest's loaders and
id repair, and its own account of rows (read, customers, duplicates, rejected by reason).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from patron.errors import InputError
from patron.i18n import _

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["FileData", "read_orders", "read_customer_list", "rejected_csv"]


@dataclass
class FileData:
    """What a file holds, ready to load: one row per customer, one per order (or none)."""

    people: pa.Table
    orders: pa.Table | None
    rejected: pa.Table
    report: dict[str, Any]
    rows_read: int


def read_orders(
    path: Path,
    *,
    customer: str | None,
    date: str | None,
    amount: str | None,
    order_id: str | None,
    sheet: str | int | None,
    timezone: str,
) -> FileData:
    """An order export through ingest: its orders, its customers' profiles, its rejects."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from patron.crm.services.import_columns import find_columns, order_statuses, profile_values
    from patron.crm.services.import_orders import local_to_utc, order_numbers
    from patron.ingest import read_transactions

    tx = read_transactions(
        path, customer=customer, date=date, amount=amount, order_id=order_id, sheet=sheet
    )
    table = tx.to_arrow()
    base = ("customer_id", "ts", "amount", "order_id")
    extra = [c for c in table.column_names if c not in base]
    columns = find_columns(extra)
    profile = profile_values(table, columns)
    amounts = pc.round(table["amount"], 2)
    channel = profile.get("channel", pa.nulls(table.num_rows, pa.string()))
    orders = pa.table(
        {
            "order_no": order_numbers(table),
            "ext_id": table["customer_id"],
            "ordered_at": local_to_utc(table["ts"], timezone),
            "amount": amounts,
            "status": order_statuses(table, columns.get("status"), amounts),
            "channel": channel,
        }
    )
    orders = _unique_orders(orders)
    people = _people_from_orders(table, profile)
    report = tx.report.to_dict()
    report["columns"] = {**report["columns"], **columns}
    return FileData(people, orders, tx.rejected, report, tx.report.rows_read)


def _people_from_orders(table: pa.Table, profile: dict[str, pa.Array]) -> pa.Table:
    """One row per customer id: the latest non-blank profile value, the first channel."""
    import pyarrow as pa

    columns = {"ext_id": table["customer_id"], "ts": table["ts"], **profile}
    rows = pa.table(columns).sort_by("ts")
    fields = [c for c in rows.column_names if c not in ("ext_id", "ts")]
    how = [(f, "first" if f == "channel" else "last") for f in fields]
    grouped = rows.group_by("ext_id", use_threads=False).aggregate(how)
    return pa.table({"ext_id": grouped["ext_id"], **{f: grouped[f"{f}_{h}"] for f, h in how}})


def _unique_orders(orders: pa.Table) -> pa.Table:
    """One row per order number; the last row wins.

    Ingest already drops repeats and rejects conflicts, but a number cut to the column's
    128 characters could still repeat.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pc.count_distinct(orders["order_no"]).as_py() == orders.num_rows:
        return orders
    numbered = orders.append_column("i", pa.array(np.arange(orders.num_rows)))
    last = numbered.group_by("order_no", use_threads=False).aggregate([("i", "max")])
    keep = np.sort(last["i_max"].to_numpy())
    return orders.take(pa.array(keep))


def rejected_csv(rejected: pa.Table) -> str:
    """The rejected rows as CSV text for download.

    UTF-8 with a BOM (so Excel opens it as UTF-8), a header line, and each reason in the
    user's language.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as csv

    if rejected.num_rows:
        codes = rejected["reason"].combine_chunks().dictionary_encode()
        texts = [_(f"reason.{code}") for code in codes.dictionary.to_pylist()]
        reasons = pa.array(texts, pa.string()).take(codes.indices)
        rejected = rejected.set_column(rejected.column_names.index("reason"), "reason", reasons)
    columns = [pc.cast(c, pa.string()) if pa.types.is_null(c.type) else c for c in rejected.columns]
    rejected = pa.table(columns, names=rejected.column_names)
    buffer = io.BytesIO()
    csv.write_csv(rejected, buffer)
    return "\ufeff" + buffer.getvalue().decode("utf-8")


def read_customer_list(
    path: Path, *, customer: str | None = None, sheet: str | int | None = None
) -> FileData:
    """A customer list: an id column and profile columns.

    The id column is recognised like ingest's customer column, or named. Rows without an
    id, or with one Excel damaged, are rejected; an id listed twice keeps its last
    non-blank values.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from patron.crm.services.import_columns import find_columns, profile_values
    from patron.ingest.identifiers import normalise_ids
    from patron.ingest.raw import load_source

    raw = load_source(path, sheet=sheet)
    table = raw.table
    names = table.column_names
    id_column = _customer_column(names, customer, raw.source)
    filled = _filled_rows(table)
    blank = int((~filled).sum())
    table = table.filter(pa.array(filled))
    lines = raw.lines[filled]
    if table.num_rows == 0 and not raw.malformed:
        raise InputError(_("ingest.empty", file=raw.source), file=raw.source)
    ids, reasons, restored = normalise_ids(table[id_column])
    reasons = pc.replace_substring_regex(reasons, "^id_missing$", "customer_missing")
    reasons = pc.replace_substring_regex(reasons, "^id_", "customer_id_")
    bad = np.asarray(pc.is_valid(reasons))
    columns = find_columns(names, taken=[id_column])
    good = table.filter(pa.array(~bad))
    profile = profile_values(good, {f: c for f, c in columns.items() if f != "status"})
    rows = pa.table({"ext_id": ids.filter(pa.array(~bad)), **profile})
    fields = [c for c in rows.column_names if c != "ext_id"]
    grouped = rows.group_by("ext_id", use_threads=False).aggregate([(f, "last") for f in fields])
    people = pa.table({"ext_id": grouped["ext_id"], **{f: grouped[f"{f}_last"] for f in fields}})

    rejected = _rejected(table, lines[bad], bad, reasons, id_column, raw.malformed)
    by_reason: dict[str, int] = {}
    for code in rejected["reason"].to_pylist():
        by_reason[code] = by_reason.get(code, 0) + 1
    rows_read = table.num_rows + len(raw.malformed)
    report = {
        "source": raw.source,
        "rows_read": rows_read,
        "customers": people.num_rows,
        "duplicates": rows.num_rows - people.num_rows,
        "rejected": rejected.num_rows,
        "rejected_by_reason": dict(sorted(by_reason.items())),
        "ids_restored": int(restored),
        "blank_rows": blank + raw.blank_rows,
        "columns": {"customer_id": id_column, **columns},
        "encoding": raw.encoding,
        "sheet": raw.sheet,
    }
    return FileData(people, None, rejected, report, rows_read)


def _customer_column(names: list[str], chosen: str | None, source: str) -> str:
    from patron.ingest.columns import SYNONYMS, normalise_name

    if chosen is not None:
        if chosen not in names:
            raise InputError(
                _(
                    "ingest.column_not_found",
                    file=source,
                    column=chosen,
                    role=_("role.customer"),
                    found=", ".join(names),
                ),
                file=source,
                column=chosen,
            )
        return chosen
    rank = {normalise_name(s).replace("_", ""): i for i, s in enumerate(SYNONYMS["customer"])}
    ranked = [
        (rank[key], i, name)
        for i, name in enumerate(names)
        if (key := normalise_name(name).replace("_", "")) in rank
    ]
    if not ranked:
        raise InputError(
            _("imports.no_customer_column", file=source, found=", ".join(names)), file=source
        )
    return min(ranked)[2]


def _filled_rows(table: pa.Table):
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    filled = np.zeros(table.num_rows, dtype=bool)
    for column in table.columns:
        text = pc.utf8_trim_whitespace(pc.cast(column, pa.string()))
        filled |= np.asarray(pc.fill_null(pc.greater(pc.utf8_length(text), 0), False))
    return filled


def _rejected(table, lines, bad, reasons, id_column, malformed) -> pa.Table:
    import pyarrow as pa
    import pyarrow.compute as pc

    mask = pa.array(bad)
    cells = {name: pc.cast(table[name], pa.string()).filter(mask) for name in table.column_names}
    out = {
        "line": pa.array(lines, pa.int64()),
        "reason": reasons.filter(mask),
        "column": pa.array([id_column] * int(bad.sum()), pa.string()),
        "value": cells[id_column],
    }
    for name, values in cells.items():
        out[name if name not in out else f"{name}_source"] = values
    rejected = pa.table(out)
    if malformed:
        extra = pa.table(
            {
                "line": pa.array([m[0] for m in malformed], pa.int64()),
                "reason": pa.array(["row_malformed"] * len(malformed), pa.string()),
                "column": pa.nulls(len(malformed), pa.string()),
                "value": pa.array([m[1] for m in malformed], pa.string()),
            }
        )
        rejected = pa.concat_tables([rejected, extra], promote_options="default")
    return rejected.sort_by("line")
