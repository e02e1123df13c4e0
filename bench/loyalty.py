"""Benchmark: loyalty points earned and redeemed through the HTTP API on PostgreSQL.

Run ``python bench/loyalty.py`` (see bench/README.md). The benchmark creates a database of
its own on the server ``PATRON_TEST_DATABASE_URL`` names (default
postgresql://postgres@127.0.0.1:5432/test), migrates it, and opens ``--customers`` members
with ``--balance`` points each (setup, not measured). Then ``patron serve --workers`` runs
on it (uvicorn on loopback), and ``--clients`` concurrent clients (httpx, one keep-alive
connection each, asyncio in one process) send ``--ops`` requests back to back, half
``POST .../points/earn`` and half ``POST .../points/redeem`` of a random member, each with
its own ``Idempotency-Key``.

It prints operations per second and latency percentiles (p50/p95/p99, from the request
leaving the client to its answer read), then checks, with the server stopped, that nothing
was lost or invented: the ledger's invariants over every account
(:func:`patron.crm.services.loyalty.check_invariants`), and the sum of all balances equal
to the setup's points plus every earn and less every redemption the clients saw answered
201. The database is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "output"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def create_database(server_url: str) -> str:
    """A new, migrated database next to ``server_url``'s; its URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from patron.crm.db import database_url, make_engine
    from patron.crm.migrate import upgrade

    url = make_url(database_url(server_url))
    name = f"patron_bench_loyalty_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    target = url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(target)
    upgrade(engine)
    engine.dispose()
    return target


