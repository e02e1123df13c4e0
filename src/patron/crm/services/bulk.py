"""Moving many rows between Arrow and the database in one statement, not one object each.

An import of a million orders or a scoring run over a million customers cannot afford an
ORM object (or even a parameter tuple through ``executemany``) per row on PostgreSQL:
rows go in with ``COPY ... FROM STDIN`` into a temporary staging table and come out with
``COPY ... TO STDOUT``, both as CSV written and parsed by Arrow, and the set work (upsert,
update, join) is one SQL statement over the staging table. SQLite has no COPY; there
``executemany`` into a temporary table is fast enough, as SQLite is the small-shop store.

Everything runs on the session's own connection, inside its transaction: the caller still
decides whether the whole import or run lands. Values are prepared in the form each
database stores (:func:`db_values`): on SQLite times are the text SQLAlchemy writes, so a
bulk-loaded row compares and reads back exactly like one the ORM wrote.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlalchemy.orm import Session

__all__ = [
    "dialect",
    "db_values",
    "create_temp",
    "drop_temp",
    "load_rows",
    "fetch_table",
    "allocate_ids",
    "db_time",
    "lock",
    "distinct_from",
]

#: Rows per COPY chunk and per executemany call: bounded memory, few round trips.
CHUNK_ROWS = 100_000

#: Column types of staging tables, by the short names callers use.
_TYPES = {
    "postgresql": {
        "text": "text",
        "int": "bigint",
        "float": "double precision",
        "money": "numeric(14, 2)",
        "time": "timestamptz",
        "date": "date",
    },
    "sqlite": {
        "text": "TEXT",
        "int": "INTEGER",
        "float": "REAL",
        "money": "REAL",
        "time": "TEXT",
        "date": "TEXT",
    },
}
# SQLAlchemy's text form of a DateTime on SQLite (it always writes the microseconds).
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S"


def dialect(session: Session) -> str:
    """``"postgresql"`` or ``"sqlite"``: the database behind ``session``."""
    return session.get_bind().dialect.name


def db_values(table: pa.Table, kind: str) -> pa.Table:
    """``table`` with its times and dates in the form the database ``kind`` stores.

    Timestamps must be timezone-aware (UTC is stored). PostgreSQL takes them as they are;
    SQLite gets SQLAlchemy's text (``2024-03-05 01:30:00.000000``) and ISO dates.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if kind != "sqlite":
        return table
    columns = []
    for column in table.columns:
        if pa.types.is_timestamp(column.type):
            utc = pc.cast(column, pa.timestamp("us", "UTC")).cast(pa.timestamp("us"))
            column = pc.strftime(utc, _SQLITE_TIME)
        elif pa.types.is_date(column.type):
            column = pc.cast(column, pa.string())
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def create_temp(session: Session, name: str, columns: Sequence[tuple[str, str]]) -> None:
    """A fresh temporary table ``name`` with ``columns`` as (name, short type) pairs.

    Short types: text, int, float, money, time, date. A table of the same name left by an
    earlier import on this connection is dropped first; on PostgreSQL the table also goes
    at commit.
    """
    kind = dialect(session)
    types = _TYPES[kind]
    spec = ", ".join(f"{col} {types[t]}" for col, t in columns)
    connection = session.connection()
    drop_temp(session, name)
    suffix = " ON COMMIT DROP" if kind == "postgresql" else ""
    connection.exec_driver_sql(f"CREATE TEMPORARY TABLE {name} ({spec}){suffix}")


def drop_temp(session: Session, name: str) -> None:
    """Drop the temporary table ``name`` if it exists."""
    kind = dialect(session)
    qualified = f"temp.{name}" if kind == "sqlite" else f"pg_temp.{name}"
    session.connection().exec_driver_sql(f"DROP TABLE IF EXISTS {qualified}")


def load_rows(session: Session, name: str, table: pa.Table) -> int:
    """Append ``table``'s rows to the table ``name`` (columns matched by name).

    On PostgreSQL this is ``COPY ... FROM STDIN`` in CSV written by Arrow, in chunks; on
    SQLite ``executemany``. Values must already be in :func:`db_values` form.
    """
    if table.num_rows == 0:
        return 0
    kind = dialect(session)
    names = ", ".join(table.column_names)
    if kind == "postgresql":
        raw = _driver_connection(session)
        with raw.cursor() as cursor:
            statement = f"COPY {name} ({names}) FROM STDIN (FORMAT csv)"
            with cursor.copy(statement) as copy:
                for chunk in _csv_chunks(table):
                    copy.write(chunk)
    else:
        marks = ", ".join("?" for _ in table.column_names)
        cursor = _driver_connection(session).cursor()
        try:
            for batch in table.to_batches(max_chunksize=CHUNK_ROWS):
                columns = [_plain(column) for column in batch.columns]
                cursor.executemany(
                    f"INSERT INTO {name} ({names}) VALUES ({marks})", zip(*columns, strict=True)
                )
        finally:
            cursor.close()
    return table.num_rows


