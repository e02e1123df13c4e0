"""The latest run's score order, held by each server process, to rank many matches at once.

Sorted by a score, a page of a search with thousands of matches (every "张萍…": 1,919 of
a million) needs the score of every match. PostgreSQL looked each one up in the run (2.8
us a match) or sifted the run's scores in order for the page (10,000 index entries for
twenty rows): 4.4 ms of the database's time per search, more than half of what the
32-client search load cost it. A finished run's scores never change, so a process keeps
the latest run's order here: for each score a search sorts by, every customer's place
among the run's values, by customer id (4 bytes a customer and score: 8 MB for a
million). The database then returns only the matches' ids (an index-only scan: 0.35 ms
for 1,919), the process ranks them (numpy, tens of microseconds), and a second statement
reads the page's rows.

The first search that sees a new run loads its order (0.6 s of the database's time and
0.4 s of the process's for a million scores); until it is loaded, and for any other run, the
database ranks as before. A run is known by its id and the ``xmin`` of its row, which no
other row of the cluster shares: a database dropped and made again restarts run ids, and
a test suite does that all day.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "RunOrder",
    "LATEST_RUN",
    "parse",
    "load",
    "load_async",
    "held",
    "refresh",
    "refresh_async",
]

log = logging.getLogger(__name__)

#: The latest finished run, as the search statement picks it, with the row's version.
LATEST_RUN = (
    "SELECT id, xmin::text::bigint AS version FROM scoring_runs"
    " WHERE status = 'done' ORDER BY id DESC LIMIT 1"
)

#: A run's sort keys as five columns of packed binary values, read in one row: a
#: ``COPY`` of a million rows arrives as a million messages (1.3 s of Python to collect).
_READ = """SELECT string_agg(int8send(customer_id), ''::bytea),
    string_agg(float8send(coalesce(predicted_clv, 0)), ''::bytea),
    string_agg(CASE WHEN predicted_clv IS NULL THEN '\\x01' ELSE '\\x00' END::bytea, ''::bytea),
    string_agg(int4send(coalesce(last_purchase - DATE '1970-01-01', 0)), ''::bytea),
    string_agg(CASE WHEN last_purchase IS NULL THEN '\\x01' ELSE '\\x00' END::bytea, ''::bytea)
FROM score_snapshots WHERE run_id = {run}"""
#: Places are held by customer id (one lookup a match, not a binary search of the run:
#: 0.6 ms for 2,000 matches in a million); ids come from a sequence, so the tables are
#: about as long as the run. Beyond this id (4 bytes a customer a key) the run is not held.
MAX_ID = 50_000_000
_ID_BITS = 31  # ids below 2**31, places below 2**31: (1, 31, 31) bits, packed
_PLACES = (1 << 31) - 1


@dataclass(frozen=True)
class RunOrder:
    """One run's customers and their places by CLV and by last purchase."""

    run_id: int
    version: int
    #: per key, the place of each customer's value among the run's, by customer id
    #: (-1: NULL, or not in the run)
    places: dict[str, np.ndarray]

    def page(self, hits: np.ndarray, sort: str, limit: int, offset: int) -> list[int]:
        """The ids of ``hits`` on the page, in ``sort`` order as the search's SQL sorts.

        ``ORDER BY key [DESC] NULLS LAST, id``: customers without a value (or not in the
        run) last, ties by id.
        """
        ids = np.asarray(hits, dtype=np.int64)
        table = self.places[sort.removeprefix("-")]
        inside = (ids >= 0) & (ids < len(table))
        place = np.full(len(ids), -1, dtype=np.int64)
        place[inside] = table[ids[inside]]
        missing = place < 0
        if sort.startswith("-"):
            place = _PLACES - place
        if len(ids) and ids.min() >= 0 and ids.max() < 1 << _ID_BITS:
            # One int64 per match, (missing, place, id) in its bits: one sort of numbers
            # (20 us for 2,000) instead of a sort by three keys.
            place[missing] = 0
            packed = (missing.astype(np.int64) << 62) | (place << _ID_BITS) | ids
            return (np.sort(packed)[offset : offset + limit] & ((1 << _ID_BITS) - 1)).tolist()
        order = np.lexsort((ids, place, missing))
        return ids[order[offset : offset + limit]].tolist()


