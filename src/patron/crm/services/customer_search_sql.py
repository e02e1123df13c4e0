"""Customer search on PostgreSQL in one statement and one round trip.

The portable search (:mod:`patron.crm.services.customer_search`) asks in three or four
statements -- the latest run and the external ids, the count, the page -- each built as a
SQLAlchemy expression. Under 32 concurrent clients that costs more than the database's
own work: building and compiling the expressions takes most of a worker's time, and every
round trip hands the GIL over among the request threads. PostgreSQL can decide the rest
itself, so here one statement does it all:

1. ``run``: the latest finished run; ``owners``: the customers whose external id ``q`` is;
2. ``prefix``: the customers ``q`` starts (id, external id, phone, email or name), with
   every filter, at most :data:`COUNT_EXACT_UP_TO` + 1 of them -- an index-only scan of
   the live names' index (migration 0008) for a name;
3. ``inside``: only when ``q`` has no digits and the prefixes left the page short, the
   names ``q`` is inside of (the trigram index);
4. the total, and one of three ways to the page, each behind a condition PostgreSQL
   checks once before running it (a "one-time filter"): sort the few matches; walk the
   run's scores in sort order when the matches are many (then the unscored, by id); or,
   beyond the bound without a score order, let the planner walk the sort's index;
5. the page's rows with their scores and tags.

The statement's text depends only on the search's shape (which filters, which sort, what
kind of ``q``), so PostgreSQL can keep its plans. Totals beyond the bound are estimated
and remembered as on the portable path (a second statement, once per
:data:`~patron.crm.services.customer_search.ESTIMATE_SECONDS` per search). Tests hold the
two paths to the same pages.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import threading
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from patron.crm.services import customer_search as portable
from patron.crm.services import customer_search_ranks as ranks
from patron.crm.services.customer_dicts import CUSTOMER_FIELDS, LIST_SCORE_FIELDS, finite
from patron.crm.services.numbered import numbered, values

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["search", "AsyncSearch", "PLAN_SETTINGS"]

#: Sift the run's scores for a page of matches (see :func:`_statement`) when there are at
#: least this many matches, and when sifting is expected to read fewer than
#: :data:`SIFT_RATIO` score entries for each match it spares a lookup of. (Reading the next
#: entry of an index in order costs about a twelfth of looking one up: 0.19 against 2.8 us
#: a row on the bench's machine.)
SIFT_FROM = 200
SIFT_RATIO = 12
#: Rank the matches in this process, by the run's order it holds
#: (:mod:`~patron.crm.services.customer_search_ranks`), from this many matches: below it,
#: looking their scores up costs the database less than a second statement costs both.
RANK_FROM = 100
#: The score filters: the parameter and the snapshot column it compares.
_SCORE_FILTERS = (("grade", "grade"), ("stage", "lifecycle_stage"), ("risk", "churn_risk"))
_WALKABLE = ("predicted_clv", "last_purchase")
_TIMES = frozenset({"created_at", "updated_at"})
_SNAPSHOT = "score_snapshots s ON s.run_id = (SELECT id FROM run) AND s.customer_id = c.id"


@dataclass(frozen=True)
class _Search:
    """One search, ready to run: its statement, values, and the key of its total."""

    statement: str
    params: dict[str, Any]
    key: tuple
    shape: tuple
    page: tuple[str, int, int]  # sort, limit, offset


def _prepare(
    url_key: str,
    *,
    q: str | None,
    grade: str | None,
    stage: str | None,
    risk: str | None,
    tag: str | None,
    owner_id: int | None,
    sort: str,
    limit: int,
    offset: int,
) -> _Search | None:
    """The search's statement, or ``None`` for a prefix with no successor."""
    q = (q or "").strip()[: portable._Q_LENGTH]
    params: dict[str, Any] = {"q": q, "limit": limit}
    kind = _q_kind(q, params)
    if kind is None:
        return None
    given = {"grade": grade, "stage": stage, "risk": risk}
    filters = tuple(name for name, _column in _SCORE_FILTERS if _given(given[name]))
    params.update((name, given[name]) for name in filters)
    if _given(tag):
        params["tag"] = tag
    if owner_id is not None:
        params["owner"] = owner_id
    shape = (kind, filters, _given(tag), owner_id is not None)
    key: tuple = ("sql", url_key, portable.COUNT_EXACT_UP_TO, q, grade, stage, risk, tag, owner_id)
    statement = _statement(
        *shape, sort, limit, offset, portable.COUNT_EXACT_UP_TO, SIFT_FROM, SIFT_RATIO, RANK_FROM
    )
    return _Search(statement, params, key, shape, (sort, limit, offset))


