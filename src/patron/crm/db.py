"""Connecting to the operational database: one URL, SQLite by default, PostgreSQL supported.

SQLite needs three settings on every connection to behave like a shared database: foreign
keys on (they are off by default), WAL so readers do not block the writer, and a busy
timeout so a second writer waits instead of failing at once with "database is locked".
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["DEFAULT_URL", "database_url", "make_engine", "get_engine", "session_scope"]

DEFAULT_URL = "sqlite:///patron.db"
BUSY_TIMEOUT_MS = 30_000


def database_url(url: str | None = None) -> str:
    """The database to use: ``url``, else ``PATRON_DATABASE_URL``, else ``./patron.db``.

    ``postgresql://`` URLs are given the psycopg 3 driver, the one patron installs.
    """
    url = url or os.environ.get("PATRON_DATABASE_URL") or DEFAULT_URL
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def make_engine(url: str | None = None, **options: Any) -> Engine:
    """A new engine for ``url`` with patron's connection settings."""
    url = database_url(url)
    if url.startswith("sqlite"):
        options.setdefault("connect_args", {}).setdefault("check_same_thread", False)
        engine = create_engine(url, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling issues BEGIN lazily and not at all before
        # SELECT; take control so that every transaction starts with an explicit BEGIN.
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    options.setdefault("pool_size", 10)
    options.setdefault("max_overflow", 40)
    # No ping before each checkout: it is a round trip per request, a third of a point
    # write's time under load. A connection the server dropped (a restart) fails its
    # request once; SQLAlchemy then sees the disconnect and replaces the whole pool.
    options.setdefault("pool_pre_ping", False)
    options.setdefault("pool_recycle", 1800)
    # No JIT compilation: patron's statements are short, and PostgreSQL compiles by the
    # plan's estimated cost -- a search's ways to a page that never run cost it ~100 ms
    # of compiling for a statement that runs in two.
    options.setdefault("connect_args", {}).setdefault("options", "-c jit=off")
    return create_engine(url, **options)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "memory":
        cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection) -> None:
    # A transaction that may write starts as the writer (BEGIN IMMEDIATE): a plain BEGIN
    # that reads first and writes later cannot be upgraded once another writer has begun,
    # and fails with "database is locked" instead of waiting.
    mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
    connection.exec_driver_sql(f"BEGIN {mode}")


@cache
def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for ``url`` (see :func:`database_url`)."""
    return make_engine(url)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (pages render after it)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: commit when the block ends, roll back if it raises."""
    with session_factory(engine)() as session, session.begin():
        yield session
