"""The ``patron`` command.

Heavy libraries (pyarrow, ibis, duckdb) are imported inside the commands so that
``patron --help`` answers at once.  A user's mistake (:class:`~patron.errors.InputError`)
becomes one paragraph on stderr and exit code 2; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from patron.errors import InputError
from patron.i18n import _, set_language

if TYPE_CHECKING:
    from patron.ingest import IngestReport

# The language must be known before typer reads the help texts below.
for _i, _arg in enumerate(sys.argv):
    if _arg == "--lang" and _i + 1 < len(sys.argv):
        os.environ["PATRON_LANG"] = sys.argv[_i + 1]
    elif _arg.startswith("--lang="):
        os.environ["PATRON_LANG"] = _arg.split("=", 1)[1]

app = typer.Typer(
    help=_("cli.help"), no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False
)
out = Console()
err = Console(stderr=True)

Customer = Annotated[str | None, typer.Option("--customer", help=_("cli.opt_customer"))]
Date = Annotated[str | None, typer.Option("--date", help=_("cli.opt_date"))]
Amount = Annotated[str | None, typer.Option("--amount", help=_("cli.opt_amount"))]
OrderId = Annotated[str | None, typer.Option("--order-id", help=_("cli.opt_order_id"))]
Sheet = Annotated[str | None, typer.Option("--sheet", help=_("cli.opt_sheet"))]
AsOf = Annotated[str | None, typer.Option("--as-of", help=_("cli.opt_as_of"))]
Lang = Annotated[str | None, typer.Option("--lang", help=_("cli.lang"))]


@app.callback()
def _root(lang: Lang = None) -> None:
    if lang:
        set_language(lang)


@contextlib.contextmanager
def _step(text: str):
    """A spinner with elapsed time on stderr while a step runs."""
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        progress.add_task(text, total=None)
        yield


def _sheet(value: str | None) -> str | int | None:
    return int(value) if value is not None and value.isdigit() else value


def print_report(report: IngestReport) -> None:
    """The ingest report as two tables: the account of rows, and rejections by reason."""
    table = Table(title=_("report.title", file=report.source), title_justify="left")
    table.add_column(_("report.item"))
    table.add_column(_("report.value"), justify="right")
    for key in (
        "rows_read",
        "purchases",
        "returns",
        "duplicates",
        "rejected",
        "customers",
        "possible_duplicates",
        "ids_restored",
        "blank_rows",
    ):
        table.add_row(_(f"report.{key}"), f"{getattr(report, key):,}")
    if report.encoding:
        table.add_row(_("report.encoding"), report.encoding)
    if report.sheet:
        table.add_row(_("report.sheet"), report.sheet)
    used = ", ".join(f"{role} ← {name}" for role, name in report.columns.items())
    table.add_row(_("report.columns"), used)
    out.print(table)
    if report.rejected_by_reason:
        reasons = Table(title=_("report.by_reason"), title_justify="left")
        reasons.add_column(_("report.reason"))
        reasons.add_column(_("report.count"), justify="right")
        for code, count in report.rejected_by_reason.items():
            reasons.add_row(_(f"reason.{code}"), f"{count:,}")
        out.print(reasons)


def _ingest(file: Path, out_dir: Path, **options):
    from patron.ingest import read_transactions
    from patron.output import write_table

    with _step(_("cli.step_read", file=file)):
        tx = read_transactions(file, **options)
    print_report(tx.report)
    for name, table in (("transactions.parquet", tx.to_arrow()), ("rejected.csv", tx.rejected)):
        out.print(_("cli.wrote", path=write_table(table, out_dir / name)))
    return tx


@app.command(help=_("cli.ingest_help"))
def ingest(
    file: Path,
    out_dir: Annotated[Path, typer.Option("--out", help=_("cli.opt_out_dir"))],
    customer: Customer = None,
    date: Date = None,
    amount: Amount = None,
    order_id: OrderId = None,
    sheet: Sheet = None,
    as_of: AsOf = None,
    strict: Annotated[bool, typer.Option("--strict", help=_("cli.opt_strict"))] = False,
    dedupe: Annotated[bool, typer.Option("--dedupe", help=_("cli.opt_dedupe"))] = False,
) -> None:
    """Help text comes from the catalogue (``cli.ingest_help``)."""
    _ingest(
        file,
        out_dir,
        customer=customer,
        date=date,
        amount=amount,
        order_id=order_id,
        sheet=_sheet(sheet),
        as_of=as_of,
        strict=strict,
        dedupe=dedupe,
    )


@app.command(help=_("cli.summarize_help"))
def summarize(
    file: Path,
    out_file: Annotated[Path, typer.Option("--out", help=_("cli.opt_out_file"))],
    period: Annotated[str, typer.Option("--period", help=_("cli.opt_period"))] = "D",
    time_unit: Annotated[str, typer.Option("--time-unit", help=_("cli.opt_time_unit"))] = "W",
    as_of: AsOf = None,
    calibration_end: Annotated[
        str | None, typer.Option("--calibration-end", help=_("cli.opt_calibration_end"))
    ] = None,
    customer: Customer = None,
    date: Date = None,
    amount: Amount = None,
    order_id: OrderId = None,
    sheet: Sheet = None,
) -> None:
    """Help text comes from the catalogue (``cli.summarize_help``)."""
    from patron.engine import summarize as run
    from patron.output import write_table

    source = file
    if any(v is not None for v in (customer, date, amount, order_id, sheet)):
        from patron.ingest import read_transactions

        with _step(_("cli.step_read", file=file)):
            source = read_transactions(
                file,
                customer=customer,
                date=date,
                amount=amount,
                order_id=order_id,
                sheet=_sheet(sheet),
            )
    with _step(_("cli.step_summarize")):
        table = run(
            source, period=period, time_unit=time_unit, as_of=as_of, calibration_end=calibration_end
        )
    _print_summary_line(table, period, time_unit)
    out.print(_("cli.wrote", path=write_table(table, out_file)))


def _print_summary_line(table, period: str, unit: str) -> None:
    as_of = (table.schema.metadata or {}).get(b"patron.as_of", b"-").decode()
    out.print(
        _(
            "cli.summary_done",
            customers=f"{table.num_rows:,}",
            period=period,
            unit=unit,
            as_of=as_of,
        )
    )


@app.command(help=_("cli.demo_help"))
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help=_("cli.opt_out_dir"))] = Path(
        "demo-output"
    ),
    customers: Annotated[int, typer.Option("--customers", help=_("cli.opt_customers"))] = 2000,
    seed: Annotated[int, typer.Option("--seed", help=_("cli.opt_seed"))] = 7,
) -> None:
    """Help text comes from the catalogue (``cli.demo_help``)."""
    from patron.datasets import demo_shop
    from patron.engine import summarize as run
    from patron.output import write_table

    out_dir.mkdir(parents=True, exist_ok=True)
    with _step(_("cli.step_generate")):
        path = demo_shop(out_dir / "demo_shop.csv", customers=customers, seed=seed)
    out.print(_("cli.demo_generated", path=path))
    tx = _ingest(path, out_dir)
    with _step(_("cli.step_summarize")):
        table = run(tx)
    _print_summary_line(table, "D", "W")
    _print_top_customers(table)
    for name in ("summary.csv", "summary.parquet"):
        out.print(_("cli.wrote", path=write_table(table, out_dir / name)))


def _print_top_customers(table, n: int = 5) -> None:
    """A first look at the result: the customers who spent most."""
    columns = ("customer_id", "orders", "total_spend", "frequency", "recency", "T")
    top = table.sort_by([("total_spend", "descending")]).slice(0, n).select(columns)
    view = Table(title=_("cli.top_customers", n=n), title_justify="left")
    for name in columns:
        view.add_column(name, justify="left" if name == "customer_id" else "right")
    for row in top.to_pylist():
        view.add_row(*(f"{v:,.2f}" if isinstance(v, float) else str(v) for v in row.values()))
    out.print(view)


def main() -> None:
    """Entry point: run the app, turning a user's mistake into exit code 2."""
    try:
        app()
    except InputError as exc:
        err.print(f"[bold red]{_('cli.error')}:[/] {exc}", highlight=False)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
