"""The snapshots' key carries the grade, stage and churn risk too (PostgreSQL).

A search filtered by a score label alone ("all gold customers") counts its matches up to
the exact-count bound before it estimates the rest: 10,001 of the run's snapshots whose
grade is gold. Read through the key, every entry cost a visit to its table row for the
grade; with a tenth of a million customers gold, 100,000 rows were visited (42,000 pages)
to find 10,001, 102 ms, once every ten seconds in each server process, while the searches
queued behind it on that process's two connections (search p99 64-118 ms). With the
labels beside the key the count reads the index alone: 910 pages of it, 24.7 ms (of which
12 are the customers' own key, to leave out the merged). The key index grows from 51 to
70 MB for a million snapshots; no index is added.

SQLite keeps the plain key (it has no INCLUDE).

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-01
"""

from alembic import op

revision = "0010"
down_revision = "0008"  # which made the key carry the two sort scores
branch_labels = None
depends_on = None


def _key(*include: str) -> None:
    op.execute(
        "ALTER TABLE score_snapshots DROP CONSTRAINT pk_score_snapshots,"
        " ADD CONSTRAINT pk_score_snapshots PRIMARY KEY (run_id, customer_id)"
        f" INCLUDE ({', '.join(include)})"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _key("predicted_clv", "last_purchase", "grade", "lifecycle_stage", "churn_risk")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _key("predicted_clv", "last_purchase")
