"""Several server processes on one port, each with a listening socket of its own.

uvicorn's ``--workers`` hands every process the same listening socket, and whichever
process wakes first takes the next connection. A client keeps its connection, so the
split made at connect time stays: with 32 clients on two workers the kernel gave one 21
and the other 11, and the busier worker's clients set the p95 (360 under 32 clients:
p95 138-201 ms shared, 83-109 ms with a socket each). With ``SO_REUSEPORT`` (Linux, the
BSDs) every worker binds the port itself and the kernel spreads new connections over the
sockets by a hash of the client's address.

:func:`run_workers` is the small supervisor that needs: it starts the workers, starts a
worker again when one dies, and stops them all on Ctrl+C or ``SIGTERM``. Where the
platform has no ``SO_REUSEPORT``, :func:`available` is false and ``patron serve`` uses
uvicorn's own workers.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import time
from typing import Any

__all__ = ["available", "listening_socket", "run_workers"]

#: A worker that dies sooner than this after starting is not started again: the app, the
#: database URL or the port is wrong, and would be wrong on every restart.
STARTUP_SECONDS = 5.0


def available() -> bool:
    """Whether this platform can give each worker its own socket on one port."""
    return hasattr(socket, "SO_REUSEPORT")


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` that other workers may bind too (``SO_REUSEPORT``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def _worker(factory: str, host: str, port: int, options: dict[str, Any]) -> None:
    import uvicorn

    config = uvicorn.Config(factory, factory=True, host=host, port=port, **options)
    uvicorn.Server(config).run(sockets=[listening_socket(host, port)])


def run_workers(factory: str, *, host: str, port: int, workers: int, **options: Any) -> int:
    """Serve the app ``factory`` (an import path) from ``workers`` processes until stopped.

    Returns the exit status: 0 when stopped by a signal, 3 when a worker failed at start.
    ``options`` go to :class:`uvicorn.Config`.
    """
    # Bind once here first, so a port in use is one clear error rather than N dying workers.
    listening_socket(host, port).close()
    context = multiprocessing.get_context("spawn")
    stopping: list[int] = []

    def stop(signum: int, _frame: Any) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}

    def start() -> tuple[multiprocessing.process.BaseProcess, float]:
        process = context.Process(target=_worker, args=(factory, host, port, options))
        process.start()
        return process, time.monotonic()

    running = [start() for _ in range(workers)]
    status = 0
    try:
        while not stopping:
            time.sleep(0.2)
            for index, (process, started) in enumerate(running):
                if process.is_alive() or stopping:
                    continue
                if time.monotonic() - started < STARTUP_SECONDS:
                    stopping.append(0)
                    status = 3
                    break
                running[index] = start()
    finally:
        for process, _started in running:
            if process.is_alive():
                process.terminate()
        for process, _started in running:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status
