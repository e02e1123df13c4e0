"""Indexes for merges and list sorting.

Without an index on ``customers.merged_into_id`` every merge (and every delete of a
customer) scans the whole table to check who points at it; lists sorted by last purchase
or by creation scanned too.

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-30
"""

from alembic import op

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_customers_merged_into_id", "customers", ["merged_into_id"])
    op.create_index("ix_customers_created_at", "customers", ["created_at"])
    op.create_index(
        "ix_score_snapshots_run_id_last_purchase", "score_snapshots", ["run_id", "last_purchase"]
    )


def downgrade() -> None:
    op.drop_index("ix_score_snapshots_run_id_last_purchase", table_name="score_snapshots")
    op.drop_index("ix_customers_created_at", table_name="customers")
    op.drop_index("ix_customers_merged_into_id", table_name="customers")
