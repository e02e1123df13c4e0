"""``patron serve`` (to be filled in)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add ``patron serve`` to ``app``."""
