"""``patron db upgrade`` and ``patron db current``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from patron.i18n import _

__all__ = ["register", "DatabaseUrl"]

DatabaseUrl = Annotated[
    str | None, typer.Option("--database-url", envvar="PATRON_DATABASE_URL", help=_("cli.opt_db"))
]


def register(app: typer.Typer) -> None:
    """Add ``patron db`` to ``app``."""
    db = typer.Typer(help=_("cli.db_help"), no_args_is_help=True)
    app.add_typer(db, name="db")
    out = Console()

    @db.command("upgrade", help=_("cli.db_upgrade_help"))
    def upgrade(database_url: DatabaseUrl = None) -> None:
        from patron.crm.db import make_engine
        from patron.crm.migrate import upgrade

        engine = make_engine(database_url)
        before, after = upgrade(engine)
        url = engine.url.render_as_string(hide_password=True)
        if before == after:
            out.print(_("cli.db_up_to_date", url=url, revision=after))
        else:
            out.print(_("cli.db_upgraded", url=url, before=before or "-", after=after))

    @db.command("current", help=_("cli.db_current_help"))
    def current(database_url: DatabaseUrl = None) -> None:
        from patron.crm.db import make_engine
        from patron.crm.migrate import current_revision, head_revision

        engine = make_engine(database_url)
        out.print(
            _("cli.db_current", revision=current_revision(engine) or "-", head=head_revision())
        )
