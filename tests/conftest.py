"""Shared fixtures: real backends to run one test body on.

``backend`` is parametrized over DuckDB, SQLite and PostgreSQL.  It yields a loader:
``backend(arrow_table)`` copies the rows into a table of that backend (a fresh, unique name
per call, dropped after the test) and returns the Ibis table, so the code under test runs
on that backend.  PostgreSQL comes from ``PATRON_TEST_DATABASE_URL``; without it the
PostgreSQL cases are skipped, unless ``PATRON_REQUIRE_POSTGRES=1`` (CI), which makes them
fail instead -- a missing database must never pass silently.
"""

from __future__ import annotations

import os
import uuid
import warnings

import pytest

import patron

BACKENDS = ("duckdb", "sqlite", "postgres")


def _table_name() -> str:
    return f"patron_test_{uuid.uuid4().hex[:16]}"


class _Loader:
    """Loads Arrow tables into one backend and drops them afterwards."""

    def __init__(self, name: str, con, drop) -> None:
        self.name = name
        self.con = con
        self._drop = drop
        self._created: list[str] = []

    def __call__(self, table):
        name = _table_name()
        self._created.append(name)
        return self._load(name, table)

    def _load(self, name, table):
        self.con.create_table(name, table)
        return self.con.table(name)

    def close(self) -> None:
        for name in self._created:
            self._drop(name)


class _SqliteLoader(_Loader):
    """SQLite rows inserted as Ibis stores them (ISO text dates); Ibis' own loader goes
    through pandas and cannot insert a missing timestamp."""

    def _load(self, name, table):
        import datetime as dt

        import ibis

        self.con.create_table(name, schema=ibis.Schema.from_pyarrow(table.schema))

        def cell(value):
            return value.isoformat() if isinstance(value, dt.date) else value

        marks = ", ".join("?" for _ in table.column_names)
        rows = [tuple(cell(v) for v in row.values()) for row in table.to_pylist()]
        with self.con.begin() as cur:
            cur.executemany(f'INSERT INTO "{name}" VALUES ({marks})', rows)
        return self.con.table(name)


class _PostgresLoader(_Loader):
    """PostgreSQL through COPY (Ibis' create_table inserts row by row, ~25x slower)."""

    _TYPES = {
        "string": "text",
        "large_string": "text",
        "double": "double precision",
        "float": "real",
        "int64": "bigint",
        "int32": "integer",
        "int16": "smallint",
        "bool": "boolean",
        "date32[day]": "date",
    }

    def __init__(self, url: str) -> None:
        import ibis
        import psycopg

        self.raw = psycopg.connect(url, autocommit=True)
        con = ibis.connect(url)
        super().__init__("postgres", con, self._drop_table)

    def _sql_type(self, arrow_type) -> str:
        import pyarrow as pa

        if pa.types.is_timestamp(arrow_type):
            return "timestamptz" if arrow_type.tz else "timestamp"
        return self._TYPES[str(arrow_type)]

    def _load(self, name, table):
        columns = ", ".join(f'"{f.name}" {self._sql_type(f.type)}' for f in table.schema)
        with self.raw.cursor() as cur:
            cur.execute(f'CREATE TABLE "{name}" ({columns})')
            names = ", ".join(f'"{n}"' for n in table.column_names)
            with cur.copy(f'COPY "{name}" ({names}) FROM STDIN') as copy:
                for row in table.to_pylist():
                    copy.write_row(tuple(row.values()))
        return self.con.table(name)

    def _drop_table(self, name: str) -> None:
        with self.raw.cursor() as cur:
            cur.execute(f'DROP TABLE IF EXISTS "{name}"')

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.raw.close()
            self.con.disconnect()


def _postgres_url() -> str:
    url = os.environ.get("PATRON_TEST_DATABASE_URL")
    if url:
        return url
    reason = "PostgreSQL tests need PATRON_TEST_DATABASE_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)"
    if os.environ.get("PATRON_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PATRON_REQUIRE_POSTGRES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def _loader(name: str) -> _Loader:
    import ibis

    if name == "duckdb":
        con = ibis.duckdb.connect()
        return _Loader(name, con, lambda table: con.drop_table(table, force=True))
    if name == "sqlite":
        con = ibis.sqlite.connect()
        return _SqliteLoader(name, con, lambda table: con.drop_table(table, force=True))
    return _PostgresLoader(_postgres_url())


@pytest.fixture(
    params=[
        pytest.param(name, marks=[pytest.mark.postgres] if name == "postgres" else [])
        for name in BACKENDS
    ]
)
def backend(request):
    """``load(arrow_table) -> ibis.Table`` on DuckDB, SQLite or PostgreSQL (``.name``)."""
    loader = _loader(request.param)
    try:
        yield loader
    finally:
        loader.close()


@pytest.fixture(scope="session")
def cdnow_summary():
    """CDNOW 1/10th sample, weekly, calibration 1997-01-01 to 1997-09-30 (2,357 customers).

    The data set and period of Fader, Hardie & Lee (2005), Marketing Science 24(2).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return patron.summarize(patron.datasets.cdnow(sample=True), as_of="1997-09-30")


# --------------------------------------------------------------------------- browser

#: Debian's Chromium (never ``playwright install``: it downloads a browser build), started
#: without the background services that call Google (the machines have no way out).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def browser_unavailable(reason: str):
    """Skip, or fail when ``PATRON_REQUIRE_BROWSER=1`` (CI): a missing browser never passes."""
    if os.environ.get("PATRON_REQUIRE_BROWSER") == "1":
        pytest.fail(f"PATRON_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium driven by Playwright, for the browser tests."""
    if not os.path.exists(CHROMIUM):
        browser_unavailable(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        browser_unavailable("browser tests need Playwright (pip install -e '.[test]')")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
