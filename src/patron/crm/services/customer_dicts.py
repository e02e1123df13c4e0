"""Rows of the customer tables as plain dicts, the shape the API and the pages consume.

One place decides which fields leave the database and in what type, so the list, the 360,
the export and the masking in :mod:`patron.crm.services.views` agree: money stays
:class:`~decimal.Decimal` (the API serialises it exactly), times are aware UTC datetimes,
days are dates, and a float that is not finite becomes ``None`` (JSON has no NaN). The
normalised phone and email never leave: they are search keys, and an analyst's masked
view must not carry them unmasked.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from patron.crm.tables import ScoreSnapshot, ScoringRun
from patron.crm.tables.scores import SNAPSHOT_COLUMNS

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from patron.crm.tables import Customer, CustomerMerge, Order, OrderLine, Touchpoint

__all__ = [
    "PROFILE_FIELDS",
    "CUSTOMER_FIELDS",
    "SCORE_FIELDS",
    "LIST_SCORE_FIELDS",
    "latest_run",
    "customer_dict",
    "score_dict",
    "order_dict",
    "line_dict",
    "touchpoint_dict",
    "merge_dict",
    "finite",
]

#: The fields of a customer a person edits (what ``update_customer`` accepts besides
#: ``tags`` and ``consents``), in display order.
PROFILE_FIELDS = (
    "name",
    "phone",
    "email",
    "birthday",
    "gender",
    "region",
    "channel",
    "language",
    "owner_id",
)

#: The profile fields every customer dict carries, in display order.
CUSTOMER_FIELDS = ("id", *PROFILE_FIELDS, "merged_into_id", "created_at", "updated_at")

#: Every column of a score snapshot (``patron analyze``'s customer table).
SCORE_FIELDS = SNAPSHOT_COLUMNS

#: The score fields a customer list shows beside the profile.
LIST_SCORE_FIELDS = (
    "grade",
    "lifecycle_stage",
    "churn_risk",
    "predicted_clv",
    "p_alive",
    "last_purchase",
    "next_best_action",
)


def latest_run(session: Session) -> ScoringRun | None:
    """The newest scoring run that finished: the one whose scores lists and pages show.

    A run still in progress or one that failed never replaces the last good scores.
    """
    query = select(ScoringRun).where(ScoringRun.status == "done").order_by(ScoringRun.id.desc())
    return session.scalars(query.limit(1)).first()


def finite(value: Any) -> Any:
    """``value``, or ``None`` for a float that is NaN or infinite (JSON cannot hold them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def customer_dict(customer: Customer) -> dict[str, Any]:
    """The profile of ``customer`` (without tags, consents or scores)."""
    return {name: getattr(customer, name) for name in CUSTOMER_FIELDS}


def score_dict(snapshot: ScoreSnapshot, run: ScoringRun | None = None) -> dict[str, Any]:
    """Every score of one snapshot, with the run it came from and when it was scored."""
    values = {name: finite(getattr(snapshot, name)) for name in SCORE_FIELDS}
    values["run_id"] = snapshot.run_id
    if run is not None:
        values["scored_at"] = run.finished_at or run.started_at
        values["as_of"] = run.as_of
    return values


def line_dict(line: OrderLine) -> dict[str, Any]:
    """One order line; quantity and price stay exact."""
    return {
        "id": line.id,
        "sku": line.sku,
        "name": line.name,
        "category": line.category,
        "quantity": line.quantity,
        "price": line.price,
    }


def order_dict(order: Order, lines: list[OrderLine] | None = None) -> dict[str, Any]:
    """One order with its lines (an empty list when the source gave none)."""
    return {
        "id": order.id,
        "customer_id": order.customer_id,
        "source": order.source,
        "order_no": order.order_no,
        "ordered_at": order.ordered_at,
        "amount": order.amount,
        "status": order.status,
        "channel": order.channel,
        "batch_id": order.batch_id,
        "lines": [line_dict(line) for line in lines or ()],
    }


def touchpoint_dict(touchpoint: Touchpoint, staff_name: str | None = None) -> dict[str, Any]:
    """One contact; ``staff_name`` is the recording user's display name, when known."""
    return {
        "id": touchpoint.id,
        "customer_id": touchpoint.customer_id,
        "channel": touchpoint.channel,
        "kind": touchpoint.kind,
        "occurred_at": touchpoint.occurred_at,
        "note": touchpoint.note,
        "staff_id": touchpoint.staff_id,
        "staff_name": staff_name,
        "created_at": touchpoint.created_at,
    }


def merge_dict(merge: CustomerMerge) -> dict[str, Any]:
    """One merge; ``key`` is the phone or email that matched (masked for analysts)."""
    return {
        "id": merge.id,
        "survivor_id": merge.survivor_id,
        "merged_id": merge.merged_id,
        "rule": merge.rule,
        "key": merge.key,
        "batch_id": merge.batch_id,
        "actor_id": merge.actor_id,
        "created_at": merge.created_at,
    }
