"""The customers an import's rows belong to: found, matched, merged or created, in bulk.

Each distinct external id of the file is resolved in this order:

1. by its id in this source (``customer_external_ids``): a customer seen before;
2. by identity resolution: its normalised phone or email (the keys of
   :func:`patron.crm.services.identity.match_on_setting`) belongs to an existing customer,
   or to another row of the same file -- the id is attached to that customer (*matched*);
3. otherwise a new customer is created with the row's profile.

When one row links two existing customers (its id names one, its phone another; or its
phone one and its email another) they are one person, and the younger record is merged
into the older with :func:`~patron.crm.services.identity.merge_customers`, recorded with
the batch. Lookups are joins against a staging table, and the common case -- every key
distinct, nothing linking two customers -- never leaves Arrow; only files whose rows share
keys go through a union-find in Python.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from patron.crm.services import bulk
from patron.crm.services.import_columns import PROFILE_FIELDS

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlalchemy.orm import Session

    from patron.crm.tables import User

__all__ = ["Resolution", "resolve_customers", "people_schema"]

_KEYS = "patron_import_keys"
_PROFILES = "patron_import_profiles"


def people_schema() -> pa.Schema:
    """The columns :func:`resolve_customers` takes, one row per external id."""
    import pyarrow as pa

    return pa.schema(
        [
            ("ext_id", pa.string()),
            ("name", pa.string()),
            ("phone", pa.string()),
            ("phone_norm", pa.string()),
            ("email", pa.string()),
            ("email_norm", pa.string()),
            ("region", pa.string()),
            ("gender", pa.string()),
            ("birthday", pa.date32()),
            ("channel", pa.string()),
        ]
    )


@dataclass
class Resolution:
    """Where each external id went, and the counts for the batch."""

    customer_ids: np.ndarray  # aligned with the rows given
    created: int = 0
    matched: int = 0
    merged: int = 0
    updated: int = 0
    unchanged: int = 0
    merges: list[tuple[int, int, str, str]] = field(default_factory=list)


def resolve_customers(
    session: Session,
    people: pa.Table,
    *,
    source: str,
    batch_id: int,
    actor: User | None,
    overwrite: bool,
    match_on: tuple[str, ...],
) -> Resolution:
    """Find or create the customer of every row of ``people`` (see the module docstring).

    Parameters
    ----------
    people
        One row per external id, columns of :func:`people_schema` (missing ones are null).
    overwrite
        A customer list (``True``) overwrites the profile fields it holds; an order export
        (``False``) only fills fields the customer does not have yet.
    match_on
        The identity keys in use (``()`` turns matching off).
    """
    people = _conform(people)
    n = people.num_rows
    now = dt.datetime.now(dt.UTC)
    bulk.create_temp(
        session,
        _KEYS,
        [
            ("ext_id", "text"),
            ("phone_norm", "text"),
            ("email_norm", "text"),
            ("customer_id", "int"),
        ],
    )
    bulk.load_rows(session, _KEYS, people.select(["ext_id", "phone_norm", "email_norm"]))
    connection = session.connection()
    if bulk.dialect(session) == "postgresql":
        connection.exec_driver_sql(f"ANALYZE {_KEYS}")
    from sqlalchemy import text

    connection.execute(
        text(
            f"UPDATE {_KEYS} AS k SET customer_id = x.customer_id "
            "FROM customer_external_ids AS x "
            "WHERE x.source = :source AND x.external_id = k.ext_id"
        ),
        {"source": source},
    )
    known = _known_ids(session, people)
    links = _links(session, match_on)
    groups = _group(people, known, links, match_on)
    result = Resolution(customer_ids=np.zeros(n, dtype=np.int64))
    plan = _assign(session, known, groups, result)
    _insert_new(session, people, known, plan, source=source, now=now)
    for survivor, merged, rule, key in result.merges:
        from patron.crm.services.identity import merge_customers

        merge_customers(
            session, survivor, merged, rule=rule, key=key, batch_id=batch_id, actor=actor
        )
    result.merged = len(result.merges)
    _update_profiles(session, people, plan, result, overwrite=overwrite, now=now)
    bulk.drop_temp(session, _KEYS)
    return result


def _conform(people: pa.Table) -> pa.Table:
    import pyarrow as pa

    schema = people_schema()
    columns = []
    for f in schema:
        if f.name in people.column_names:
            columns.append(people[f.name].cast(f.type).combine_chunks())
        else:
            columns.append(pa.nulls(people.num_rows, f.type))
    return pa.table(columns, schema=schema)


def _known_ids(session: Session, people: pa.Table) -> np.ndarray:
    """Each row's customer by external id, 0 where the id is new to this source."""
    import pyarrow as pa
    import pyarrow.compute as pc

    schema = pa.schema([("ext_id", pa.string()), ("customer_id", pa.int64())])
    found = bulk.fetch_table(
        session,
        f"SELECT ext_id, customer_id FROM {_KEYS} WHERE customer_id IS NOT NULL",
        schema,
    )
    known = np.zeros(people.num_rows, dtype=np.int64)
    if found.num_rows:
        where = pc.index_in(found["ext_id"], value_set=people["ext_id"]).to_numpy()
        known[where] = found["customer_id"].to_numpy()
    return known


