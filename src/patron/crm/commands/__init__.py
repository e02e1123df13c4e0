"""The operational commands (``patron db``, ``users``, ``import``, ``score``, ``jobs``, ``serve``).

Each module adds its commands to the main ``patron`` app through ``register(app)``; the
command owns the transaction its services run in.
"""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add every operational command to ``app``."""
    from patron.crm.commands import db, imports, jobs, scoring, users
    from patron.web import commands as web

    for module in (db, users, imports, scoring, jobs, web):
        module.register(app)
