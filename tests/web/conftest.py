"""The web app on both databases: a TestClient over a migrated SQLite or PostgreSQL database.

The database fixtures are those of tests/crm (every test runs on SQLite and PostgreSQL);
users are created through the users service and hold API tokens, one user per role.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from tests.crm.conftest import _engines, _postgres_database, db_url, engine  # noqa: F401

from patron.crm.db import session_scope
from patron.web.app import create_app

PASSWORD = "correct horse battery"


@pytest.fixture
def app(engine):  # noqa: F811
    """The application on the test database (the test's engine, not disposed by the app)."""
    return create_app(engine=engine)


@pytest.fixture
def client(app):
    """A client of :func:`app`; English messages unless a test asks for another language."""
    with TestClient(app, headers={"Accept-Language": "en"}) as client:
        yield client


class Users:
    """Creates users (one per role unless named) and hands out their bearer headers."""

    password = PASSWORD

    def __init__(self, engine) -> None:  # noqa: F811
        self.engine = engine
        self.tokens: dict[str, str] = {}
        self.ids: dict[str, int] = {}

    def create(self, username: str, role: str, *, password: str = PASSWORD) -> int:
        from patron.crm.services import auth, users

        with session_scope(self.engine) as session:
            user, _ = users.create_user(session, username=username, role=role, password=password)
            token, _ = auth.create_api_token(session, user, name="test")
            self.tokens[username], self.ids[username] = token, user.id
        return user.id

    def headers(self, who: str) -> dict[str, str]:
        """Bearer headers of ``who``: a username, or a role (its user made on first use)."""
        if who not in self.tokens:
            self.create(who, who)
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def id(self, who: str) -> int:
        self.headers(who)
        return self.ids[who]


@pytest.fixture
def users(engine):  # noqa: F811
    return Users(engine)