def parse(run_id: int, version: int, columns: tuple[bytes | None, ...]) -> RunOrder:
    """A :class:`RunOrder` from the row :data:`_READ` gives.

    Places are dense ranks in PostgreSQL's order of the values: ``float8`` NaN above
    every number and equal to itself, ``-0`` equal to ``0`` -- as ``np.unique`` sorts
    and groups them.
    """
    ids, clv, clv_null, last, last_null = (
        np.frombuffer(column or b"", dtype=kind)
        for column, kind in zip(columns, (">i8", ">f8", "u1", ">i4", "u1"), strict=True)
    )
    if not len(ids) == len(clv) == len(clv_null) == len(last) == len(last_null):
        raise ValueError("the run's columns differ in length")
    ids = ids.astype(np.int64)
    if len(ids) and (ids.min() < 0 or ids.max() > MAX_ID):
        raise ValueError(f"customer ids beyond {MAX_ID:,}")
    size = int(ids.max()) + 1 if len(ids) else 0
    places = {
        "predicted_clv": _places(ids, size, clv.astype(np.float64), clv_null),
        "last_purchase": _places(ids, size, last.astype(np.int64), last_null),
    }
    return RunOrder(run_id, version, places)


def _places(ids: np.ndarray, size: int, values: np.ndarray, null: np.ndarray) -> np.ndarray:
    places = np.full(size, -1, dtype=np.int32)
    valued = null == 0
    if valued.any():
        _unique, inverse = np.unique(values[valued], return_inverse=True)
        places[ids[valued]] = inverse.reshape(-1)
    return places


def load(connection: Any) -> RunOrder | None:
    """The latest finished run's order, read on a psycopg connection (``None``: no run)."""
    row = connection.execute(LATEST_RUN).fetchone()
    if row is None:
        return None
    columns = connection.execute(_READ.format(run=int(row[0])), binary=True).fetchone()
    return parse(row[0], row[1], columns)


async def load_async(connection: Any) -> RunOrder | None:
    """:func:`load` on an async psycopg connection; the ranking runs in a thread."""
    import asyncio

    cursor = await connection.execute(LATEST_RUN)
    row = await cursor.fetchone()
    if row is None:
        return None
    cursor = await connection.execute(_READ.format(run=int(row[0])), binary=True)
    columns = await cursor.fetchone()
    return await asyncio.to_thread(parse, row[0], row[1], columns)


# --- what this process holds ---------------------------------------------------------------

_held: dict[str, RunOrder] = {}
_claimed: dict[str, tuple[int, int]] = {}  # loads in progress or failed, by database
_lock = threading.Lock()


def held(database: str) -> RunOrder | None:
    """The run order this process holds for ``database`` (its URL), if any."""
    return _held.get(database)


def _claim(database: str, run: tuple[Any, Any]) -> bool:
    """Whether the caller should load ``run`` (id, version) now.

    It should when this process does not hold that run, and no one is loading it or has
    failed to.
    """
    run_id, version = run
    if run_id is None:
        return False
    with _lock:
        current = _held.get(database)
        if current is not None and (current.run_id, current.version) == (run_id, version):
            return False
        if _claimed.get(database) == (run_id, version):
            return False
        _claimed[database] = (run_id, version)
        return True


def _keep(database: str, order: RunOrder | None, error: BaseException | None = None) -> None:
    """Hold ``order`` for ``database``.

    ``None`` with the ``error`` a load failed with: that run is not tried again.
    """
    with _lock:
        if order is not None:
            _held[database] = order
            _claimed.pop(database, None)
    if error is not None:
        log.warning("could not load the latest run's score order: %s", error)


def refresh(database: str, run: tuple[Any, Any], connection: Any) -> None:
    """Load the latest run's order on a session's psycopg ``connection``, if it is due.

    It is due when the run a search just saw (``run``: id, version) is not held and no
    one is loading it or has failed to. The load runs in a savepoint; a failure is logged
    and leaves the caller's transaction as it was.
    """
    if not _claim(database, run):
        return
    try:
        with connection.transaction():
            _keep(database, load(connection))
    except Exception as error:  # the search is answered; ranking stays in the database
        _keep(database, None, error)


async def refresh_async(database: str, run: tuple[Any, Any], pool: Any) -> None:
    """:func:`refresh` for an async ``pool``'s searches.

    On a connection of its own, made as the pool makes its own: the load takes about a
    second for a million scores, which would hold one of the pool's few connections.
    """
    if not _claim(database, run):
        return
    try:
        import psycopg

        async with await psycopg.AsyncConnection.connect(
            pool.conninfo, **pool.kwargs
        ) as connection:
            _keep(database, await load_async(connection))
    except Exception as error:  # the search is answered; ranking stays in the database
        _keep(database, None, error)