def search(session: Session, **criteria: Any) -> tuple[list[dict[str, Any]], int] | None:
    """The page and total :func:`customer_search.search_customers` answers, or ``None``.

    ``criteria`` as that function takes them (``q``, the filters, ``sort``, ``limit``,
    ``offset``). ``None`` when this path cannot answer (text that does not sort by code
    point, or a prefix with no successor): the caller then takes the portable path.
    """
    if not portable._code_point_order(session):
        return None
    bind = session.get_bind()
    found = _prepare(bind.url.render_as_string(hide_password=True), **criteria)
    if found is None:
        return None
    session.flush()  # the statement must see what this session changed
    connection = session.connection().connection.driver_connection
    database = found.key[1]
    order = ranks.held(database)
    remembered = _recall(found.key)
    if remembered is None:
        with _estimates_lock:
            counting = _counting.setdefault(found.key, threading.Lock())
        with counting:  # one count at a time per search; the others then use it
            remembered = _recall(found.key)
            if remembered is None:
                rows, total, run = _run(connection, _steps(found, None, order))
    if remembered is not None:
        rows, total, run = _run(connection, _steps(found, remembered, order))
    ranks.refresh(database, run, connection)
    return _items(rows, total)


class AsyncSearch:
    """The same search on a pool of psycopg async connections, awaited in the event loop.

    The pool's connections must be in autocommit with :data:`PLAN_SETTINGS` (see
    :func:`_fetch` for why) set when they connect, and use raw cursors
    (``$n`` placeholders, :mod:`~patron.crm.services.numbered`). ``url_key`` names the
    database as the session path does, so both remember the same totals.
    """

    def __init__(self, pool: Any, url_key: str) -> None:
        self.pool = pool
        self.url_key = url_key
        self._counting: dict[tuple, asyncio.Lock] = {}
        self._code_point_order: bool | None = None

    async def __call__(self, **criteria: Any) -> tuple[list[dict[str, Any]], int] | None:
        """As :func:`search`: ``None`` when this path cannot answer."""
        portable._check_page(criteria["sort"], criteria["limit"], criteria["offset"])
        if self._code_point_order is None:
            async with self.pool.connection() as connection:
                cursor = await connection.execute(portable.COLLATION_SQL)
                names = [column.name for column in cursor.description]
                row = await cursor.fetchone()
                self._code_point_order = portable.code_point_collation(
                    dict(zip(names, row, strict=True)) if row else None
                )
        if not self._code_point_order:
            return None
        found = _prepare(self.url_key, **criteria)
        if found is None:
            return None
        order = ranks.held(self.url_key)
        remembered = _recall(found.key)
        if remembered is None:
            if len(self._counting) >= portable._ESTIMATES_MAX:
                self._counting.clear()
            async with self._counting.setdefault(found.key, asyncio.Lock()):
                remembered = _recall(found.key)
                if remembered is None:
                    rows, total, run = await self._run(_steps(found, None, order))
        if remembered is not None:
            rows, total, run = await self._run(_steps(found, remembered, order))
        await ranks.refresh_async(self.url_key, run, self.pool)
        return _items(rows, total)

    async def _run(self, steps: _Steps) -> tuple[list[Any], int, tuple[Any, Any]]:
        async with self.pool.connection() as connection:
            try:
                step = next(steps)
                while True:
                    text, names = numbered(step[1])
                    cursor = await connection.execute(
                        text, values(names, step[2]), prepare=step[0] != "estimate"
                    )
                    step = steps.send(await cursor.fetchall())
            except StopIteration as done:
                return done.value


