"""``patron score``: score every customer from the database's orders, as a new snapshot.

The run is stored whether it succeeds or not (a failed run keeps its reason, for the
scoring-runs page), so the transaction commits in both cases; a failed run then exits
with code 2, as any other problem with the user's data does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from patron.cli_options import Lang
from patron.crm.commands.db import DatabaseUrl
from patron.i18n import _, set_language

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``patron score`` to ``app``."""
    out = Console()
    err = Console(stderr=True)

    @app.command("score", help=_("scoring.cli.help"))
    def score(
        as_of: Annotated[
            str | None, typer.Option("--as-of", help=_("scoring.cli.opt_as_of"))
        ] = None,
        model: Annotated[str, typer.Option("--model", help=_("scoring.cli.opt_model"))] = "auto",
        horizon: Annotated[
            str, typer.Option("--horizon", help=_("scoring.cli.opt_horizon"))
        ] = "12M",
        config: Annotated[Path | None, typer.Option("--config", help=_("cli.opt_config"))] = None,
        timezone: Annotated[
            str, typer.Option("--timezone", help=_("imports.cli.opt_timezone"))
        ] = "Asia/Shanghai",
        database_url: DatabaseUrl = None,
        lang: Lang = None,
    ) -> None:
        if lang:
            set_language(lang)
        from patron.crm.commands.progress import progress_display
        from patron.crm.db import make_engine, session_scope
        from patron.crm.migrate import check_schema
        from patron.crm.services.scoring import distribution, run_scoring

        engine = make_engine(database_url)
        check_schema(engine)

        def label(step: str) -> str:
            return _(f"scoring.cli.step_{step}")

        with progress_display(err, label) as progress, session_scope(engine) as session:
            run = run_scoring(
                session,
                as_of=as_of,
                model=model,
                horizon=horizon,
                config=config,
                timezone=timezone,
                progress=progress,
            )
            mixes = []
            if run.status == "done":
                mixes = [
                    (by, distribution(session, run.id, by=by))
                    for by in ("grade", "lifecycle_stage")
                ]
        if run.status != "done":
            err.print(f"[bold red]{_('scoring.cli.failed', id=run.id, message=run.message)}[/]")
            raise typer.Exit(2)
        out.print(
            _(
                "scoring.cli.done",
                id=run.id,
                customers=f"{run.customers:,}",
                as_of=run.as_of,
                model=run.model,
            )
        )
        for by, items in mixes:
            _print_mix(out, by, items)


def _print_mix(out: Console, by: str, items: list[dict]) -> None:
    from patron.value.config import GRADE_CODES

    title = _("scoring.cli.grade_mix" if by == "grade" else "scoring.cli.stage_mix")
    table = Table(title=title, title_justify="left")
    table.add_column(_("scoring.cli.col_label"))
    table.add_column(_("scoring.cli.col_customers"), justify="right")
    table.add_column(_("scoring.cli.col_clv"), justify="right")
    for item in items:
        code = item["label"]
        if by == "grade":
            text = _(f"value.grade.{code}") if code in GRADE_CODES else str(code)
        else:
            text = _(f"value.stage.{code}")
        table.add_row(text, f"{item['customers']:,}", f"{item['predicted_clv']:,.2f}")
    out.print(table)
