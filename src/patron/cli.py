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

from patron.cli_options import Amount, AsOf, Customer, Date, Lang, OrderId, Sheet  # noqa: E402


@app.callback()
def _root(lang: Lang = None) -> None:
    if lang:
        set_language(lang)


def _use_language(lang: str | None) -> None:
    """``--lang`` given after the command name (``patron analyze ... --lang zh``)."""
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
    lang: Lang = None,
) -> None:
    """Help text comes from the catalogue (``cli.ingest_help``)."""
    _use_language(lang)
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
    lang: Lang = None,
) -> None:
    """Help text comes from the catalogue (``cli.summarize_help``)."""
    _use_language(lang)
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


Horizon = Annotated[str | None, typer.Option("--horizon", help=_("cli.opt_horizon"))]
Discount = Annotated[float | None, typer.Option("--discount-rate", help=_("cli.opt_discount"))]
Model = Annotated[str | None, typer.Option("--model", help=_("cli.opt_model"))]
Config = Annotated[Path | None, typer.Option("--config", help=_("cli.opt_config"))]
Excel = Annotated[bool, typer.Option("--excel", help=_("cli.opt_excel"))]


@app.command(help=_("cli.analyze_help"))
def analyze(
    file: Path,
    out_dir: Annotated[Path, typer.Option("--out", help=_("cli.opt_out_dir"))],
    customer: Customer = None,
    date: Date = None,
    amount: Amount = None,
    order_id: OrderId = None,
    sheet: Sheet = None,
    as_of: AsOf = None,
    horizon: Horizon = None,
    discount_rate: Discount = None,
    model: Model = None,
    config: Config = None,
    excel: Excel = False,
    lang: Lang = None,
) -> None:
    """Help text comes from the catalogue (``cli.analyze_help``)."""
    _use_language(lang)
    _analyze(
        file,
        out_dir,
        excel=excel,
        customer=customer,
        date=date,
        amount=amount,
        order_id=order_id,
        sheet=_sheet(sheet),
        as_of=as_of,
        horizon=horizon,
        discount_rate=discount_rate,
        model=model,
        config=config,
    )


def _analyze(file: Path, out_dir: Path, *, excel: bool = False, **options) -> dict[str, Path]:
    from patron.value.analyze import analyze as run

    def step(key: str):
        return _step(_(f"cli.step_{key}", file=file))

    analysis = run(file, step=step, **options)
    print_report(analysis.transactions.report)
    _print_analysis(analysis)
    with _step(_("cli.step_write")):
        paths = analysis.write(out_dir, excel=excel)
    for path in paths.values():
        out.print(_("cli.wrote", path=path))
    return paths


def _print_analysis(analysis) -> None:
    """KPIs, the model used and the grade mix: what a manager reads first."""
    import numpy as np

    k = analysis.kpis
    table = Table(title=_("cli.analysis_title", as_of=analysis.as_of), title_justify="left")
    table.add_column(_("report.item"))
    table.add_column(_("report.value"), justify="right")
    table.add_row(_("cli.kpi_customers"), f"{k['customers']:,}")
    table.add_row(_("cli.kpi_active"), f"{k['active_share']:.1%}")
    table.add_row(_("cli.kpi_repeat"), f"{k['repeat_rate']:.1%}")
    table.add_row(_("cli.kpi_revenue"), f"{k['revenue']:,.2f}")
    if k.get("customer_equity") is not None:
        table.add_row(_("cli.kpi_equity"), f"{k['customer_equity']:,.2f}")
    if analysis.purchase_model is not None:
        params = ", ".join(f"{n}={v:.4g}" for n, v in analysis.purchase_model.params_.items())
        table.add_row(_("cli.model"), f"{type(analysis.purchase_model).__name__} ({params})")
    out.print(table)
    customers = analysis.customers
    from patron.value.grades import grade_label

    rules = analysis.settings.grades
    codes = customers["grade"].to_numpy(zero_copy_only=False)
    grades = Table(title=_("cli.grade_mix"), title_justify="left")
    for name in ("grade", "customers", "total_spend", "predicted_clv"):
        grades.add_column(_(f"cli.col_{name}"), justify="left" if name == "grade" else "right")
    spend = customers["total_spend"].to_numpy()
    clv = customers["predicted_clv"].to_numpy()
    for index, code in enumerate(rules.names):
        mask = codes == code
        value = f"{np.nansum(clv[mask]):,.2f}" if np.isfinite(clv).any() else "-"
        row = (f"{mask.sum():,}", f"{spend[mask].sum():,.2f}", value)
        grades.add_row(grade_label(index, rules), *row)
    out.print(grades)
    for note in analysis.notes:
        err.print(f"[yellow]{note}[/]", highlight=False)