def _items(rows: list[Any], total: int) -> tuple[list[dict[str, Any]], int]:
    """The page's customers from the statement's rows."""
    items = []
    width = len(CUSTOMER_FIELDS)
    for row in rows:
        if row[_LEAD] is None:
            continue  # the total alone: no customer on this page
        item = dict(zip(CUSTOMER_FIELDS, row[_LEAD : _LEAD + width], strict=True))
        for name in _TIMES:
            item[name] = item[name].astimezone(dt.UTC)
        for index, name in enumerate(LIST_SCORE_FIELDS, start=_LEAD + width):
            item[name] = finite(row[index])
        item["tags"] = list(row[-1])
        items.append(item)
    return items, total


def _given(value: str | None) -> bool:
    return value not in (None, "")


def _q_kind(q: str, params: dict[str, Any]) -> str | None:
    """How ``q`` can match, as :func:`customer_search._prefix_matches` decides.

    Its values go into ``params``; the answer is ``""`` without ``q``, else the arms,
    space-separated (``None``: a prefix with no successor).
    """
    if not q:
        return ""
    arms = ["owners"]
    number, ranges = portable._prefix_ranges(q)
    if number is not None:
        params["number"] = number
        arms.append("id")
    if not any(ch.isdigit() for ch in q):  # as the portable path: names q is inside of
        params["pattern"] = f"%{portable._escape(q.lower())}%"
        arms.append("inside")
    for index, (column, start) in enumerate(ranges):
        end = portable._successor(start)
        if end is None:
            return None
        params[f"lo{index}"], params[f"hi{index}"] = start, end
        arms.append(f"{column}:{index}")
    return " ".join(arms)


# --- remembered totals ---------------------------------------------------------------------
# As on the portable path (ESTIMATE_SECONDS): a total beyond the bound is an estimate,
# reused for a while. Here the run it was counted under travels with it, and the statement
# itself ignores it once a newer run has finished.

_estimates: dict[tuple, tuple[float, int, int | None]] = {}
_estimates_lock = threading.Lock()
_counting: dict[tuple, threading.Lock] = {}


#: What a search asks the database, step by step: ``(what, statement, values)`` out, the
#: rows in; at the end the page's rows, the total and the latest run (id, version). The
#: same steps run on a session's connection (:func:`search`) and on an async pool
#: (:class:`AsyncSearch`).
_Steps = Generator[
    tuple[str, str, dict[str, Any]], list[Any], tuple[list[Any], int, tuple[Any, Any]]
]


def _steps(
    found: _Search, remembered: tuple[int, int | None] | None, order: ranks.RunOrder | None
) -> _Steps:
    """The page with its total; past the bound, and not remembered, then an estimate.

    A remembered total counted under an older run is ignored by the statement itself,
    which then counts. When the matches are many and ``order`` is the latest run's, the
    statement returns their ids instead of the page, and this ranks them and reads the
    page's rows.
    """
    known, known_run = remembered or (None, None)
    held = (order.run_id, order.version) if order is not None else (None, None)
    params = {**found.params, "known": known, "known_run": known_run}
    params["ranked_run"], params["ranked_version"] = held
    rows = yield "page", found.statement, params
    total, known, run_id, version, prefixed, hits = rows[0][:_LEAD]
    if hits is not None and order is not None:
        page = order.page(np.frombuffer(hits, dtype=">i8"), *found.page)
        rows = (yield "rows", _ROWS, {"ids": page, "run": run_id}) if page else []
    if known or total <= portable.COUNT_EXACT_UP_TO:
        return rows, total, (run_id, version)
    inside = prefixed is not None and prefixed < found.params["limit"]
    plan = yield "estimate", _estimate_statement(found.shape, inside=inside), found.params
    total = max(int(plan[0][0][0]["Plan"]["Plan Rows"]), total)
    _remember(found.key, total, run_id)
    return rows, total, (run_id, version)


def _run(connection: Any, steps: _Steps) -> tuple[list[Any], int, tuple[Any, Any]]:
    """Run ``steps`` on a session's psycopg connection."""
    try:
        what, statement, params = next(steps)
        while True:
            if what == "page":
                rows = _fetch(connection, statement, params)
            else:
                rows = connection.execute(statement, params).fetchall()
            what, statement, params = steps.send(rows)
    except StopIteration as done:
        return done.value


