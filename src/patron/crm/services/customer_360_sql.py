"""The customer 360 on PostgreSQL in one statement and one round trip.

The portable 360 (:mod:`patron.crm.services.customer_360`) reads one query per kind of
thing -- ten round trips with the merge lookup. On a busy server every round trip is a
wait on the database and, for the Python worker, a hand-over of the GIL among the
request threads, so under 32 concurrent clients the round trips, not the queries, set the
latency. PostgreSQL can build the whole 360 itself: one statement follows the merge chain,
then assembles the profile, ids, tags, consents, the latest orders with their lines, the
latest contacts, every finished score and the merges as one JSON document
(``json_build_object`` / ``json_agg`` over correlated subqueries, each an index lookup).

JSON has no decimals, times or dates, so the statement writes them in forms that convert
back without loss -- money as numeric text (scale kept: ``"1234.50"``), times in UTC
without offset, dates ISO -- and :func:`from_document` turns the document into exactly the
dict the portable path builds, with the same Python types. Tests hold the two paths equal.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from patron.crm.services.numbered import numbered, values
from patron.crm.tables.scores import SNAPSHOT_COLUMNS

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["fetch_document", "fetch_document_async", "from_document"]

# How each score column is written into the document (``T`` is stored as ``t``).
_SCORE_SQL = {name: f"s.{'t' if name == 'T' else name}" for name in SNAPSHOT_COLUMNS}
_SCORE_SQL["total_spend"] = "s.total_spend::text"
_SCORE_FLOATS = frozenset(
    {
        "frequency",
        "recency",
        "T",
        "monetary_value",
        "p_alive",
        "expected_purchases",
        "expected_spend",
        "predicted_clv",
        "clv_low",
        "clv_high",
    }
)
_SCORE_DATES = ("first_purchase", "last_purchase")


def _pairs(fields: dict[str, str]) -> str:
    return ", ".join(f"'{key}', {value}" for key, value in fields.items())


def _utc(column: str) -> str:
    # A timestamp without zone is written as plain ISO text, whatever the session's
    # TimeZone; with the zone, to_json would write the session's offset.
    return f"{column} AT TIME ZONE 'UTC'"


def _display_name(alias: str) -> str:
    # As Python's ``user.display_name or user.username``; NULL without a user.
    return f"coalesce(nullif({alias}.display_name, ''), {alias}.username)"


_CUSTOMER = {
    "id": "c.id",
    "name": "c.name",
    "phone": "c.phone",
    "email": "c.email",
    "birthday": "c.birthday",
    "gender": "c.gender",
    "region": "c.region",
    "channel": "c.channel",
    "language": "c.language",
    "owner_id": "c.owner_id",
    "merged_into_id": "c.merged_into_id",
    "created_at": _utc("c.created_at"),
    "updated_at": _utc("c.updated_at"),
    "owner_name": f"(SELECT {_display_name('u')} FROM users u WHERE u.id = c.owner_id)",
}
_LINE = {
    "id": "l.id",
    "sku": "l.sku",
    "name": "l.name",
    "category": "l.category",
    "quantity": "l.quantity::text",
    "price": "l.price::text",
}
_ORDER = {
    "id": "o.id",
    "customer_id": "o.customer_id",
    "source": "o.source",
    "order_no": "o.order_no",
    "ordered_at": _utc("o.ordered_at"),
    "amount": "o.amount::text",
    "status": "o.status",
    "channel": "o.channel",
    "batch_id": "o.batch_id",
    "lines": f"""coalesce((
        SELECT json_agg(json_build_object({_pairs(_LINE)}) ORDER BY l.id)
        FROM order_lines l WHERE l.order_id = o.id), '[]')""",
}
_TOUCHPOINT = {
    "id": "p.id",
    "customer_id": "p.customer_id",
    "channel": "p.channel",
    "kind": "p.kind",
    "occurred_at": _utc("p.occurred_at"),
    "note": "p.note",
    "staff_id": "p.staff_id",
    "staff_name": _display_name("u"),
    "created_at": _utc("p.created_at"),
}
_SCORE = {
    **_SCORE_SQL,
    "run_id": "s.run_id",
    "scored_at": _utc("coalesce(r.finished_at, r.started_at)"),
    "as_of": "r.as_of",
}
_MERGE = {
    "id": "m.id",
    "survivor_id": "m.survivor_id",
    "merged_id": "m.merged_id",
    "rule": "m.rule",
    "key": "m.key",
    "batch_id": "m.batch_id",
    "actor_id": "m.actor_id",
    "created_at": _utc("m.created_at"),
}

#: The whole 360 as one JSON text; NULL when no customer has the id. ``chain`` follows
#: ``merged_into_id`` as :func:`patron.crm.services.customers.get_customer` does: to the
#: end, or ``:max_hops`` hops at most (a cycle made by hand stops there too).
STATEMENT = text(
    f"""
