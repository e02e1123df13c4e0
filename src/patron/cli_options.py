"""Options several ``patron`` commands share: the column names, sheet, as-of date, language.

Help texts are translated when this module is first imported, which ``patron.cli`` does
only after reading ``--lang`` from the command line.
"""

from __future__ import annotations

from typing import Annotated

import typer

from patron.i18n import _

__all__ = ["Customer", "Date", "Amount", "OrderId", "Sheet", "AsOf", "Lang"]

Customer = Annotated[str | None, typer.Option("--customer", help=_("cli.opt_customer"))]
Date = Annotated[str | None, typer.Option("--date", help=_("cli.opt_date"))]
Amount = Annotated[str | None, typer.Option("--amount", help=_("cli.opt_amount"))]
OrderId = Annotated[str | None, typer.Option("--order-id", help=_("cli.opt_order_id"))]
Sheet = Annotated[str | None, typer.Option("--sheet", help=_("cli.opt_sheet"))]
AsOf = Annotated[str | None, typer.Option("--as-of", help=_("cli.opt_as_of"))]
Lang = Annotated[str | None, typer.Option("--lang", help=_("cli.lang"))]