def _recall(key: tuple) -> tuple[int, int | None] | None:
    """A remembered total and the run it was counted under, while it stands."""
    remembered = _estimates.get(key)
    if remembered is None or remembered[0] <= portable.time.monotonic():
        return None
    return remembered[1], remembered[2]


def _fetch(connection: Any, statement: str, params: dict[str, Any]) -> list[Any]:
    """The statement's rows, from a plan made once per connection.

    Planning the statement costs more than running it (its four ways to a page are all
    planned, though one runs), and PostgreSQL would plan it afresh for each search's
    values. A generic plan loses nothing here: which way runs is decided as it runs,
    and a page's size is written in. Nor are parallel workers any use: a way to the page
    that does not run would still start them. The settings are sent with the statement
    and reset after it, in one round trip (a pipeline).
    """
    try:
        with connection.pipeline():
            connection.execute(_SETTINGS)
            cursor = connection.execute(statement, params, prepare=True)
            for reset in _RESET:
                connection.execute(reset)
    except Exception:
        from psycopg.pq import TransactionStatus

        if connection.info.transaction_status == TransactionStatus.IDLE:
            for reset in _RESET:  # autocommit: no rollback undoes the settings
                connection.execute(reset)
        raise
    return cursor.fetchall()


#: How the statement is planned and run (see :func:`_fetch`).
PLAN_SETTINGS = {"plan_cache_mode": "force_generic_plan", "max_parallel_workers_per_gather": "0"}
_SETTINGS = "SELECT " + ", ".join(
    f"set_config('{name}', '{value}', false)" for name, value in PLAN_SETTINGS.items()
)
#: One statement a setting: reading the defaults from ``pg_settings`` builds all 350
#: settings (1.4 ms, twice the search).
_RESET = tuple(f"RESET {name}" for name in PLAN_SETTINGS)


def _remember(key: tuple, total: int, run_id: int | None) -> None:
    with _estimates_lock:
        if len(_estimates) >= portable._ESTIMATES_MAX:
            _estimates.clear()
            _counting.clear()
        deadline = portable.time.monotonic() + portable.ESTIMATE_SECONDS
        _estimates[key] = (deadline, total, run_id)


@functools.lru_cache(maxsize=256)
def _estimate_statement(shape: tuple, *, inside: bool) -> str:
    """``EXPLAIN`` of the matches: PostgreSQL's estimate of how many there are.

    Of the prefixes alone, or of the names ``q`` is inside of too; never of the external
    ids' owners, a handful at most, whose subquery the planner cannot see into (it would
    guess half the table).
    """
    kind, *rest = shape
    arms = [arm for arm in kind.split() if arm != "owners" and (inside or arm != "inside")]
    where = _where(" ".join(arms), *rest, inside_always=True)
    run = "SELECT id FROM scoring_runs WHERE status = 'done' ORDER BY id DESC LIMIT 1"
    matches = f"SELECT c.id FROM customers c {_join(shape[1])} WHERE {where}"
    return f"EXPLAIN (FORMAT JSON) WITH run AS ({run}) {matches}"


# --- the statement -------------------------------------------------------------------------


def _join(filters: tuple[str, ...], *, outer: bool = False) -> str:
    """The latest run's snapshot: required by a score filter, else optional (or none)."""
    if filters:
        return f"JOIN {_SNAPSHOT}"
    return f"LEFT JOIN {_SNAPSHOT}" if outer else ""


def _filters(filters: tuple[str, ...], tagged: bool, owned: bool) -> list[str]:
    """Every condition but ``q``'s."""
    columns = dict(_SCORE_FILTERS)
    where = ["c.merged_into_id IS NULL"]
    where += [f"s.{columns[name]} = %({name})s" for name in filters]
    if tagged:
        where.append("c.id IN (SELECT customer_id FROM customer_tags WHERE tag = %(tag)s)")
    if owned:
        where.append("c.owner_id = %(owner)s")
    return where


def _arm(arm: str) -> str:
    """One way ``q`` matches, as a condition on ``c``."""
    if arm == "owners":
        return "c.id IN (SELECT customer_id FROM owners)"
    if arm == "id":
        return "c.id = %(number)s"
    if arm == "inside":
        return "c.name ILIKE %(pattern)s"
    column, index = arm.split(":")
    return f"(c.{column} >= %(lo{index})s AND c.{column} < %(hi{index})s)"


