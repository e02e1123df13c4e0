"""The operational store on both databases: every test here runs on SQLite and PostgreSQL.

PostgreSQL gets a database of its own per test session (created from
PATRON_TEST_DATABASE_URL and dropped at the end), so tests never touch the data of the
database they were pointed at. Between tests every table is emptied.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from tests.conftest import _postgres_url

from patron.crm.db import database_url, make_engine, session_factory
from patron.crm.migrate import upgrade
from patron.crm.tables import Base

DATABASES = ("sqlite", "postgres")


@pytest.fixture(scope="session")
def _postgres_database():
    url = make_url(database_url(_postgres_url()))
    name = f"patron_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def _engines(tmp_path_factory):
    engines = {}
    yield engines
    for engine in engines.values():
        engine.dispose()


@pytest.fixture(
    params=[
        pytest.param(name, marks=[pytest.mark.postgres] if name == "postgres" else [])
        for name in DATABASES
    ]
)
def db_url(request, _engines, tmp_path_factory) -> str:
    """A migrated, empty database URL (SQLite file or PostgreSQL), one per backend."""
    name = request.param
    if name not in _engines:
        if name == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('crm') / 'patron.db'}"
        else:
            url = request.getfixturevalue("_postgres_database")
        _engines[name] = make_engine(url)
        upgrade(_engines[name])
    engine = _engines[name]
    _empty(engine)
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
def engine(db_url, _engines):
    """The engine of :func:`db_url`."""
    return next(e for e in _engines.values() if e.url.render_as_string(False) == db_url)


@pytest.fixture
def session(engine):
    """A session in a transaction that the test may commit; tables are emptied afterwards."""
    with session_factory(engine)() as session:
        yield session


def _empty(engine) -> None:
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