def _links(session: Session, match_on: tuple[str, ...]) -> pa.Table:
    """Existing customers a row's phone or email names, besides the one its id names.

    Columns: ext_id, customer_id, rule (phone or email), key (the normalised value).
    """
    import pyarrow as pa

    schema = pa.schema(
        [
            ("ext_id", pa.string()),
            ("customer_id", pa.int64()),
            ("rule", pa.string()),
            ("key", pa.string()),
        ]
    )
    parts = [
        f"SELECT k.ext_id, c.id, '{rule}', k.{rule}_norm FROM {_KEYS} AS k "
        f"JOIN customers AS c ON c.{rule}_norm = k.{rule}_norm "
        "WHERE c.merged_into_id IS NULL AND (k.customer_id IS NULL OR c.id <> k.customer_id)"
        for rule in match_on
    ]
    if not parts:
        return schema.empty_table()
    return bulk.fetch_table(session, " UNION ALL ".join(parts), schema)


@dataclass
class _Plan:
    """Row -> group, group -> customer id, and the groups that are new customers."""

    row_group: np.ndarray
    customer: np.ndarray
    new_groups: np.ndarray


@dataclass
class _Groups:
    """Rows that are one person: ``row_group[i]``; each group's existing customers."""

    row_group: np.ndarray
    customers: list[list[int]]
    rules: list[tuple[str, str]]


def _shared(values: pa.Array) -> bool:
    import pyarrow.compute as pc

    present = values.drop_null()
    return len(present) > 0 and pc.count_distinct(present).as_py() < len(present)


def _group(people: pa.Table, known: np.ndarray, links: pa.Table, match_on) -> _Groups:
    n = people.num_rows
    shared = any(_shared(people[f"{rule}_norm"]) for rule in match_on)
    if links.num_rows == 0 and not shared:
        # Every row its own person: the common case, without a Python loop.
        return _Groups(
            np.arange(n), [[int(c)] if c else [] for c in known.tolist()], [("", "")] * n
        )
    return _union_find(people, known, links, match_on)


def _union_find(people: pa.Table, known: np.ndarray, links: pa.Table, match_on) -> _Groups:
    n = people.num_rows
    parent = list(range(n))
    rule_of: dict[int, tuple[str, str]] = {}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: int, b: int, rule: str, key: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            low, high = min(ra, rb), max(ra, rb)
            parent[high] = low
            rule_of.setdefault(low, rule_of.get(high) or (rule, key))

    ext = people["ext_id"].to_pylist()
    row_of = {e: i for i, e in enumerate(ext)}
    customer_row: dict[int, int] = {}  # an existing customer -> a row of its group
    for i, c in enumerate(known.tolist()):
        if c:
            if c in customer_row:
                union(customer_row[c], i, "", "")
            customer_row.setdefault(c, i)
    for rule in match_on:
        first: dict[str, int] = {}
        for i, key in enumerate(people[f"{rule}_norm"].to_pylist()):
            if key is None:
                continue
            if key in first:
                union(first[key], i, rule, key)
            else:
                first[key] = i
    extra: dict[int, tuple[str, str]] = {}
    for e, c, rule, key in zip(*(links[k].to_pylist() for k in links.column_names), strict=True):
        i = row_of[e]
        if c in customer_row:
            union(customer_row[c], i, rule, key)
        else:
            customer_row[c] = i
            extra[c] = (rule, key)
    roots = [find(i) for i in range(n)]
    index: dict[int, int] = {}
    row_group = np.fromiter(
        (index.setdefault(r, len(index)) for r in roots), dtype=np.int64, count=n
    )
    customers: list[list[int]] = [[] for _ in index]
    rules: list[tuple[str, str]] = [("", "")] * len(index)
    for root, g in index.items():
        rules[g] = rule_of.get(root, ("", ""))
    for c, i in customer_row.items():
        g = int(row_group[i])
        customers[g].append(c)
        if rules[g] == ("", "") and c in extra:
            rules[g] = extra[c]
    return _Groups(row_group, [sorted(cs) for cs in customers], rules)


def _assign(session: Session, known: np.ndarray, groups: _Groups, result: Resolution) -> _Plan:
    """Each group's customer (its oldest, or a new id); the merges to make."""
    n_groups = len(groups.customers)
    customer = np.zeros(n_groups, dtype=np.int64)
    for g, members in enumerate(groups.customers):
        if members:
            customer[g] = members[0]
            rule, key = groups.rules[g]
            for merged in members[1:]:
                result.merges.append((members[0], merged, rule or "phone", key))
    new_groups = np.flatnonzero(customer == 0)
    customer[new_groups] = bulk.allocate_ids(session, "customers", len(new_groups))
    result.created = len(new_groups)
    result.customer_ids = customer[groups.row_group]
    # A new id attached to a customer that existed before this import: matched.
    is_new = np.zeros(n_groups, dtype=bool)
    is_new[new_groups] = True
    result.matched = int(((known == 0) & ~is_new[groups.row_group]).sum())
    return _Plan(groups.row_group, customer, new_groups)