def _arm_rank(arm: str) -> int:
    return 0 if arm.startswith("name:") else 1


def _where(
    kind: str, filters: tuple[str, ...], tagged: bool, owned: bool, *, inside_always: bool = False
) -> str:
    """The whole search as one condition on ``c`` (and ``s``).

    Every filter, and ``q`` matching by a prefix or, when the prefixes left the page
    short (or ``inside_always``), inside a name.
    """
    where = _filters(filters, tagged, owned)
    if kind:
        arms = [_arm(arm) for arm in kind.split() if arm != "inside"]
        if "inside" in kind and inside_always:
            arms.append(_arm("inside"))
        elif "inside" in kind:
            arms.append(f"((SELECT n FROM prefix_n) < %(limit)s AND {_arm('inside')})")
        where.append(f"({' OR '.join(arms)})")
    return " AND ".join(where)


def _ctes(kind: str, filters: tuple[str, ...], tagged: bool, owned: bool, *, bound: int) -> str:
    """The run, the external ids' owners, and the prefix matches (counted up to the bound)."""
    where = " AND ".join(_filters(filters, tagged, owned))
    join = _join(filters)
    if kind:
        # One SELECT per way to match, each answered by its own index (the name's
        # index-only), rather than one OR the bitmap scan would check row by row.
        # Each arm leaves out what an arm before it found, so the arms need no
        # de-duplication (a hash of two thousand ids for a common name); the name's
        # ranges, which find the most, go first.
        arms = sorted((arm for arm in kind.split() if arm != "inside"), key=_arm_rank)
        selects = []
        for index, arm in enumerate(arms):
            earlier = "".join(f" AND {_arm(before)} IS NOT TRUE" for before in arms[:index])
            selects.append(
                f"SELECT c.id FROM customers c {join} WHERE {where} AND {_arm(arm)}{earlier}"
            )
        prefix = f"{' UNION ALL '.join(selects)} LIMIT {bound + 1}"
    else:
        prefix = f"SELECT c.id FROM customers c {join} WHERE {where} LIMIT {bound + 1}"
    return f"""
WITH RECURSIVE sources(source) AS (
    SELECT min(source) FROM customer_external_ids WHERE %(q)s <> ''
    UNION ALL
    SELECT (SELECT min(e.source) FROM customer_external_ids e WHERE e.source > s.source)
    FROM sources s WHERE s.source IS NOT NULL
),
run AS MATERIALIZED (
    SELECT id, xmin::text::bigint AS version FROM scoring_runs
    WHERE status = 'done' ORDER BY id DESC LIMIT 1
),
owners AS MATERIALIZED (
    SELECT x.customer_id FROM sources s
    JOIN customer_external_ids x ON x.source = s.source AND x.external_id = %(q)s
),
prefix AS MATERIALIZED ({prefix}),
prefix_n AS MATERIALIZED (SELECT count(*) AS n FROM prefix)"""


def _order(sort: str, *, id_column: str = "c.id") -> str:
    key = sort.removeprefix("-")
    if key == "name":
        return f"c.name, {id_column}"
    if key == "created_at":
        return f"c.created_at DESC, {id_column} DESC"
    direction = "DESC" if sort.startswith("-") else "ASC"
    return f"s.{key} {direction} NULLS LAST, {id_column}"


_COLUMNS = ", ".join(
    [f"c.{name}" for name in CUSTOMER_FIELDS]
    + [f"s.{name}" for name in LIST_SCORE_FIELDS]
    + ["array(SELECT g.tag FROM customer_tags g WHERE g.customer_id = c.id ORDER BY g.tag)"]
)
#: The columns before a page's customer in the statement's rows: the total, whether it
#: was remembered, the latest run and its version, the prefix matches, the ranked ids.
_LEAD = 6
#: The page's rows, by the ids the process ranked, in that order, as the statement's.
_ROWS = f"""SELECT {", ".join(["NULL"] * _LEAD)}, {_COLUMNS}
FROM unnest(%(ids)s::bigint[]) WITH ORDINALITY p(id, n) JOIN customers c ON c.id = p.id
LEFT JOIN score_snapshots s ON s.run_id = %(run)s::bigint AND s.customer_id = c.id
ORDER BY p.n"""


