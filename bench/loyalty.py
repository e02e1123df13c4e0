"""Benchmark: loyalty points earned and redeemed through the HTTP API on PostgreSQL.

Run ``python bench/loyalty.py`` (see bench/README.md). The benchmark creates a database of
its own on the server ``PATRON_TEST_DATABASE_URL`` names (default
postgresql://postgres@127.0.0.1:5432/test), migrates it, and opens ``--customers`` members
with ``--balance`` points each (setup, not measured). Then ``patron serve --workers`` runs
on it (uvicorn on loopback), and wrk (``bench/loadgen.py``, ``bench/wrk/points.lua``)
keeps ``--clients`` keep-alive connections busy for ``--seconds``, each sending its next
request when the last is answered: ``POST .../points/earn`` and ``POST .../points/redeem``
in turn, of a random member and 1-100 points, each with its own ``Idempotency-Key``.

It prints operations per second, latency percentiles (p50/p95/p99, from the request
leaving the client to its answer read) and the CPU each part used per request, then
checks, with the server stopped, that nothing was lost or invented: the ledger's
invariants over every account (:func:`patron.crm.services.loyalty.check_invariants`), the
sum of all balances equal to the setup's points plus the earns less the redemptions, and
every write a client saw answered 201 in the ledger (:func:`check`). The database is
dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import loadgen  # noqa: E402  (bench/loadgen.py)

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
        + ["--workers", str(workers), "--no-access-log"],
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


def check(url: str, customers: int, balance: int, answered: dict, connections: int) -> list[str]:
    """Broken invariants, and whether the ledger agrees with what the clients were told.

    wrk stops at the end of its time with up to one request per connection in flight:
    the server may have stored those without the client reading the answer. So the
    ledger's API entries may exceed what the clients saw by at most ``connections``
    entries, and never fall short of it; and the balances must sum to the setup's points
    plus every API entry's points (the warm-up's included), to the point.
    """
    from sqlalchemy import func, select

    from patron.crm.db import make_engine, session_scope
    from patron.crm.services import loyalty
    from patron.crm.tables import LoyaltyAccount, LoyaltyEntry

    engine = make_engine(url)
    with session_scope(engine) as session:
        problems = loyalty.check_invariants(session)
        total = session.scalar(select(func.sum(LoyaltyAccount.balance)))
        stored = dict(
            session.execute(
                select(LoyaltyEntry.kind, func.sum(LoyaltyEntry.points))
                .where(LoyaltyEntry.source_type == "api", LoyaltyEntry.reason == "bench")
                .group_by(LoyaltyEntry.kind)
            ).all()
        )
        count = session.scalar(
            select(func.count()).where(
                LoyaltyEntry.source_type == "api", LoyaltyEntry.reason == "bench"
            )
        )
        # The warm-up's writes (reason "warm-up") moved balances too.
        moved = session.scalar(
            select(func.coalesce(func.sum(LoyaltyEntry.points), 0)).where(
                LoyaltyEntry.source_type == "api"
            )
        )
    engine.dispose()
    earned, redeemed = int(stored.get("earn", 0)), -int(stored.get("redeem", 0))
    if total != customers * balance + moved:
        problems.append(
            f"balances sum to {total}, the ledger's API entries say {customers * balance + moved}"
        )
    if earned < answered["earned"] or redeemed < answered["redeemed"]:
        problems.append(
            f"the clients were told of {answered['earned']} earned and {answered['redeemed']}"
            f" redeemed; the ledger holds only {earned} and {redeemed}"
        )
    if not 0 <= count - answered["ok"] <= connections:
        problems.append(f"{answered['ok']} writes answered 201, {count} in the ledger")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("PATRON_TEST_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--balance", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20, help="measured time")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of unmeasured load")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args(argv)
    if not loadgen.available():
        print("bench/loyalty.py drives the API with wrk: apt-get install wrk", file=sys.stderr)
        return 2

    url = create_database(args.url)
    database = url.rsplit("/", 1)[1]
    print(f"database: {database}")
    server = None
    try:
        started = time.perf_counter()
        token, ids = setup(url, args.customers, args.balance)
        if ids != list(range(ids[0], ids[0] + len(ids))):
            raise RuntimeError("the members' ids are not one run")
        print(
            f"setup: {len(ids):,} members with {args.balance:,} points"
            f" ({time.perf_counter() - started:.1f} s)"
        )
        server, port = serve(url, args.workers)
        base = f"http://127.0.0.1:{port}"
        health_paths = OUTPUT / "loyalty_health.txt"
        health_paths.write_text("/healthz\n")
        with CpuMeter(server.pid, database) as base_meter:
            health = loadgen.run(
                base, "paths.lua", [health_paths, token], connections=args.clients, seconds=5
            )
        members = [token, ids[0], ids[-1]]
        loadgen.run(
            base,
            "points.lua",
            [*members, args.seed + 1, "warm-up"],
            connections=args.clients,
            seconds=args.warmup,
        )
        with CpuMeter(server.pid, database) as meter:
            result = loadgen.run(
                base,
                "points.lua",
                [*members, args.seed, "bench"],
                connections=args.clients,
                seconds=args.seconds,
            )
        cpu = meter.used()
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    try:
        base_cpu = base_meter.used()["server"] / health["requests"] * 1000
        print(
            f"baseline GET /healthz: {health['per_second']:,.0f} req/s,"
            f" p50 {health['p50']:.1f} ms, p95 {health['p95']:.1f} ms,"
            f" server CPU {base_cpu:.2f} ms per request"
        )
        requests = result["requests"]
        print(
            f"{requests:,} requests ({args.clients} clients, {args.workers} workers) "
            f"in {result['seconds']:.1f} s: {result['per_second']:,.0f} ops/s"
            f" (target 1,000)"
        )
        print(
            f"latency ms: p50 {result['p50']:.1f}  p95 {result['p95']:.1f} (target 50)"
            f"  p99 {result['p99']:.1f}  mean {result['mean']:.1f}  max {result['max']:.1f}"
        )
        per_op = {
            "server": cpu["server"],
            "PostgreSQL": cpu["postgres"],
            "client (wrk)": result["client_cpu"],
        }
        print(
            "CPU per request: "
            + ", ".join(f"{name} {used / requests * 1000:.2f} ms" for name, used in per_op.items())
            + f" (machine load average {os.getloadavg()[0]:.1f})"
        )
        ok = requests - result["refused"]
        print(
            f"answers: {ok:,} 201 ({result['earned']:,} points earned,"
            f" {result['redeemed']:,} redeemed), {result['refused']:,} other,"
            f" {result['errors_other']:,} socket errors"
        )
        answered = {"earned": result["earned"], "redeemed": result["redeemed"], "ok": ok}
        problems = check(url, args.customers, args.balance, answered, args.clients)
        if problems or result["refused"] or result["errors_other"]:
            print("INVARIANTS BROKEN:" if problems else "SOME REQUESTS FAILED")
            for problem in problems[:20]:
                print("  " + problem)
            return 1
        print(
            "invariants: hold (ledger sums, lots, running balances; balances = setup +"
            " the API's earns - redemptions; every answered write is in the ledger)"
        )
        return 0
    finally:
        if not args.keep:
            drop_database(url)


if __name__ == "__main__":
    sys.exit(main())