@app.command(help=_("cli.backtest_help"))
def backtest(
    file: Path,
    holdout: Annotated[str, typer.Option("--holdout", help=_("cli.opt_holdout"))] = "26W",
    model: Annotated[
        list[str] | None, typer.Option("--model", help=_("cli.opt_backtest_model"))
    ] = None,
    as_of: AsOf = None,
    customer: Customer = None,
    date: Date = None,
    amount: Amount = None,
    out_file: Annotated[Path | None, typer.Option("--out", help=_("cli.opt_backtest_out"))] = None,
    lang: Lang = None,
) -> None:
    """Help text comes from the catalogue (``cli.backtest_help``)."""
    _use_language(lang)
    import json

    from patron.value.backtest import backtest as run
    from patron.value.backtest import format_backtest

    options = {"models": tuple(model)} if model else {}
    with _step(_("cli.step_backtest", file=file)):
        result = run(
            file,
            holdout=holdout,
            observation_end=as_of,
            customer=customer,
            date=date,
            amount=amount,
            **options,
        )
    out.print(format_backtest(result))
    if out_file is not None:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(result.to_dict(), ensure_ascii=False, indent=2, default=str)
        out_file.write_text(text + "\n", encoding="utf-8")
        out.print(_("cli.wrote", path=out_file))


@app.command(help=_("cli.demo_help"))
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help=_("cli.opt_out_dir"))] = Path(
        "demo-output"
    ),
    customers: Annotated[int, typer.Option("--customers", help=_("cli.opt_customers"))] = 5000,
    seed: Annotated[int, typer.Option("--seed", help=_("cli.opt_seed"))] = 7,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help=_("serve.opt_serve"))] = True,
    host: Annotated[str, typer.Option("--host", help=_("serve.opt_host"))] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help=_("serve.opt_port"))] = 8000,
    lang: Lang = None,
) -> None:
    """Help text comes from the catalogue (``cli.demo_help``)."""
    _use_language(lang)
    from patron.datasets import demo_shop

    out_dir.mkdir(parents=True, exist_ok=True)
    with _step(_("cli.step_generate")):
        path = demo_shop(out_dir / "demo_shop.csv", customers=customers, seed=seed)
    out.print(_("cli.demo_generated", path=path))
    paths = _analyze(path, out_dir)
    if "report" in paths:
        out.print(_("cli.demo_report", path=paths["report"].resolve()))
    _demo_database(path, out_dir, seed=seed, serve=serve, host=host, port=port)


def _demo_database(export: Path, out_dir: Path, *, seed: int, serve: bool, host: str, port: int):
    """The operational demo: a database from the export, scored, with a login; then serve."""
    from patron.web.demo import build_demo_database

    db = build_demo_database(
        export,
        out_dir / "patron.db",
        seed=seed,
        step=lambda key: _step(_(f"serve.demo_step_{key}")),
    )
    out.print(
        _(
            "serve.demo_ready",
            path=(out_dir / "patron.db").resolve(),
            customers=f"{db.customers:,}",
            orders=f"{db.orders:,}",
            runs=len(db.runs),
            touchpoints=f"{db.touchpoints:,}",
        )
    )
    url = f"http://{host}:{port}"
    login = _("serve.demo_login", url=url, username=db.username, password=db.password)
    out.print(login, soft_wrap=True, highlight=False)
    if serve:
        from patron.web.app import create_app
        from patron.web.commands import serve_app

        serve_app(create_app(db.url), host=host, port=port)
    return db


def _register_operational_commands() -> None:
    from patron.crm.commands import register

    register(app)


_register_operational_commands()


def main() -> None:
    """Entry point: run the app, turning a user's mistake into exit code 2."""
    from patron.crm.migrate import SchemaError

    try:
        app()
    except (InputError, SchemaError) as exc:
        err.print(f"[bold red]{_('cli.error')}:[/] {exc}", highlight=False)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