@functools.lru_cache(maxsize=1024)
def _statement(
    kind: str,
    filters: tuple[str, ...],
    tagged: bool,
    owned: bool,
    sort: str,
    limit: int,
    offset: int,
    bound: int,
    sift_from: int = SIFT_FROM,
    sift_ratio: int = SIFT_RATIO,
    rank_from: int = RANK_FROM,
) -> str:
    """The search of this shape, page and sort.

    Limit and offset are written in: as parameters, a plan PostgreSQL reuses would not
    know that a page is twenty rows.

    Sorted by a score, a few thousand matches ("张伟": 2,000 of a million) were ranked by
    looking each one's score up in the run (2.8 us each). When the matches are many and
    the page is near the front, it is cheaper to sift: read the run's scores in sort
    order from their index and keep the first ``limit + offset`` that are matches (a hash
    of their ids), about ``(limit + offset) * run size / matches`` entries at a twelfth
    of a lookup each. Sifting stops after four times that many entries (matches bunched
    at the far end), and whenever it cannot fill the page the lookups rank them as before.

    Cheaper still, when the process holds the latest run's order (``%(ranked_run)s``,
    see :mod:`~patron.crm.services.customer_search_ranks`) and the matches number from
    ``rank_from`` to the bound: no page, but the matches' ids (``hits``, a ``bytea`` of
    big-endian ``int8``), which the process ranks itself.
    """
    where = _where(kind, filters, tagged, owned)
    key = sort.removeprefix("-")
    walkable = key in _WALKABLE
    direction = "DESC" if sort.startswith("-") else "ASC"
    inside = ""
    if "inside" in kind:
        inside = f""" UNION ALL
    SELECT c.id FROM customers c {_join(filters)}
    WHERE (SELECT n FROM prefix_n) < {limit} AND c.id NOT IN (SELECT id FROM prefix)
      AND {" AND ".join(_filters(filters, tagged, owned))} AND {_arm("inside")}
    LIMIT {bound + 1}"""
    if walkable:
        walk = f"(SELECT id FROM run) IS NOT NULL AND (SELECT n FROM total) > {bound}"
    else:
        walk = "false"
    # Without a walk, a score order means no run: every customer is unscored, in id order.
    large_order = "c.id" if walkable and not filters else _order(sort)
    # The small branch reads customers only when the sort needs them.
    small_join = "JOIN customers c ON c.id = h.id" if not walkable else ""
    small_order = _order(sort, id_column="h.id")
    small_snapshot = _SNAPSHOT.replace("c.id", "h.id")
    walked = rest = "SELECT NULL::bigint AS id WHERE false"
    if walkable:
        scored = f"""FROM score_snapshots s JOIN customers c ON c.id = s.customer_id
        WHERE s.run_id = (SELECT id FROM run) AND s.{key} IS NOT NULL AND {where}"""
        walked = f"""SELECT s.customer_id AS id {scored} AND (SELECT w FROM walk)
        ORDER BY s.{key} {direction}, s.customer_id LIMIT {limit} OFFSET {offset}"""
        rest = f"""SELECT c.id FROM customers c {_join(filters, outer=True)}
        WHERE (SELECT w FROM walk) AND (SELECT n FROM walked_n) < {limit}
          AND (s.customer_id IS NULL OR s.{key} IS NULL) AND {where}
        ORDER BY c.id
        LIMIT {limit} - (SELECT n FROM walked_n)"""
        if offset:
            # Past the scored matches: skip the unscored ones the pages before showed.
            # (Counted only when this page has no scored match; a Limit computes its
            # offset even when its rows are never asked for.)
            rest += f"""
        OFFSET CASE WHEN (SELECT w FROM walk) AND (SELECT n FROM walked_n) = 0
            THEN greatest({offset} - (SELECT count(*) {scored}), 0) ELSE 0 END"""
    front = limit + offset
    rank = "false"
    sift = sifted = "SELECT NULL::bigint AS id WHERE false"
    if walkable:
        rank = f"""(NOT (SELECT w FROM walk)
            AND (SELECT n FROM total) BETWEEN {max(rank_from, 1)} AND {bound}
            AND (SELECT id FROM run) = %(ranked_run)s::bigint
            AND (SELECT version FROM run) = %(ranked_version)s::bigint) IS TRUE"""
        # One row: how many score entries to sift at most, or NULL for no sifting.
        sift = f"""SELECT CASE WHEN NOT (SELECT w FROM walk) AND NOT (SELECT r FROM ranked)
                 AND (SELECT n FROM total) BETWEEN {max(sift_from, 1)} AND {bound}
                 AND {front}::float8 * r.customers
                     < {sift_ratio}::float8 * (SELECT n FROM total) ^ 2
            THEN ceil(4.0 * {front} * r.customers / (SELECT n FROM total))::bigint END AS k
        FROM scoring_runs r WHERE r.id = (SELECT id FROM run)"""
        # The inner Limit caps what is read; the outer one stops reading at a full page
        # (no ORDER BY between them, so neither waits for the other).
        sifted = f"""SELECT f.id FROM (
            SELECT s.customer_id AS id FROM score_snapshots s
            WHERE (SELECT k FROM sift) IS NOT NULL AND s.run_id = (SELECT id FROM run)
              AND s.{key} IS NOT NULL
            ORDER BY s.{key} {direction}, s.customer_id LIMIT (SELECT k FROM sift)
        ) f WHERE (f.id IN (SELECT id FROM hit)) IS TRUE
        LIMIT {limit} OFFSET {offset}"""
    return f"""{_ctes(kind, filters, tagged, owned, bound=bound)},
hit AS MATERIALIZED (SELECT id FROM prefix{inside}),
total AS MATERIALIZED (
    SELECT CASE WHEN %(known)s::bigint IS NOT NULL
                 AND %(known_run)s::bigint IS NOT DISTINCT FROM (SELECT id FROM run)
           THEN %(known)s::bigint ELSE (SELECT count(*) FROM hit) END AS n,
           %(known)s::bigint IS NOT NULL
                 AND %(known_run)s::bigint IS NOT DISTINCT FROM (SELECT id FROM run) AS known
),
walk AS MATERIALIZED (SELECT {walk} AS w),
ranked AS MATERIALIZED (SELECT {rank} AS r),
sift AS MATERIALIZED ({sift}),
sifted AS MATERIALIZED ({sifted}),
sifted_full AS MATERIALIZED (SELECT count(*) = {limit} AS filled FROM sifted),
small AS (
    SELECT h.id FROM hit h {small_join} LEFT JOIN {small_snapshot}
    WHERE NOT (SELECT w FROM walk) AND (SELECT n FROM total) <= {bound}
      AND NOT (SELECT filled FROM sifted_full) AND NOT (SELECT r FROM ranked)
    ORDER BY {small_order} LIMIT {limit} OFFSET {offset}
),
walked AS MATERIALIZED ({walked}),
walked_n AS MATERIALIZED (SELECT count(*) AS n FROM walked),
rest AS ({rest}),
large AS (
    SELECT c.id FROM customers c {_join(filters)}
    WHERE NOT (SELECT w FROM walk) AND (SELECT n FROM total) > {bound} AND {where}
    ORDER BY {large_order} LIMIT {limit} OFFSET {offset}
),
page AS (
    SELECT id FROM sifted WHERE (SELECT filled FROM sifted_full)
    UNION ALL SELECT id FROM small UNION ALL SELECT id FROM walked
    UNION ALL SELECT id FROM rest UNION ALL SELECT id FROM large
)
SELECT t.n, t.known, (SELECT id FROM run), (SELECT version FROM run),
    CASE WHEN t.known THEN NULL ELSE (SELECT n FROM prefix_n) END,
    CASE WHEN (SELECT r FROM ranked)
        THEN (SELECT string_agg(int8send(id), ''::bytea) FROM hit) END, r.*
FROM total t LEFT JOIN LATERAL (
    SELECT {_COLUMNS}
    FROM page p JOIN customers c ON c.id = p.id LEFT JOIN {_SNAPSHOT}
    ORDER BY {_order(sort)}
) r ON true"""
