"""``patron import FILE``: an order export or a customer list into the database.

The command owns the transaction: the whole file lands when it commits, and nothing does
if anything fails. The summary is printed after the commit, so what it says is what the
database holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from patron.cli_options import Amount, Customer, Date, Lang, OrderId, Sheet
from patron.crm.commands.db import DatabaseUrl
from patron.i18n import _, set_language

if TYPE_CHECKING:
    from patron.crm.services.imports import ImportResult

__all__ = ["register", "print_batch"]


def register(app: typer.Typer) -> None:
    """Add ``patron import`` to ``app``."""
    out = Console()
    err = Console(stderr=True)

    @app.command("import", help=_("imports.cli.help"))
    def import_(
        file: Path,
        kind: Annotated[str, typer.Option("--kind", help=_("imports.cli.opt_kind"))] = "orders",
        source: Annotated[
            str | None, typer.Option("--source", help=_("imports.cli.opt_source"))
        ] = None,
        customer: Customer = None,
        date: Date = None,
        amount: Amount = None,
        order_id: OrderId = None,
        sheet: Sheet = None,
        timezone: Annotated[
            str, typer.Option("--timezone", help=_("imports.cli.opt_timezone"))
        ] = "Asia/Shanghai",
        rejected_out: Annotated[
            Path | None, typer.Option("--rejected-out", help=_("imports.cli.opt_rejected_out"))
        ] = None,
        database_url: DatabaseUrl = None,
        lang: Lang = None,
    ) -> None:
        if lang:
            set_language(lang)
        from patron.crm.commands.progress import progress_display
        from patron.crm.db import make_engine, session_scope
        from patron.crm.migrate import check_schema
        from patron.crm.services.imports import import_file

        engine = make_engine(database_url)
        check_schema(engine)

        def label(step: str) -> str:
            return _(f"imports.cli.step_{step}", file=file.name)

        with progress_display(err, label) as progress, session_scope(engine) as session:
            result = import_file(
                session,
                file,
                kind=kind,
                source=source,
                customer=customer,
                date=date,
                amount=amount,
                order_id=order_id,
                sheet=sheet,
                timezone=timezone,
                progress=progress,
            )
        print_batch(out, result)
        if rejected_out is not None:
            rejected_out.parent.mkdir(parents=True, exist_ok=True)
            rejected_out.write_text(result.batch.rejected_csv, encoding="utf-8")
            out.print(_("imports.cli.wrote_rejected", id=result.batch.id, path=rejected_out))


def print_batch(out: Console, result: ImportResult) -> None:
    """The batch's account: what was inserted, updated, left alone, rejected."""
    from zoneinfo import ZoneInfo

    batch = result.batch
    if result.already_imported:
        zone = ZoneInfo((batch.report or {}).get("timezone") or "Asia/Shanghai")
        when = batch.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        out.print(_("imports.cli.already", file=batch.filename, id=batch.id, when=when))
        return
    title = _(
        "imports.cli.title",
        id=batch.id,
        file=batch.filename,
        kind=batch.kind,
        source=batch.source,
    )
    out.print(title, highlight=False)
    table = Table()
    table.add_column(_("report.item"))
    table.add_column(_("report.value"), justify="right")
    matched = (batch.report or {}).get("customers_matched", 0)
    rows = [
        ("rows_read", batch.rows_read),
        ("inserted", batch.inserted),
        ("updated", batch.updated),
        ("unchanged", batch.unchanged),
        ("rejected", batch.rejected),
        ("customers_created", batch.customers_created),
        ("customers_matched", matched),
        ("customers_merged", batch.customers_merged),
    ]
    for key, value in rows:
        table.add_row(_(f"imports.cli.{key}"), f"{value:,}")
    out.print(table)
    by_reason = (batch.report or {}).get("rejected_by_reason") or {}
    if by_reason:
        reasons = Table(title=_("report.by_reason"), title_justify="left")
        reasons.add_column(_("report.reason"))
        reasons.add_column(_("report.count"), justify="right")
        for code, count in by_reason.items():
            reasons.add_row(_(f"reason.{code}"), f"{count:,}")
        out.print(reasons)
