"""``patron serve --workers``: each worker listens on a socket of its own (SO_REUSEPORT)."""

from __future__ import annotations

import http.client
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.web.served import free_port

from patron.crm.db import make_engine
from patron.crm.migrate import upgrade
from patron.web import workers

pytestmark = pytest.mark.skipif(
    not workers.available() or not Path("/proc/net/tcp").exists(),
    reason="needs SO_REUSEPORT and Linux's /proc/net/tcp",
)

PATRON = [str(Path(sys.executable).parent / "patron")]


def listening(port: int) -> int:
    """How many sockets listen on ``port`` (IPv4), from /proc/net/tcp."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "0A" and int(local.split(":")[1], 16) == port:
            count += 1
    return count


@pytest.fixture
def database(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'patron.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def answers(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False


def test_each_worker_listens_on_its_own_socket_and_stops_on_sigterm(database):
    port = free_port()
    server = subprocess.Popen(
        [*PATRON, "serve", "--database-url", database, "--port", str(port), "--workers", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for _attempt in range(600):
            if listening(port) == 3 and answers(port):
                break
            time.sleep(0.1)
        assert listening(port) == 3  # uvicorn's own workers share one socket: 1
        assert all(answers(port) for _ in range(20))
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=60)[0]
    assert server.returncode == 0, output
    assert listening(port) == 0


def test_a_port_in_use_is_one_clear_error(database):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*PATRON, "serve", "--database-url", database, "--port", str(port), "--workers", "2"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 2
    assert f"127.0.0.1:{port}" in done.stderr