def _group_profiles(people: pa.Table, plan: _Plan, groups: np.ndarray) -> pa.Table:
    """One profile per group in ``groups`` (column ``g``).

    Each field is its last value in the file's order, so a customer list's latest line wins.
    """
    import pyarrow as pa

    wanted = np.zeros(len(plan.customer), dtype=bool)
    wanted[groups] = True
    table = people.append_column("g", pa.array(plan.row_group)).filter(
        pa.array(wanted[plan.row_group])
    )
    fields = [f for f in people.column_names if f != "ext_id"]
    out = table.group_by("g", use_threads=False).aggregate([(f, "last") for f in fields])
    return pa.table({"g": out["g"], **{f: out[f"{f}_last"] for f in fields}})


def _insert_new(session, people, known, plan: _Plan, *, source: str, now) -> None:
    """The new customers, and every new external id (of new and matched customers)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = bulk.dialect(session)
    if len(plan.new_groups):
        profiles = _group_profiles(people, plan, plan.new_groups)
        n = profiles.num_rows
        times = pa.array([now] * n, pa.timestamp("us", "UTC"))
        rows = pa.table(
            {
                "id": pa.array(plan.customer[profiles["g"].to_numpy()], pa.int64()),
                "name": pc.fill_null(profiles["name"], ""),
                **{f: profiles[f] for f in PROFILE_FIELDS if f != "name"},
                "phone_norm": profiles["phone_norm"],
                "email_norm": profiles["email_norm"],
                "created_at": times,
                "updated_at": times,
            }
        )
        bulk.load_rows(session, "customers", bulk.db_values(rows, kind))
    fresh = known == 0
    n = int(fresh.sum())
    if n:
        ext = pa.table(
            {
                "customer_id": pa.array(plan.customer[plan.row_group][fresh], pa.int64()),
                "source": pa.array([source] * n, pa.string()),
                "external_id": people["ext_id"].filter(pa.array(fresh)),
                "created_at": pa.array([now] * n, pa.timestamp("us", "UTC")),
            }
        )
        bulk.load_rows(session, "customer_external_ids", bulk.db_values(ext, kind))


def _update_profiles(session, people, plan: _Plan, result: Resolution, *, overwrite, now) -> None:
    """Write the file's profile onto customers that existed before the import."""
    import pyarrow as pa
    from sqlalchemy import text

    existing = np.ones(len(plan.customer), dtype=bool)
    existing[plan.new_groups] = False
    merged_away = [m for _, m, _, _ in result.merges]
    existing &= ~np.isin(plan.customer, merged_away)
    groups = np.flatnonzero(existing)
    if len(groups) == 0:
        return
    profiles = _group_profiles(people, plan, groups)
    ids = plan.customer[profiles["g"].to_numpy()]
    rows = profiles.drop_columns(["g"]).add_column(0, "customer_id", pa.array(ids, pa.int64()))
    kind = bulk.dialect(session)
    spec = [
        (c, "int" if c == "customer_id" else "date" if c == "birthday" else "text")
        for c in rows.column_names
    ]
    bulk.create_temp(session, _PROFILES, spec)
    bulk.load_rows(session, _PROFILES, bulk.db_values(rows, kind))
    values = {}
    for c in PROFILE_FIELDS:
        if c == "name":
            fill = "CASE WHEN c.name = '' THEN coalesce(p.name, '') ELSE c.name END"
            values[c] = "coalesce(p.name, c.name)" if overwrite else fill
        else:
            values[c] = f"coalesce(p.{c}, c.{c})" if overwrite else f"coalesce(c.{c}, p.{c})"
    for c in ("phone", "email"):
        # The normalised key follows whichever phone (email) is kept.
        mine = f"p.{c} IS NULL" if overwrite else f"c.{c} IS NOT NULL"
        values[f"{c}_norm"] = f"CASE WHEN {mine} THEN c.{c}_norm ELSE p.{c}_norm END"
    changed = bulk.distinct_from(session, [(v, f"c.{c}") for c, v in values.items()])
    assignments = ", ".join(f"{c} = {v}" for c, v in values.items())
    updated = session.connection().execute(
        text(
            f"UPDATE customers AS c SET {assignments}, updated_at = :now "
            f"FROM {_PROFILES} AS p WHERE c.id = p.customer_id AND {changed}"
        ),
        {"now": bulk.db_time(session, now)},
    )
    result.updated = int(updated.rowcount or 0)
    result.unchanged = len(ids) - result.updated
    bulk.drop_temp(session, _PROFILES)
