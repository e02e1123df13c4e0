"""Writing an analysis to disk: the customer table, summary.json, rejects and the report."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

    from patron.value.analyze import Analysis

__all__ = ["write_analysis"]


def write_analysis(analysis: Analysis, out: Path, *, excel: bool = False) -> dict[str, Path]:
    """Write every output file into ``out`` and return their paths by name."""
    from patron.output import write_table
    from patron.report import render_report

    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "customers_csv": out / "customers.csv",
        "customers_parquet": out / "customers.parquet",
        "summary": out / "summary.json",
        "rejected": out / "rejected.csv",
    }
    # Arrow writes the two big files without holding the GIL, so they run beside the
    # report, which is Python; on 3M customers this hides most of the writing time.
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = [
            pool.submit(lambda: write_table(_for_csv(analysis.customers), paths["customers_csv"])),
            pool.submit(write_table, analysis.customers, paths["customers_parquet"]),
        ]
        write_table(analysis.transactions.rejected, paths["rejected"])
        text = json.dumps(analysis.summary(), ensure_ascii=False, indent=2, default=_plain)
        paths["summary"].write_text(text + "\n", encoding="utf-8")
        paths["report"] = out / "report.html"
        paths["report"].write_text(render_report(analysis), encoding="utf-8")
        if excel:
            paths["customers_xlsx"] = out / "customers.xlsx"
            _write_xlsx(analysis, paths["customers_xlsx"])
        for job in pending:
            job.result()
    return paths


# Money in the CSV to the cent, other measures to four decimals: what a reader of the file
# can use, and a third less text to format than full doubles (the Parquet file keeps them).
_CENTS = {"total_spend", "monetary_value", "expected_spend", "predicted_clv", "clv_low", "clv_high"}


def _for_csv(table: pa.Table) -> pa.Table:
    """The customer table as the CSV shows it: rounded numbers, plain strings."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = {}
    for name in table.column_names:
        column = table[name]
        if pa.types.is_floating(column.type):
            column = pc.round(column, 2 if name in _CENTS else 4)
        elif pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        columns[name] = column
    return pa.table(columns)


def _plain(value: object) -> object:
    """JSON for numpy scalars and dates."""
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _write_xlsx(analysis: Analysis, path: Path) -> None:
    from openpyxl import Workbook

    table = analysis.customers
    book = Workbook(write_only=True)
    sheet = book.create_sheet("customers")
    sheet.append(table.column_names)
    columns = [table[name].to_pylist() for name in table.column_names]
    for row in zip(*columns, strict=True):
        sheet.append([_cell(v) for v in row])
    book.save(path)


def _cell(value: object) -> object:
    if isinstance(value, float) and value != value:  # NaN: an empty cell
        return None
    return value
