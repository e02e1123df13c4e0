"""Benchmark: the operational store on PostgreSQL -- a scoring run and an import, at scale.

Run ``python bench/crm.py`` (see bench/README.md). The benchmark creates a database of its
own next to the one ``PATRON_TEST_DATABASE_URL`` names (default
postgresql://postgres@127.0.0.1:5432/test), migrates it, fills it with ``--customers``
synthetic customers and ``--orders`` orders by bulk ``COPY`` (setup, not measured), then
measures, each in a fresh interpreter:

1. ``score``: :func:`patron.crm.services.scoring.run_scoring` over every customer -- orders
   out of PostgreSQL, ``patron.analyze`` (``--model``, default auto), one snapshot row per
   customer back in -- committed, stage by stage;
2. ``import``: :func:`patron.crm.services.imports.import_file` of a messy Chinese order
   export of ``--import-rows`` rows (the demo shop's, cached in ``bench/output/``) into the
   filled database, committed: parsing, customers matched or created, orders inserted;
3. ``import again``: the next export of the same shop -- the same rows and one more --
   through the upsert path (every order compared with the stored one);
4. the API (``measure_api``): ``patron serve --workers 2`` on the database, then customer
   search (a mix of phone and name prefixes, full names, external ids, grade filters) and
   the 360 endpoint, each ``--requests`` requests from ``--clients`` concurrent clients on
   loopback: latency percentiles and requests per second.

Time is wall time of the service call and its commit; memory the worker's VmHWM. The
database is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "output"
sys.path.insert(0, str(HERE))

import loadgen  # noqa: E402  (bench/loadgen.py: wrk)
from loyalty import CpuMeter  # noqa: E402  (bench/loyalty.py's /proc reader)
from summary import _peak_memory  # noqa: E402  (bench/summary.py's VmHWM reader)

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
END = dt.date(2025, 12, 31)  # the synthetic orders' last day


# --- data ----------------------------------------------------------------------------------


def import_file_for(rows: int) -> Path:
    """The demo shop's messy export with about ``rows`` rows (cached by size)."""
    import patron

    path = OUTPUT / f"crm_import_{rows}.csv"
    if not path.exists():
        OUTPUT.mkdir(exist_ok=True)
        # ~2.78 rows per customer in the demo shop (repeat buyers, refunds, damage).
        patron.datasets.demo_shop(path, customers=max(round(rows / 2.78), 1), seed=11)
    return path


def next_export(path: Path) -> Path:
    """``path`` plus one more order: the shop's next export, which repeats the last."""
    again = path.with_name(path.stem + "_next.csv")
    if not again.exists():
        data = path.read_bytes()
        last = data.rstrip(b"\n").rsplit(b"\n", 1)[1].decode("utf-8").split(",")
        last[0] = "SO-NEXT-1"
        again.write_bytes(data.rstrip(b"\n") + b"\n" + ",".join(last).encode("utf-8") + b"\n")
    return again


#: Mobile number blocks (the first three digits) of the Chinese carriers.
MOBILE_BLOCKS = (
    *range(130, 140),
    145,
    147,
    *range(150, 154),
    *range(155, 160),
    166,
    *range(170, 179),
    *range(180, 190),
    191,
    198,
    199,
)


def mobile_numbers(rng, n: int):
    """``n`` different 11-digit mobile numbers, spread over the carriers' blocks as real
    customers' are: a 7-digit prefix matches a handful of them, not ten thousand (numbers
    counted up from 13000000001 made every phone-prefix search a scan of 10,000)."""
    import numpy as np

    drawn = np.empty(0, dtype=np.int64)
    while len(drawn) < n:
        blocks = np.array(MOBILE_BLOCKS, dtype=np.int64)[rng.integers(0, len(MOBILE_BLOCKS), n)]
        more = blocks * 10**8 + rng.integers(0, 10**8, n)
        drawn = np.unique(np.concatenate([drawn, more]))
    return rng.permutation(drawn)[:n].astype(str)