WITH RECURSIVE chain(id, merged_into_id, hops) AS (
    SELECT id, merged_into_id, 0 FROM customers WHERE id = :customer_id
    UNION ALL
    SELECT c.id, c.merged_into_id, chain.hops + 1
    FROM chain JOIN customers c ON c.id = chain.merged_into_id
    WHERE chain.hops < :max_hops
)
SELECT json_build_object(
    'customer', json_build_object({_pairs(_CUSTOMER)}),
    'external_ids', coalesce((
        SELECT json_agg(json_build_object('source', e.source, 'external_id', e.external_id)
                        ORDER BY e.source, e.external_id)
        FROM customer_external_ids e WHERE e.customer_id = c.id), '[]'),
    'tags', coalesce((
        SELECT json_agg(g.tag ORDER BY g.tag) FROM customer_tags g
        WHERE g.customer_id = c.id), '[]'),
    'consents', coalesce((
        SELECT json_object_agg(k.channel, k.granted ORDER BY k.channel)
        FROM customer_consents k WHERE k.customer_id = c.id), '{{}}'),
    'orders', coalesce((
        SELECT json_agg(json_build_object({_pairs(_ORDER)})
                        ORDER BY o.ordered_at DESC, o.id DESC)
        FROM (SELECT * FROM orders WHERE customer_id = c.id
              ORDER BY ordered_at DESC, id DESC LIMIT :orders_limit) o), '[]'),
    'orders_sum', (
        SELECT json_build_array(count(*), coalesce(sum(amount), 0.00)::text)
        FROM orders WHERE customer_id = c.id),
    'touchpoints', coalesce((
        SELECT json_agg(json_build_object({_pairs(_TOUCHPOINT)})
                        ORDER BY p.occurred_at DESC, p.id DESC)
        FROM (SELECT * FROM touchpoints WHERE customer_id = c.id
              ORDER BY occurred_at DESC, id DESC LIMIT :touchpoints_limit) p
        LEFT JOIN users u ON u.id = p.staff_id), '[]'),
    'touchpoints_total', (SELECT count(*) FROM touchpoints WHERE customer_id = c.id),
    'score_history', coalesce((
        SELECT json_agg(json_build_object({_pairs(_SCORE)}) ORDER BY s.run_id)
        FROM score_snapshots s JOIN scoring_runs r ON r.id = s.run_id
        WHERE s.customer_id = c.id AND r.status = 'done'), '[]'),
    'latest_run_id', (SELECT max(id) FROM scoring_runs WHERE status = 'done'),
    'merges', coalesce((
        SELECT json_agg(json_build_object({_pairs(_MERGE)}) ORDER BY m.id DESC)
        FROM customer_merges m WHERE m.survivor_id = c.id OR m.merged_id = c.id), '[]')
)::text
FROM customers c
WHERE c.id = (
    SELECT id FROM chain WHERE merged_into_id IS NULL OR hops >= :max_hops
    ORDER BY hops LIMIT 1
)
"""
)


def fetch_document(
    session: Session,
    customer_id: int,
    *,
    orders_limit: int,
    touchpoints_limit: int,
    max_hops: int,
) -> dict[str, Any] | None:
    """The raw 360 document of ``customer_id`` (merges followed), or ``None``.

    Values are as JSON holds them; :func:`from_document` gives them their Python types.
    Pending changes in ``session`` are flushed first, so the statement sees them.
    """
    session.flush()
    params = _params(customer_id, orders_limit, touchpoints_limit, max_hops)
    raw = session.execute(STATEMENT, params).scalar()
    return None if raw is None else json.loads(raw)


async def fetch_document_async(
    connection: Any,
    customer_id: int,
    *,
    orders_limit: int,
    touchpoints_limit: int,
    max_hops: int,
) -> dict[str, Any] | None:
    """:func:`fetch_document` on a psycopg async connection with a raw cursor."""
    text, names = _numbered_statement()
    params = _params(customer_id, orders_limit, touchpoints_limit, max_hops)
    cursor = await connection.execute(text, values(names, params), prepare=True)
    row = await cursor.fetchone()
    return None if row is None or row[0] is None else json.loads(row[0])


def _params(
    customer_id: int, orders_limit: int, touchpoints_limit: int, max_hops: int
) -> dict[str, int]:
    return {
        "customer_id": customer_id,
        "orders_limit": max(orders_limit, 0),
        "touchpoints_limit": max(touchpoints_limit, 0),
        "max_hops": max_hops,
    }


@functools.cache
def _numbered_statement() -> tuple[str, tuple[str, ...]]:
    from sqlalchemy.dialects.postgresql import psycopg

    return numbered(str(STATEMENT.compile(dialect=psycopg.dialect())))


def from_document(doc: dict[str, Any]) -> dict[str, Any]:
    """The document of :func:`fetch_document` as the portable 360 has it, but the timeline.

    The caller builds the timeline from ``orders`` and ``touchpoints``, as the portable
    path does. Money and quantities become :class:`~decimal.Decimal`, times aware UTC datetimes,
    days dates, score floats floats (an integral one comes back from JSON as an int; a
    NaN or infinity, which PostgreSQL writes as a string, becomes ``None`` as
    :func:`~patron.crm.services.customer_dicts.finite` makes it).
    """
    profile = doc["customer"]
    profile["birthday"] = _date(profile["birthday"])
    profile["created_at"] = _time(profile["created_at"])
    profile["updated_at"] = _time(profile["updated_at"])
    for order in doc["orders"]:
        order["ordered_at"] = _time(order["ordered_at"])
        order["amount"] = Decimal(order["amount"])
        for line in order["lines"]:
            line["quantity"] = Decimal(line["quantity"])
            line["price"] = Decimal(line["price"])
    for touchpoint in doc["touchpoints"]:
        touchpoint["occurred_at"] = _time(touchpoint["occurred_at"])
        touchpoint["created_at"] = _time(touchpoint["created_at"])
    latest = doc["latest_run_id"]
    score = None
    for item in doc["score_history"]:
        item["total_spend"] = Decimal(item["total_spend"])
        for name in _SCORE_FLOATS:
            value = item[name]
            item[name] = float(value) if isinstance(value, int | float) else None
        for name in _SCORE_DATES:
            item[name] = _date(item[name])
        item["scored_at"] = _time(item["scored_at"])
        item["as_of"] = _date(item["as_of"])
        if item["run_id"] == latest:
            score = item
    for merge in doc["merges"]:
        merge["created_at"] = _time(merge["created_at"])
    total, amount = doc["orders_sum"]
    return {
        "customer": profile,
        "external_ids": doc["external_ids"],
        "tags": doc["tags"],
        "consents": doc["consents"],
        "orders": doc["orders"],
        "orders_total": total,
        "orders_amount": Decimal(amount),
        "touchpoints": doc["touchpoints"],
        "touchpoints_total": doc["touchpoints_total"],
        "score": score,
        "score_history": doc["score_history"],
        "merges": doc["merges"],
    }


def _time(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)


def _date(value: str | None) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)
