"""The run's score indexes carry the customer (PostgreSQL), so search can sift them.

Sorted by CLV, the page of a two-character name prefix ("张伟": 2,073 of a million) was
ranked by looking each match's score up in the run, 2.8 us a match. Search now reads the
run's scores in order and keeps the matches instead, when that reads less
(:func:`patron.crm.services.customer_search_sql._statement`): 12,000 entries at 0.19 us.
With the customer's id beside each score the entries are read from the index alone;
without, every entry cost a visit to its table row, and sifting was slower than before.
On the bench's database the name prefixes went from 15.4 to 8.0 ms a search.

SQLite is left as it is: it has no INCLUDE and does not run this search.

Revision ID: 0009
Revises: 0005
Create Date: 2026-12-01
"""

from alembic import op

revision = "0009"
down_revision = "0005"  # which made the last-purchase index
branch_labels = None
depends_on = None

_INDEXES = {
    "ix_score_snapshots_run_id_predicted_clv": "predicted_clv",
    "ix_score_snapshots_run_id_last_purchase": "last_purchase",
}


def _rebuild(include: bool) -> None:
    for name, column in _INDEXES.items():
        extra = " INCLUDE (customer_id)" if include else ""
        op.execute(f"DROP INDEX IF EXISTS {name}")
        op.execute(f"CREATE INDEX {name} ON score_snapshots (run_id, {column}){extra}")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _rebuild(include=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _rebuild(include=False)
