"""The two pieces of SQL that differ between SQLite and PostgreSQL here.

- ``INSERT ... ON CONFLICT DO NOTHING``: both databases speak it, through their own
  SQLAlchemy dialect constructs.
- Row locks: PostgreSQL locks the rows ``SELECT ... FOR UPDATE`` reads; SQLite has no row
  locks (SQLAlchemy leaves the clause out there) and relies on every write transaction
  starting as the single writer, ``BEGIN IMMEDIATE`` (see :mod:`patron.crm.db`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["insert_ignore", "dialect"]


def dialect(session: Session) -> str:
    """``"postgresql"`` or ``"sqlite"``."""
    return session.get_bind().dialect.name


def insert_ignore(session: Session, table: Any, index_elements: Sequence[str]) -> Any:
    """``INSERT INTO table ... ON CONFLICT (index_elements) DO NOTHING`` for this database."""
    if dialect(session) == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing(index_elements=list(index_elements))
