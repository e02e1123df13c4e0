"""Finding customers: by name, phone, email or id, filtered by their latest scores.

The service desk types a fragment of a phone number or a name and expects an answer at
once, in a store of a million customers. So every way ``q`` can match is a prefix range on
an indexed column (the database combines them with a bitmap OR); the only scan, a
substring match on the name, runs just when ``q`` has no digits and the prefix matches did
not fill a page. Scores come from one snapshot, the latest finished run's, joined by its
primary key ``(run_id, customer_id)``.

Under load every round trip counts as much as the work, so a search asks in as few
statements as it can: the latest run and the external ids ``q`` may be read together, a
page carries its tags (on PostgreSQL), and a total too large to count exactly -- an
estimate anyway -- is remembered for :data:`ESTIMATE_SECONDS` per search.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, and_, false, func, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY

from patron.crm.contacts import normalise_phone
from patron.crm.services.customer_dicts import (
    CUSTOMER_FIELDS,
    LIST_SCORE_FIELDS,
    SCORE_FIELDS,
    customer_dict,
    finite,
)
from patron.crm.services.errors import Invalid
from patron.crm.tables import (
    Customer,
    CustomerExternalId,
    CustomerTag,
    ScoreSnapshot,
    ScoringRun,
)
from patron.i18n import _

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from sqlalchemy import ColumnElement, Select
    from sqlalchemy.orm import Session

__all__ = [
    "SORTS",
    "MAX_LIMIT",
    "COUNT_EXACT_UP_TO",
    "ESTIMATE_SECONDS",
    "search_customers",
    "iter_customers",
]

SORTS = (
    "predicted_clv",
    "-predicted_clv",
    "last_purchase",
    "-last_purchase",
    "name",
    "-created_at",
)
MAX_LIMIT = 500
#: Totals are counted exactly up to here; beyond, PostgreSQL's estimate stands in.
COUNT_EXACT_UP_TO = 10_000
#: A total beyond :data:`COUNT_EXACT_UP_TO` (an estimate) is reused this long by the same
#: search in this process: counting the bound out again for every page of "all gold
#: customers" would cost more than the page. Totals within the bound are always exact.
ESTIMATE_SECONDS = 10.0
_ESTIMATES_MAX = 1_000
_estimates: dict[tuple, tuple[float, int]] = {}
_estimates_lock = threading.Lock()
_counting: dict[tuple, threading.Lock] = {}  # a lock per search whose total is being counted
_Q_LENGTH = 128
_PHONE_LIKE = re.compile(r"[\d\s()+\-.]+")
_MIN_PHONE_DIGITS = 3
#: Database collations under which a ``[p, next(p))`` range holds exactly the strings that
#: start with ``p``: byte (code point) order. Under a linguistic collation (en_US) the
#: range can miss names with punctuation, so search falls back to ``LIKE`` there.
_CODE_POINT_COLLATIONS = {"c", "posix", "c.utf-8", "c.utf8", "ucs_basic"}
_collation_cache: dict[str, bool] = {}


@dataclass
class _Plan:
    """What a search selects: the customers matching, and the snapshot to join."""

    where: list[ColumnElement[bool]]
    run_id: int | None
    inner: bool  # only scored customers can match (a score filter was given)
    total: int | None = None  # counted once, by count()
    scored: int = 0  # how many customers the run scored
    key: tuple | None = None  # the search, for remembering an estimated total

    def select_from(self, *columns: Any, outer: bool | None = None) -> Select[Any]:
        query = select(*columns).select_from(Customer)
        if self.run_id is not None:
            on = and_(ScoreSnapshot.run_id == self.run_id, ScoreSnapshot.customer_id == Customer.id)
            query = query.join(
                ScoreSnapshot, on, isouter=not self.inner if outer is None else outer
            )
        return query.where(*self.where)

    def count(self, session: Session) -> int:
        """How many customers match: exact up to :data:`COUNT_EXACT_UP_TO`.

        Beyond that, PostgreSQL gives its planner's estimate (never less than the exact
        bound): counting a million rows to show page one of "about a million" would cost
        more than the page. SQLite counts exactly.
        """
        if self.total is None:
            self.total = _count(session, self)
        return self.total

    def walks(self, sort: str) -> bool:
        """Whether a page is best read by walking the run's scores in ``sort`` order.

        Only when the matches are too many to count: sorting them reads each one's
        score, at most :data:`COUNT_EXACT_UP_TO` index probes, while a walk reads about
        ``scored / matches`` scores per row of the page -- and all of them when the
        matches are few or unscored (8,946 customers with 雪 in their name, all new:
        seventeen seconds through a million scores to find none).
        """
        if self.run_id is None or sort.removeprefix("-") not in ("predicted_clv", "last_purchase"):
            return False
        return self.total is None or self.total > COUNT_EXACT_UP_TO

    def page(
        self, session: Session, columns: list[Any], sort: str, limit: int, offset: int
    ) -> list[Any]:
        """The rows of one page, in ``sort`` order (unscored customers last)."""
        name = sort.removeprefix("-")
        if not self.walks(sort):
            # Few matches for the size of the run: fetch them by their indexes and sort.
            # (Left to itself, PostgreSQL may instead walk the CLV index through a million
            # snapshots hoping to meet the matches early.)
            # The page's ids first, then their rows: sorting whole rows (and each one's
            # tags) of two thousand "刘刚…" to keep twenty cost twice the time.
            order = _order(sort, self.run_id)
            chosen = self.select_from(Customer.id).order_by(*order).limit(limit).offset(offset)
            # Only the ids narrow the rows: repeating the conditions would let the planner
            # (which guesses one match for a Chinese name range) read all matches again.
            rows = _Plan([Customer.id.in_(chosen.scalar_subquery())], self.run_id, False)
            return list(session.execute(rows.select_from(*columns).order_by(*order)))
        # Many matches: walk the snapshots in sort order, which meets a page of them at
        # once, then the customers with no value to sort by, by id. Two queries, because
        # "NULLS LAST" over an outer join cannot walk the (run_id, predicted_clv) index.
        key = getattr(ScoreSnapshot, name)
        scored = self.select_from(*columns, outer=False).where(key.is_not(None))
        ordered = key.desc() if sort.startswith("-") else key.asc()
        rows = list(
            session.execute(scored.order_by(ordered, Customer.id).limit(limit).offset(offset))
        )
        if len(rows) == limit:
            return rows
        if rows:
            scored_total = offset + len(rows)
        else:
            scored_total = int(session.scalar(select(func.count()).select_from(scored.subquery())))
        rest = self.select_from(*columns).where(
            or_(ScoreSnapshot.customer_id.is_(None), key.is_(None))
        )
        query = rest.order_by(Customer.id).limit(limit - len(rows))
        rows += session.execute(query.offset(max(offset - scored_total, 0)))
        return rows


def search_customers(
    session: Session,
    *,
    q: str | None = None,
    grade: str | None = None,
    stage: str | None = None,
    risk: str | None = None,
    tag: str | None = None,
    owner_id: int | None = None,
    sort: str = "-predicted_clv",
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the customers matching ``q`` and every filter, and how many match.

    Parameters
    ----------
    q
        A customer id, an external id (exact), the start of a phone number or an email
        (normalised: ``+86 138 0013`` finds ``13800138000``), or the start of a name; a
        name fragment without digits also matches inside names when the prefixes find
        fewer than ``limit`` customers.
    grade, stage, risk
        The latest run's ``grade``, ``lifecycle_stage`` and ``churn_risk``: only scored
        customers match these.
    tag, owner_id
        Customers carrying the tag; customers owned by the user.
    sort
        One of :data:`SORTS` (``-`` for descending); customers without a score come last,
        ties go by id.
    limit, offset
        The page: at most :data:`MAX_LIMIT` customers.

    Returns
    -------
    list of dict, int
        Each dict holds the profile fields, ``tags`` and the latest run's
        :data:`~patron.crm.services.customer_dicts.LIST_SCORE_FIELDS` (``None`` without a
        score); then the number of customers matching: exact up to
        :data:`COUNT_EXACT_UP_TO`, beyond that PostgreSQL's estimate (never below the
        bound). Merged customers never appear.

    Raises
    ------
    Invalid
        An unknown sort, or a page outside the allowed range.
    """
    _check_page(sort, limit, offset)
    if session.get_bind().dialect.name == "postgresql":
        from patron.crm.services import customer_search_sql

        found = customer_search_sql.search(
            session,
            q=q,
            grade=grade,
            stage=stage,
            risk=risk,
            tag=tag,
            owner_id=owner_id,
            sort=sort,
            limit=limit,
            offset=offset,
        )
        if found is not None:
            return found
    return _search(session, q, grade, stage, risk, tag, owner_id, sort, limit, offset)