def fill(url: str, customers: int, orders: int, seed: int = 5) -> dict:
    """``customers`` customers (each with a phone and an external id) and about ``orders``
    orders, written with COPY through patron's bulk loader; returns the counts."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from patron.crm.db import make_engine, session_scope
    from patron.crm.services import bulk

    rng = np.random.default_rng(seed)
    engine = make_engine(url)
    now = dt.datetime.now(dt.UTC)
    mean_orders = orders / customers
    total = 0
    chunk = 100_000
    surnames = np.array(list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗"))
    given = np.array(list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍建国志红文辉"))
    end = np.datetime64(END) + np.timedelta64(1, "D")
    mobiles = mobile_numbers(rng, customers)
    with session_scope(engine) as session:
        # Setup only: skip the foreign-key triggers while loading (superuser).
        session.connection().exec_driver_sql("SET session_replication_role = replica")
        for start in range(0, customers, chunk):
            n = min(chunk, customers - start)
            ids = np.arange(start + 1, start + n + 1, dtype=np.int64)
            names = pc.binary_join_element_wise(
                pa.array(surnames[rng.integers(0, len(surnames), n)]),
                pa.array(given[rng.integers(0, len(given), n)]),
                pa.array(given[rng.integers(0, len(given), n)]),
                "",
            )
            phones = pa.array(mobiles[start : start + n])
            times = pa.array([now] * n, pa.timestamp("us", "UTC"))
            bulk.load_rows(
                session,
                "customers",
                pa.table(
                    {
                        "id": ids,
                        "name": names,
                        "phone": phones,
                        "phone_norm": phones,
                        "channel": pa.array(["门店"] * n),
                        "created_at": times,
                        "updated_at": times,
                    }
                ),
            )
            bulk.load_rows(
                session,
                "customer_external_ids",
                pa.table(
                    {
                        "customer_id": ids,
                        "source": pa.array(["bench"] * n),
                        "external_id": pa.array(np.char.add("B", ids.astype(str))),
                        "created_at": times,
                    }
                ),
            )
            # Orders: 1 + negative binomial per customer; first purchase in the last three
            # years, later ones spread over a lifetime of ~400 days (or until the end).
            counts = 1 + rng.negative_binomial(1, 1 / mean_orders, n)
            first = rng.integers(0, 3 * 365, n)
            life = np.minimum(rng.exponential(400, n).astype(np.int64), first)
            who = np.repeat(np.arange(n), counts)
            m = len(who)
            day_back = first[who] - (rng.random(m) * life[who]).astype(np.int64)
            seconds = rng.integers(10 * 3600, 22 * 3600, m)
            ts = (
                end
                - np.timedelta64(1, "D") * (day_back + 1)
                + seconds.astype("timedelta64[s]")
                - np.timedelta64(8, "h")  # Shanghai shop hours, stored in UTC
            ).astype("datetime64[us]")
            amount = np.round(rng.lognormal(5.0, 0.8, m), 2)
            refund = rng.random(m) < 0.03
            amount[refund] *= -1
            numbers = np.arange(total, total + m)
            times = pa.array([now] * m, pa.timestamp("us", "UTC"))
            bulk.load_rows(
                session,
                "orders",
                pa.table(
                    {
                        "source": pa.array(["bench"] * m),
                        "order_no": pa.array(np.char.add("BO", numbers.astype(str))),
                        "customer_id": pa.array(ids[who]),
                        "ordered_at": pa.array(ts, pa.timestamp("us", "UTC")),
                        "amount": pa.array(amount),
                        "status": pa.array(np.where(refund, "refunded", "completed")),
                        "channel": pa.array(["门店"] * m),
                        "created_at": times,
                        "updated_at": times,
                    }
                ),
            )
            total += m
        connection = session.connection()
        connection.exec_driver_sql("SET session_replication_role = DEFAULT")
        connection.exec_driver_sql(
            "SELECT setval(pg_get_serial_sequence('customers', 'id'), "
            "(SELECT max(id) FROM customers))"
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()
    return {"customers": customers, "orders": total}


# --- the measured work (each in a fresh interpreter) --------------------------------------


def _steps():
    marks: dict[str, float] = {}
    starts: dict[str, float] = {}

    def progress(step: str, done: int, total: int | None) -> None:
        now = time.perf_counter()
        starts.setdefault(step, now)
        marks[step] = now - starts[step]

    return marks, progress


def worker_score(url: str, model: str) -> dict:
    from patron.crm.db import make_engine, session_scope
    from patron.crm.services.scoring import run_scoring

    engine = make_engine(url)
    stages, progress = _steps()
    start = time.perf_counter()
    with session_scope(engine) as session:
        run = run_scoring(session, model=model, progress=progress)
        status, customers, message, chosen = run.status, run.customers, run.message, run.model
        commit = time.perf_counter()
    stages["commit"] = time.perf_counter() - commit
    return {
        "seconds": time.perf_counter() - start,
        "stages": stages,
        "status": status,
        "customers": customers,
        "model": chosen,
        "message": message,
    }


def worker_import(url: str, path: Path) -> dict:
    from patron.crm.db import make_engine, session_scope
    from patron.crm.services.imports import import_file

    engine = make_engine(url)
    stages, progress = _steps()
    start = time.perf_counter()
    with session_scope(engine) as session:
        batch = import_file(session, path, source="shop", progress=progress).batch
        counts = {
            k: getattr(batch, k)
            for k in (
                "rows_read",
                "inserted",
                "updated",
                "unchanged",
                "rejected",
                "customers_created",
                "customers_merged",
            )
        }
        counts["customers_matched"] = batch.report.get("customers_matched", 0)
        commit = time.perf_counter()
    stages["commit"] = time.perf_counter() - commit
    return {"seconds": time.perf_counter() - start, "stages": stages, **counts}


# What staff type into the search box, with how often (weights sum to 1).
SEARCHES = (
    ("phone prefix", 0.25),
    ("full name", 0.25),
    ("external id", 0.15),
    ("name prefix", 0.15),
    ("grade filter", 0.10),
    ("list by value", 0.10),
)


def measure_api(
    url: str,
    *,
    clients: int = 32,
    requests: int = 2000,
    workers: int = 2,
    seconds: float = 15,
    by_kind: bool = False,
) -> dict:
    """Customer search and the 360 endpoint under ``clients`` concurrent clients.

    ``patron serve --workers`` runs on the filled database at ``url``; wrk
    (:mod:`loadgen`) keeps ``clients`` keep-alive connections busy for ``seconds`` per
    endpoint, each sending its next request when the last is answered, cycling through
    ``requests`` different paths (the server and the clients share the machine's cores,
    as a small shop's single server would). Returns latency percentiles in milliseconds
    and throughput per endpoint, and the same for ``/healthz`` (5 s): what a request costs
    the server before any work of patron's, to compare runs on machines of different speed.

    With ``by_kind``, each kind of search in :data:`SEARCHES` then runs alone for half
    as long, under the same number of clients.

    The database is VACUUMed and ANALYZEd first: the scoring run and the import have
    just written a million rows, the planner must know them, and a search counts name
    prefixes from an index alone only on table pages VACUUM has marked all-visible. A
    server with autovacuum on (the default) does both by itself within a minute or so;
    this machine runs PostgreSQL with autovacuum off.
    """
    import http.client
    import random
    import secrets
    import socket

    from patron.crm.db import make_engine, session_scope
    from patron.crm.services import auth, users

    engine = make_engine(url)
    database = engine.url.database
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")
    with session_scope(engine) as session:
        user, _password = users.create_user(
            session,
            username=f"bench_{secrets.token_hex(3)}",
            role="manager",
            password=secrets.token_urlsafe(16),
        )
        token, _record = auth.create_api_token(session, user, name="bench")
    with engine.connect() as connection:
        ids = [
            row[0]
            for row in connection.exec_driver_sql(
                "SELECT id FROM customers WHERE merged_into_id IS NULL ORDER BY random() LIMIT 5000"
            )
        ]
        people = connection.exec_driver_sql(
            "SELECT name, phone FROM customers WHERE merged_into_id IS NULL"
            " AND phone IS NOT NULL AND name <> '' ORDER BY random() LIMIT 2000"
        ).all()
    engine.dispose()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    patron_cli = Path(sys.executable).parent / "patron"
    log = OUTPUT / "crm_serve.log"
    log.parent.mkdir(exist_ok=True)
    server = subprocess.Popen(
        [str(patron_cli), "serve", "--database-url", url, "--port", str(port)]
        + ["--workers", str(workers), "--no-access-log"],
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                probe.request("GET", "/healthz")
                if probe.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"patron serve did not answer /healthz:\n{log.read_text()}")
            time.sleep(0.3)
        rng = random.Random(7)

        def search_path(kind: str | None = None) -> str:
            from urllib.parse import quote

            kind = kind or rng.choices([k for k, _w in SEARCHES], [w for _k, w in SEARCHES])[0]
            name, phone = rng.choice(people)
            query = {
                "phone prefix": lambda: f"q={phone[:7]}",
                "full name": lambda: f"q={quote(name)}",
                "external id": lambda: f"q=B{rng.choice(ids)}",
                "name prefix": lambda: f"q={quote(name[:2])}",
                "grade filter": lambda: "grade=gold&sort=-predicted_clv",
                "list by value": lambda: "sort=-predicted_clv",
            }[kind]()
            return f"/api/v1/customers?{query}&limit=20"

        def run(name: str, make_path, seconds: float) -> dict:
            paths = OUTPUT / f"crm_paths_{name}.txt"
            paths.write_text("".join(make_path() + "\n" for _ in range(requests)))
            with CpuMeter(server.pid, database) as meter:
                result = loadgen.run(
                    f"http://127.0.0.1:{port}",
                    "paths.lua",
                    [paths, token],
                    connections=clients,
                    seconds=seconds,
                )
            result["failed"] = result["errors_status"] + result["errors_other"]
            result["server_cpu"], result["postgres_cpu"] = meter.used().values()
            return result

        run("search", search_path, 5)  # warm the server's caches and pools; not reported
        # /healthz takes the engine's own pool, which the searches never opened: warm it
        # too, so the yardstick times answers rather than connections being made.
        run("healthz", lambda: "/healthz", 1)
        measured = {
            # The machine's speed changes from day to day; a bare health check under the
            # same load is the yardstick to compare runs of different days by.
            "healthz": run("healthz", lambda: "/healthz", 5),
            "search": run("search", search_path, seconds),
            "360": run("360", lambda: f"/api/v1/customers/{rng.choice(ids)}", seconds),
            "clients": clients,
            "workers": workers,
        }
        if by_kind:  # each kind of search alone, under the same load: what each costs
            measured["kinds"] = {
                kind: run("search", lambda kind=kind: search_path(kind), seconds / 2)
                for kind, _weight in SEARCHES
            }
        return measured
    finally:
        server.terminate()
        server.wait(timeout=30)


WORKERS = {"score": worker_score, "import": worker_import}


def _spawn(kind: str, url: str, **options: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--url", url]
    for key, value in options.items():
        cmd += [f"--{key}", str(value)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- driver ---------------------------------------------------------------------------------


def _database(base: str, name: str, create: bool) -> str:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from patron.crm.db import database_url

    url = make_url(database_url(base))
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        if create:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        else:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def _stages(stages: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in stages.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--import-rows", type=int, default=1_000_000)
    parser.add_argument("--model", default="auto", help="the scoring run's model (default auto)")
    parser.add_argument(
        "--url",
        default=os.environ.get("PATRON_TEST_DATABASE_URL", DEFAULT_URL),
        help="a PostgreSQL server to create the benchmark's database on",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--clients", type=int, default=32, help="concurrent API clients")
    parser.add_argument("--requests", type=int, default=2000, help="different API paths")
    parser.add_argument("--seconds", type=float, default=15, help="API load per endpoint")
    parser.add_argument(
        "--api-only",
        metavar="DATABASE",
        help="measure only the API, on a database an earlier run kept (--keep)",
    )
    parser.add_argument("--workers", type=int, default=2, help="patron serve worker processes")
    parser.add_argument(
        "--by-kind", action="store_true", help="then each kind of search alone (SEARCHES)"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        if args.worker == "score":
            result = worker_score(args.url, args.model)
        else:
            result = worker_import(args.url, args.input)
        result["peak_bytes"] = _peak_memory()
        print(json.dumps(result))
        return 0

    if args.api_only:
        from sqlalchemy.engine import make_url

        from patron.crm.db import database_url

        url = make_url(database_url(args.url)).set(database=args.api_only)
        print(f"patron CRM benchmark, {dt.date.today()}, API only, database {args.api_only}")
        report_api(measure_api(url.render_as_string(hide_password=False), **api_options(args)))
        return 0
    name = f"patron_bench_{uuid.uuid4().hex[:8]}"
    url = _database(args.url, name, create=True)
    print(f"patron CRM benchmark, {dt.date.today()}, PostgreSQL database {name}")
    try:
        from patron.crm.db import make_engine
        from patron.crm.migrate import upgrade

        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        start = time.perf_counter()
        filled = fill(url, args.customers, args.orders)
        print(
            f"setup: {filled['customers']:,} customers, {filled['orders']:,} orders "
            f"loaded by COPY in {time.perf_counter() - start:.1f} s (not measured)"
        )
        score = _spawn("score", url, model=args.model)
        print(
            f"score:  {score['seconds']:7.1f} s  {score['peak_bytes'] / 1e9:.2f} GB  "
            f"{score['customers']:,} customers, {score['status']}, model {score['model']}  "
            f"[{_stages(score['stages'])}]"
        )
        if score["status"] != "done":
            print(f"        {score['message']}")
        path = import_file_for(args.import_rows)
        for label, file in (("import", path), ("again", next_export(path))):
            r = _spawn("import", url, input=file)
            print(
                f"{label + ':':<7} {r['seconds']:7.1f} s  {r['peak_bytes'] / 1e9:.2f} GB  "
                f"{r['rows_read']:,} rows read; orders {r['inserted']:,} inserted, "
                f"{r['updated']:,} updated, {r['unchanged']:,} unchanged, "
                f"{r['rejected']:,} rejected; customers {r['customers_created']:,} created, "
                f"{r['customers_matched']:,} matched, {r['customers_merged']:,} merged  "
                f"[{_stages(r['stages'])}]"
            )
        report_api(measure_api(url, **api_options(args)))
    finally:
        if not args.keep:
            _database(args.url, name, create=False)
    return 0


def api_options(args: argparse.Namespace) -> dict:
    return {
        "clients": args.clients,
        "requests": args.requests,
        "workers": args.workers,
        "seconds": args.seconds,
        "by_kind": args.by_kind,
    }


def report_api(api: dict) -> None:
    for endpoint, goal in (
        ("healthz", "(yardstick)"),
        ("search", "(target 50)"),
        ("360", "(target 100)"),
    ):
        _report(endpoint, api[endpoint], goal, api)
    for kind, r in api.get("kinds", {}).items():
        _report(f"search, {kind} alone", r, "", api)  # one kind of the mix: no target


def _report(endpoint: str, r: dict, goal: str, api: dict) -> None:
    print(
        f"{endpoint + ':':<8} p50 {r['p50']:6.1f} ms  p95 {r['p95']:6.1f} ms "
        f"{goal}  p99 {r['p99']:6.1f} ms  {r['per_second']:,.0f} requests/s, "
        f"{r['requests']:,} requests, {r['failed']} failed; {api['clients']} clients, "
        f"{api['workers']} server workers"
    )
    per = {"server": r["server_cpu"], "PostgreSQL": r["postgres_cpu"], "wrk": r["client_cpu"]}
    print(
        "         CPU per request: "
        + ", ".join(
            f"{name} {seconds / r['requests'] * 1000:.2f} ms" for name, seconds in per.items()
        )
    )


if __name__ == "__main__":
    raise SystemExit(main())