def fetch_table(
    session: Session,
    query: str,
    schema: pa.Schema,
    *,
    parameters: dict[str, Any] | None = None,
    path: str | None = None,
) -> pa.Table:
    """Run ``query`` and return its rows as an Arrow table of ``schema``.

    The query's columns must come in the schema's order. On PostgreSQL the rows travel as
    ``COPY (query) TO STDOUT`` CSV, written to ``path`` when given (so ten million rows
    never sit in memory twice) and parsed by Arrow; parameters are bound client-side with
    psycopg's quoting. On SQLite the rows are fetched in chunks.
    """
    import pyarrow as pa

    parameters = parameters or {}
    if dialect(session) == "postgresql":
        return _fetch_postgres(session, query, schema, parameters, path)
    from sqlalchemy import text

    result = session.connection().execute(text(query), parameters)
    batches = []
    while rows := result.fetchmany(CHUNK_ROWS):
        columns = list(zip(*rows, strict=True))
        arrays = [
            _from_sqlite(values, field.type) for values, field in zip(columns, schema, strict=True)
        ]
        batches.append(pa.record_batch(arrays, schema=schema))
    return pa.Table.from_batches(batches, schema=schema)


def allocate_ids(session: Session, table: str, n: int) -> np.ndarray:
    """``n`` new primary keys for ``table`` (its ``id`` column), in increasing order.

    PostgreSQL draws them from the table's sequence, so concurrent writers never collide;
    SQLite continues after the largest id (the import holds SQLite's only write lock).
    """
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    connection = session.connection()
    if dialect(session) == "postgresql":
        rows = connection.exec_driver_sql(
            f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) "
            f"FROM generate_series(1, {int(n)})"
        ).fetchall()
        return np.sort(np.fromiter((r[0] for r in rows), dtype=np.int64, count=n))
    start = connection.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {table}").scalar()
    return np.arange(start + 1, start + 1 + n, dtype=np.int64)


def db_time(session: Session, value: dt.datetime) -> dt.datetime | str:
    """An aware time as a bound parameter of hand-written SQL, in the stored form."""
    if dialect(session) == "sqlite":
        return value.astimezone(dt.UTC).strftime(_SQLITE_TIME + ".%f")
    return value


def lock(session: Session, key: str) -> None:
    """Hold a lock named ``key`` until the transaction ends (PostgreSQL advisory lock).

    SQLite needs none: its one writer at a time already serialises transactions.
    """
    if dialect(session) == "postgresql":
        from sqlalchemy import text

        session.connection().execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key}
        )


def distinct_from(session: Session, pairs: Sequence[tuple[str, str]]) -> str:
    """SQL that is true when any pair of expressions differs, NULLs counted as values."""
    op = "IS DISTINCT FROM" if dialect(session) == "postgresql" else "IS NOT"
    return "(" + " OR ".join(f"{a} {op} {b}" for a, b in pairs) + ")"


def _driver_connection(session: Session):
    # The DBAPI connection under the session's own connection: same transaction.
    return session.connection().connection.driver_connection


def _csv_chunks(table: pa.Table) -> Iterator[bytes]:
    import pyarrow.csv as csv

    options = csv.WriteOptions(include_header=False)
    for batch in table.to_batches(max_chunksize=CHUNK_ROWS):
        buffer = io.BytesIO()
        csv.write_csv(batch, buffer, options)
        yield buffer.getvalue()


def _plain(column: pa.Array) -> list:
    """Python values sqlite3 binds: NaN becomes NULL."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_floating(column.type):
        column = pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column)
    return column.to_pylist()


def _from_sqlite(values: Sequence[Any], kind: pa.DataType) -> pa.Array:
    import datetime as dt

    import pyarrow as pa

    if pa.types.is_timestamp(kind):
        values = [None if v is None else dt.datetime.fromisoformat(v) for v in values]
    elif pa.types.is_date(kind):
        values = [None if v is None else dt.date.fromisoformat(v) for v in values]
    return pa.array(values, kind)


def _fetch_postgres(session, query, schema, parameters, path) -> pa.Table:
    import pyarrow.csv as csv
    from psycopg import sql

    raw = _driver_connection(session)
    literal = {k: sql.Literal(v) for k, v in parameters.items()}
    text = query
    for key in sorted(parameters, key=len, reverse=True):
        text = text.replace(f":{key}", "{" + key + "}")
    statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(sql.SQL(text).format(**literal))
    sink = open(path, "wb") if path else io.BytesIO()  # noqa: SIM115 - closed below
    try:
        size = 0
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for block in copy:
                size += sink.write(block)
        if size == 0:
            return schema.empty_table()
        if path:
            sink.close()
            source = path
        else:
            source = io.BytesIO(sink.getvalue())
        return csv.read_csv(
            source,
            read_options=csv.ReadOptions(column_names=schema.names),
            convert_options=csv.ConvertOptions(
                column_types=schema, strings_can_be_null=True, quoted_strings_can_be_null=False
            ),
        )
    finally:
        sink.close()