def drop_database(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    admin.dispose()


def setup(url: str, customers: int, balance: int) -> tuple[str, list[int]]:
    """Members with ``balance`` points each, and a staff user's API token."""
    from patron.crm.db import make_engine, session_scope
    from patron.crm.services import auth, loyalty, users
    from patron.crm.tables import Customer

    engine = make_engine(url)
    with session_scope(engine) as session:
        user, _password = users.create_user(
            session, username="bench_staff", role="staff", password=secrets.token_urlsafe(16)
        )
        token, _record = auth.create_api_token(session, user, name="bench")
        people = [Customer(name=f"会员{i:05d}") for i in range(customers)]
        session.add_all(people)
        session.flush()
        ids = [person.id for person in people]
        for customer_id in ids:
            loyalty.earn(session, customer_id, balance, reason="opening balance")
    engine.dispose()
    return token, ids


def serve(url: str, workers: int) -> tuple[subprocess.Popen, int]:
    """``patron serve`` on a free loopback port, once it answers ``/healthz``."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    OUTPUT.mkdir(exist_ok=True)
    log = OUTPUT / "loyalty_serve.log"
    patron_cli = Path(sys.executable).parent / "patron"
    server = subprocess.Popen(
        [str(patron_cli), "serve", "--database-url", url, "--port", str(port)]
        + ["--workers", str(workers)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return server, port
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.terminate()
            raise RuntimeError(f"patron serve did not answer /healthz:\n{log.read_text()}")
        time.sleep(0.3)


def points_plan(ids: list[int], ops: int, seed: int) -> list[tuple[str, int, int]]:
    """``ops`` requests, earn and redeem in turn, each of a random member and amount."""
    rng = random.Random(seed)
    return [
        ("earn" if i % 2 == 0 else "redeem", rng.choice(ids), rng.randint(1, 100))
        for i in range(ops)
    ]


async def drive(port: int, token: str, plan, *, clients: int):
    """The ``plan``'s requests from ``clients`` concurrent clients, each with one
    keep-alive connection; per request (kind, status, points, seconds).

    A plan item ``("health", 0, 0)`` is ``GET /healthz`` (one database round trip): the
    framework's own cost, for comparison.
    """
    import httpx

    queue: asyncio.Queue = asyncio.Queue()
    for item in plan:
        queue.put_nowait(item)
    results: list[tuple[str, int, int, float]] = []
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    async def client() -> None:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            limits=limits,
            timeout=60,
        ) as http:
            while True:
                try:
                    kind, customer_id, points = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                start = time.perf_counter()
                if kind == "health":
                    answer = await http.get("/healthz")
                else:
                    answer = await http.post(
                        f"/api/v1/customers/{customer_id}/points/{kind}",
                        json={"points": points, "reason": "bench"},
                        headers={"Idempotency-Key": uuid.uuid4().hex},
                    )
                elapsed = time.perf_counter() - start
                results.append((kind, answer.status_code, points, elapsed))

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return results, time.perf_counter() - started


def _processes(server_pid: int, database: str) -> dict[int, tuple[str, float]]:
    """The server's processes and PostgreSQL's backends of ``database``: pid -> (which,
    CPU seconds so far), read from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        seconds = (int(fields[11]) + int(fields[12])) / tick
        if int(entry.name) == server_pid or int(fields[1]) == server_pid:
            found[int(entry.name)] = ("server", seconds)
        elif command.startswith("postgres:") and f" {database} " in command:
            found[int(entry.name)] = ("postgres", seconds)
    return found


class CpuMeter:
    """CPU seconds of the server and of the database's backends while the block runs.

    Pools close connections beyond their size when they come back, so backends come and
    go: /proc is sampled every 0.2 s and each process counts with the last CPU time seen.
    """

    def __init__(self, server_pid: int, database: str) -> None:
        self.server_pid, self.database = server_pid, database
        self.first: dict[int, tuple[str, float]] = {}
        self.last: dict[int, tuple[str, float]] = {}

    def sample(self) -> None:
        seen = _processes(self.server_pid, self.database)
        for pid, value in seen.items():
            self.first.setdefault(pid, (value[0], 0.0) if self.last else value)
        self.last.update(seen)

    def __enter__(self) -> CpuMeter:
        import threading

        self.sample()
        self._stop = threading.Event()

        def run() -> None:
            while not self._stop.wait(0.2):
                self.sample()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def used(self) -> dict[str, float]:
        totals = {"server": 0.0, "postgres": 0.0}
        for pid, (which, seconds) in self.last.items():
            totals[which] += seconds - self.first[pid][1]
        return totals


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(int(round(q / 100 * (len(ordered) - 1))), len(ordered) - 1)
    return ordered[index]


def check(url: str, customers: int, balance: int, results) -> list[str]:
    """Broken invariants, and whether the balances add up to what the clients saw."""
    from sqlalchemy import func, select

    from patron.crm.db import make_engine, session_scope
    from patron.crm.services import loyalty
    from patron.crm.tables import LoyaltyAccount

    earned = sum(p for kind, status, p, _s in results if kind == "earn" and status == 201)
    spent = sum(p for kind, status, p, _s in results if kind == "redeem" and status == 201)
    engine = make_engine(url)
    with session_scope(engine) as session:
        problems = loyalty.check_invariants(session)
        total = session.scalar(select(func.sum(LoyaltyAccount.balance)))
    engine.dispose()
    expected = customers * balance + earned - spent
    if total != expected:
        problems.append(f"balances sum to {total}, the clients saw {expected}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("PATRON_TEST_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--balance", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--ops", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--baseline", type=int, default=5_000, help="GET /healthz requests")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args(argv)

    url = create_database(args.url)
    print(f"database: {url.rsplit('/', 1)[1]}")
    server = None
    try:
        started = time.perf_counter()
        token, ids = setup(url, args.customers, args.balance)
        print(
            f"setup: {len(ids):,} members with {args.balance:,} points"
            f" ({time.perf_counter() - started:.1f} s)"
        )
        server, port = serve(url, args.workers)
        clients = args.clients
        database = url.rsplit("/", 1)[1]
        with CpuMeter(server.pid, database) as base_meter:
            health, health_seconds = asyncio.run(
                drive(port, token, [("health", 0, 0)] * args.baseline, clients=clients)
            )
        warm, _seconds = asyncio.run(
            drive(port, token, points_plan(ids, args.warmup, args.seed + 1), clients=clients)
        )
        with CpuMeter(server.pid, database) as meter:
            client_before = time.process_time()
            results, seconds = asyncio.run(
                drive(port, token, points_plan(ids, args.ops, args.seed), clients=clients)
            )
            client_cpu = time.process_time() - client_before
        cpu = meter.used()
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    try:
        statuses = {}
        for kind, status, _p, _s in results:
            statuses[(kind, status)] = statuses.get((kind, status), 0) + 1
        latencies = [s * 1000 for *_rest, s in results]
        if health:
            base = [s * 1000 for *_rest, s in health]
            base_cpu = base_meter.used()["server"] / len(health) * 1000
            print(
                f"baseline GET /healthz: {len(health) / health_seconds:,.0f} req/s,"
                f" p50 {percentile(base, 50):.1f} ms, p95 {percentile(base, 95):.1f} ms,"
                f" server CPU {base_cpu:.2f} ms per request"
            )
        print(
            f"{len(results):,} requests ({args.clients} clients, {args.workers} workers) "
            f"in {seconds:.1f} s: {len(results) / seconds:,.0f} ops/s"
        )
        print(
            f"latency ms: p50 {percentile(latencies, 50):.1f}  p95 {percentile(latencies, 95):.1f}"
            f"  p99 {percentile(latencies, 99):.1f}  mean {statistics.fmean(latencies):.1f}"
            f"  max {max(latencies):.1f}"
        )
        per_op = {
            "server": cpu["server"],
            "PostgreSQL": cpu["postgres"],
            "client": client_cpu,
        }
        print(
            "CPU per request: "
            + ", ".join(
                f"{name} {used / len(results) * 1000:.2f} ms" for name, used in per_op.items()
            )
            + f" (machine load average {os.getloadavg()[0]:.1f})"
        )
        for kind in ("earn", "redeem"):
            mine = [s * 1000 for k, _st, _p, s in results if k == kind]
            print(
                f"  {kind:6} p50 {percentile(mine, 50):.1f}  p95 {percentile(mine, 95):.1f}"
                f"  p99 {percentile(mine, 99):.1f}"
            )
        print("answers:", ", ".join(f"{k} {st}: {n:,}" for (k, st), n in sorted(statuses.items())))
        problems = check(url, args.customers, args.balance, warm + results)
        if problems:
            print("INVARIANTS BROKEN:")
            for problem in problems[:20]:
                print("  " + problem)
            return 1
        print(
            "invariants: hold (ledger sums, lots, running balances;"
            " balances = setup + earned - redeemed)"
        )
        return 0
    finally:
        if not args.keep:
            drop_database(url)


if __name__ == "__main__":
    sys.exit(main())
