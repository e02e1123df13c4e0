"""The app served for real on loopback, on a database of its own, for the browser tests."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from tests.conftest import _postgres_url

from patron.crm.db import database_url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def scratch_database(kind: str, folder: Path, prefix: str) -> Iterator[str]:
    """The URL of an empty database: a SQLite file in ``folder``, or a PostgreSQL database
    created for the test and dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'patron.db'}"
        return
    base = make_url(database_url(_postgres_url()))
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def serving(engine) -> Iterator[str]:
    """``create_app`` on ``engine`` under uvicorn in a thread; yields its base URL."""
    import uvicorn

    from patron.web.app import create_app

    port = free_port()
    config = uvicorn.Config(
        create_app(engine=engine), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _attempt in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
