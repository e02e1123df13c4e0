"""A trigram index on customer names, for search by a fragment of a name (PostgreSQL).

A name typed in full or from its middle ("秀娜" for 陈秀娜) cannot use the name's B-tree
index, which finds prefixes only: without this index PostgreSQL reads all the million
names for it (~120 ms each, and a queue behind it under load). pg_trgm's GIN index finds
them from their three-character pieces in well under a millisecond, for ``LIKE`` and
``ILIKE`` alike, Chinese included (the database's character classes must know CJK
letters, as C.UTF-8 and the usual UTF-8 locales do).

pg_trgm ships with PostgreSQL (Debian: in postgresql-15) and is a trusted extension, so a
database owner may create it. A server without it keeps working: the migration says so
and skips the index, and search falls back to reading the names.

Revision ID: 0006
Revises: 0001
Create Date: 2026-12-01
"""

import logging

from alembic import op
from sqlalchemy import text

revision = "0006"
down_revision = "0001"
branch_labels = None
depends_on = None

INDEX = "ix_customers_name_trgm"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    available = bind.execute(
        text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    ).scalar()
    if not available:
        logging.getLogger("alembic").warning(
            "pg_trgm is not installed on this server: searching inside names reads every name"
        )
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(f"CREATE INDEX {INDEX} ON customers USING gin (name gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")