def _search(
    session: Session,
    q: str | None,
    grade: str | None,
    stage: str | None,
    risk: str | None,
    tag: str | None,
    owner_id: int | None,
    sort: str,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """The portable search: SQLite's, and PostgreSQL's where its statement cannot serve."""
    plan = _plan(session, q, grade, stage, risk, tag, owner_id, limit)
    if plan is None:
        return [], 0
    total = plan.count(session)
    if total == 0 or (offset >= total and total <= COUNT_EXACT_UP_TO):
        return [], total
    # Plain columns, not Customer objects: a page is read, never changed, and building
    # twenty ORM objects costs more than the query.
    columns: list[Any] = [getattr(Customer, name) for name in CUSTOMER_FIELDS]
    if plan.run_id is not None:
        columns += [getattr(ScoreSnapshot, name) for name in LIST_SCORE_FIELDS]
    inline_tags = session.get_bind().dialect.name == "postgresql"
    if inline_tags:  # the page brings its tags: one round trip fewer
        tagged = select(CustomerTag.tag).where(CustomerTag.customer_id == Customer.id)
        columns.append(func.array(tagged.order_by(CustomerTag.tag).scalar_subquery(), type_=_TAGS))
    rows = plan.page(session, columns, sort, limit, offset)
    tags = {} if inline_tags else _tags(session, [row[0] for row in rows])
    width = len(CUSTOMER_FIELDS)
    items = []
    for row in rows:
        item = dict(zip(CUSTOMER_FIELDS, row[:width], strict=True))
        item["tags"] = list(row[-1] or ()) if inline_tags else tags.get(row[0], [])
        for index, name in enumerate(LIST_SCORE_FIELDS, start=width):
            item[name] = finite(row[index]) if plan.run_id is not None else None
        items.append(item)
    return items, total


def iter_customers(
    session: Session,
    *,
    q: str | None = None,
    grade: str | None = None,
    stage: str | None = None,
    risk: str | None = None,
    tag: str | None = None,
    owner_id: int | None = None,
    sort: str = "-predicted_clv",
    chunk: int = 1000,
) -> Iterator[dict[str, Any]]:
    """Every customer :func:`search_customers` would find, profile and all scores, streamed.

    For exports: rows are fetched ``chunk`` at a time (a server-side cursor on
    PostgreSQL), so a million customers never sit in memory at once. Each dict has the
    profile fields, ``tags`` (a list) and every
    :data:`~patron.crm.services.customer_dicts.SCORE_FIELDS` (``None`` without a score).
    """
    _check_page(sort, 1, 0)
    plan = _plan(session, q, grade, stage, risk, tag, owner_id, MAX_LIMIT, remember=False)
    if plan is None:
        return
    score_columns = [getattr(ScoreSnapshot, name) for name in SCORE_FIELDS]
    columns = [Customer, *score_columns] if plan.run_id is not None else [Customer]
    query = plan.select_from(*columns).order_by(*_order(sort, plan.run_id))
    result = session.execute(query.execution_options(yield_per=chunk))
    for rows in result.partitions():
        tags = _tags(session, [row[0].id for row in rows])
        for row in rows:
            item = customer_dict(row[0])
            item["tags"] = tags.get(row[0].id, [])
            for index, name in enumerate(SCORE_FIELDS, start=1):
                item[name] = finite(row[index]) if plan.run_id is not None else None
            yield item


def _check_page(sort: str, limit: int, offset: int) -> None:
    if sort not in SORTS:
        raise Invalid(_("customers.bad_sort", value=sort, allowed=", ".join(SORTS)), field="sort")
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(_("customers.bad_limit", max=MAX_LIMIT), field="limit")
    if offset < 0:
        raise Invalid(_("customers.bad_offset"), field="offset")


def _plan(
    session: Session,
    q: str | None,
    grade: str | None,
    stage: str | None,
    risk: str | None,
    tag: str | None,
    owner_id: int | None,
    limit: int,
    *,
    remember: bool = True,
) -> _Plan | None:
    """The conditions of a search, or ``None`` when nothing can match.

    ``remember``: whether a total beyond the exact bound may be reused (see
    :data:`ESTIMATE_SECONDS`); an export counts nothing and needs no key.
    """
    q = (q or "").strip()[:_Q_LENGTH]
    run_id, run_size, owners = _lookups(session, q)
    scored = {"grade": grade, "lifecycle_stage": stage, "churn_risk": risk}
    scored = {name: value for name, value in scored.items() if value not in (None, "")}
    if scored and run_id is None:
        return None
    where: list[ColumnElement[bool]] = [Customer.merged_into_id.is_(None)]
    where += [getattr(ScoreSnapshot, name) == value for name, value in scored.items()]
    if tag not in (None, ""):
        tagged = select(CustomerTag.customer_id).where(CustomerTag.tag == tag)
        where.append(Customer.id.in_(tagged))
    if owner_id is not None:
        where.append(Customer.owner_id == owner_id)
    key = None
    if remember:
        bind = session.get_bind()
        key = (bind.url.render_as_string(hide_password=True), COUNT_EXACT_UP_TO, run_id)
        key += (q, grade, stage, risk, tag, owner_id)
    plan = _Plan(where, run_id, inner=bool(scored), scored=run_size, key=key)
    if not q:
        return plan
    prefixes = _prefix_matches(session, q, owners)
    matched = _Plan(
        [*where, or_(*prefixes) if prefixes else false()], run_id, plan.inner, None, run_size, key
    )
    if any(ch.isdigit() for ch in q) or matched.count(session) >= limit:
        return matched  # counted already when the count decided
    pattern = f"%{_escape(q.lower())}%"
    if session.get_bind().dialect.name == "postgresql":
        # ILIKE is what the trigram index (migration 0006) answers, cased or not.
        inside = Customer.name.ilike(pattern, escape="\\")
    elif q.lower() == q.upper():
        # Nothing in q has case (Chinese names, digits, signs): the names as stored match
        # exactly when their lower() would, and lower() on every name is most of the scan.
        inside = Customer.name.like(pattern, escape="\\")
    else:
        inside = func.lower(Customer.name).like(pattern, escape="\\")
    # Its own key: a total remembered for the names q is inside of is not the prefixes'
    # count (which decides, at the next page, whether to look inside names at all).
    broad_key = None if key is None else (*key, "inside")
    broad = _Plan([*where, or_(*prefixes, inside)], run_id, plan.inner, None, run_size, broad_key)
    # The substring match reads every name: read them once, keeping the ids, so the count
    # and the page need no second scan.
    found = list(session.scalars(broad.select_from(Customer.id).limit(COUNT_EXACT_UP_TO + 1)))
    if len(found) > COUNT_EXACT_UP_TO:
        return broad
    return _Plan([*where, Customer.id.in_(found)], run_id, plan.inner, len(found), run_size, key)


def _prefix_matches(session: Session, q: str, owners: list[int]) -> list[ColumnElement[bool]]:
    """The indexed ways ``q`` can match: id, external id, phone, email and name prefixes.

    ``owners`` are the customers whose external id ``q`` is (see :func:`_lookups`).
    """
    exact = _code_point_order(session)
    number, ranges = _prefix_ranges(q)
    matches: list[ColumnElement[bool]] = []
    if number is not None:
        matches.append(Customer.id == number)
    if owners:
        matches.append(Customer.id.in_(owners))
    matches += [_prefix(getattr(Customer, column), start, exact) for column, start in ranges]
    return matches


def _prefix_ranges(q: str) -> tuple[int | None, list[tuple[str, str]]]:
    """The customer id ``q`` may be, and the (column, prefix) pairs it may start.

    Digits and phone signs only: the phone, as it may be stored; otherwise the email
    (when ``q`` has no space) and the name, capitalised too when it starts lower-case.
    Both search paths read ``q`` through this.
    """
    number = q.removeprefix("#")
    customer_id = None
    if number.isascii() and number.isdigit() and int(number) < 2**63:
        customer_id = int(number)
    digits = re.sub(r"\D", "", q)
    if _PHONE_LIKE.fullmatch(q) and len(digits) >= _MIN_PHONE_DIGITS:
        return customer_id, [("phone_norm", p) for p in _phone_prefixes(q, digits)]
    ranges = [] if any(ch.isspace() for ch in q) else [("email_norm", q.lower())]
    ranges.append(("name", q))
    if q[:1].islower():
        ranges.append(("name", q[:1].upper() + q[1:]))
    return customer_id, ranges


def _phone_prefixes(q: str, digits: str) -> list[str]:
    """How the start of a phone number may be stored: with the China code removed."""
    whole = normalise_phone(q)
    if whole is not None and whole != digits:
        return [whole]
    prefixes = [digits]
    for code in ("0086", "86"):
        rest = digits.removeprefix(code)
        if rest != digits and len(rest) >= _MIN_PHONE_DIGITS:
            if q.lstrip().startswith(("+", "00")):
                return [rest]  # +86 or 0086 is the country code, never part of the number
            prefixes.append(rest)
            break
    return prefixes


def _prefix(column: Any, prefix: str, exact_range: bool) -> ColumnElement[bool]:
    upper = _successor(prefix)
    if not exact_range or upper is None:
        return column.like(f"{_escape(prefix)}%", escape="\\")
    # In code point order the strings starting with the prefix are exactly this range,
    # which a plain b-tree index answers (LIKE would need a pattern-ops index on
    # PostgreSQL, and ignores ASCII case on SQLite).
    return and_(column >= prefix, column < upper)


def _successor(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix``."""
    code = ord(prefix[-1]) + 1
    if 0xD800 <= code <= 0xDFFF:
        code = 0xE000
    if code > 0x10FFFF:
        return None
    return prefix[:-1] + chr(code)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_RUNS, _IDS = ScoringRun.__tablename__, CustomerExternalId.__tablename__
#: The latest finished run (its id and size) and, when there is a ``q``, the customers
#: whose external id it is, in one round trip. The unique index on external ids is
#: (source, external_id): the recursive part visits each source through the index (a
#: handful of probes, whatever the size of the table) and looks q up in each, instead of
#: scanning every external id.
_LOOKUPS = text(
    f"""
    WITH RECURSIVE sources(source) AS (
        SELECT min(source) FROM {_IDS} WHERE :q <> ''
        UNION ALL
        SELECT (SELECT min(e.source) FROM {_IDS} e WHERE e.source > s.source)
        FROM sources s WHERE s.source IS NOT NULL
    )
    SELECT 'run', r.id, r.customers FROM (
        SELECT id, customers FROM {_RUNS} WHERE status = 'done' ORDER BY id DESC LIMIT 1
    ) r
    UNION ALL
    SELECT 'owner', x.customer_id, 0 FROM sources s
    JOIN {_IDS} x ON x.source = s.source AND x.external_id = :q
    """
)


def _lookups(session: Session, q: str) -> tuple[int | None, int, list[int]]:
    """The latest finished run's id and size, and the owners of external id ``q``.

    A run still in progress or one that failed never replaces the last good scores.
    """
    run_id, run_size, owners = None, 0, set()
    for kind, value, size in session.execute(_LOOKUPS, {"q": q}):
        if kind == "run":
            run_id, run_size = int(value), int(size or 0)
        else:
            owners.add(int(value))
    return run_id, run_size, sorted(owners)


#: The database's collation, for :func:`code_point_collation`.
COLLATION_SQL = "SELECT * FROM pg_database WHERE datname = current_database()"


def code_point_collation(row: Mapping[str, Any] | None) -> bool:
    """Whether a PostgreSQL database (its ``pg_database`` row) sorts text by code point."""
    collate = str(row["datcollate"] if row else "").lower()
    provider = row.get("datlocprovider", "c") if row else "c"
    return collate in _CODE_POINT_COLLATIONS and provider == "c"


def _code_point_order(session: Session) -> bool:
    """Whether text sorts by code point here, so a prefix is an index range."""
    bind = session.get_bind()
    if bind.dialect.name == "sqlite":
        return True  # BINARY collation, the default
    if bind.dialect.name != "postgresql":
        return False
    key = bind.url.render_as_string(hide_password=True)
    if key not in _collation_cache:
        row = session.execute(text(COLLATION_SQL)).mappings().first()
        _collation_cache[key] = code_point_collation(row)
    return _collation_cache[key]


def _count(session: Session, plan: _Plan) -> int:
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return int(session.scalar(plan.select_from(func.count())) or 0)
    if plan.key is None or ESTIMATE_SECONDS <= 0:
        return _count_bounded(session, plan)
    remembered = _remembered(plan.key)
    if remembered is not None:
        return remembered
    # One count per search at a time: when "all gold customers" expires, the twenty
    # requests asking for it wait for one count instead of running twenty (each reads
    # ten thousand rows).
    with _estimates_lock:
        counting = _counting.setdefault(plan.key, threading.Lock())
    with counting:
        remembered = _remembered(plan.key)
        if remembered is not None:
            return remembered
        total = _count_bounded(session, plan)
        if total > COUNT_EXACT_UP_TO:
            with _estimates_lock:
                if len(_estimates) >= _ESTIMATES_MAX:
                    _estimates.clear()
                    _counting.clear()
                _estimates[plan.key] = (time.monotonic() + ESTIMATE_SECONDS, total)
    return total


def _remembered(key: tuple) -> int | None:
    remembered = _estimates.get(key)
    if remembered is not None and remembered[0] > time.monotonic():
        return remembered[1]
    return None


def _count_bounded(session: Session, plan: _Plan) -> int:
    """The exact count up to :data:`COUNT_EXACT_UP_TO`, else the planner's estimate."""
    bounded = plan.select_from(Customer.id).limit(COUNT_EXACT_UP_TO + 1).subquery()
    exact = int(session.scalar(select(func.count()).select_from(bounded)) or 0)
    if exact <= COUNT_EXACT_UP_TO:
        return exact
    return _estimate(session, plan, exact)


def _estimate(session: Session, plan: _Plan, exact: int) -> int:
    """PostgreSQL's estimate of how many customers ``plan`` matches, at least ``exact``."""
    bind = session.get_bind()
    statement = plan.select_from(Customer.id).compile(
        dialect=bind.dialect, compile_kwargs={"render_postcompile": True}
    )
    explained = session.connection().exec_driver_sql(
        f"EXPLAIN (FORMAT JSON) {statement}", statement.params
    )
    plan_json = explained.scalar()
    if isinstance(plan_json, str):
        plan_json = json.loads(plan_json)
    estimate = int(plan_json[0]["Plan"]["Plan Rows"])
    return max(estimate, exact)


_TAGS = ARRAY(String)


def _order(sort: str, run_id: int | None) -> list[Any]:
    descending = sort.startswith("-")
    name = sort.removeprefix("-")
    if name == "name":
        return [Customer.name, Customer.id]
    if name == "created_at":
        return [Customer.created_at.desc(), Customer.id.desc()]
    if run_id is None:
        return [Customer.id]
    column = getattr(ScoreSnapshot, name)
    return [(column.desc() if descending else column.asc()).nulls_last(), Customer.id]


def _tags(session: Session, customer_ids: list[int]) -> dict[int, list[str]]:
    tags: dict[int, list[str]] = {}
    if not customer_ids:
        return tags
    query = (
        select(CustomerTag.customer_id, CustomerTag.tag)
        .where(CustomerTag.customer_id.in_(customer_ids))
        .order_by(CustomerTag.customer_id, CustomerTag.tag)
    )
    for customer_id, tag in session.execute(query):
        tags.setdefault(customer_id, []).append(tag)
    return tags
