"""Benchmark: the per-customer summary, patron vs lifetimes vs hand-written DuckDB SQL.

Run ``python bench/summary.py --rows 1000000 10000000`` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "output"
START = dt.date(2022, 1, 1)
END = dt.date(2024, 12, 31)  # the as_of of every run: the last day with data
CUSTOMERS_PER_ROW = 0.32  # 10M rows -> 3.2M customers, as in a large shop's export
RETURN_SHARE = 0.03


# --------------------------------------------------------------------------- data


def generate(rows: int, directory: Path) -> tuple[Path, Path]:
    """Write ``rows`` synthetic transactions as Parquet and CSV (cached by row count)."""
    parquet = directory / f"tx_{rows}.parquet"
    csv = directory / f"tx_{rows}.csv"
    if parquet.exists() and csv.exists():
        return parquet, csv
    import duckdb
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(rows)
    n_customers = max(1, int(rows * CUSTOMERS_PER_ROW))
    # Purchases per customer: 1 + negative binomial, a long tail as in real shops.
    mean_extra = rows / n_customers - 1
    counts = 1 + rng.negative_binomial(0.5, 0.5 / (0.5 + mean_extra), n_customers)
    diff = rows - int(counts.sum())
    if diff > 0:
        np.add.at(counts, rng.integers(0, n_customers, diff), 1)
    while diff < 0:
        many = np.flatnonzero(counts > 1)[:-diff]
        counts[many] -= 1
        diff += len(many)
    customer = np.repeat(np.arange(n_customers), counts)
    span = (END - START).days + 1
    first_day = rng.integers(0, span, n_customers)
    first_row = np.r_[0, np.cumsum(counts)[:-1]]
    day = first_day[customer] + (rng.random(rows) * (span - first_day[customer])).astype(int)
    day[first_row] = first_day
    seconds = day.astype("int64") * 86_400 + rng.integers(8 * 3600, 22 * 3600, rows)
    epoch = (START - dt.date(1970, 1, 1)).days * 86_400
    ts = (seconds + epoch) * 1_000_000
    amount = np.round(rng.lognormal(3.5, 0.8, rows), 2)
    returned = rng.random(rows) < RETURN_SHARE
    amount[returned] = -amount[returned]
    order = np.argsort(ts, kind="stable")  # exports come in time order
    ids = rng.permutation(10 * n_customers)[:n_customers]
    table = pa.table(
        {
            "customer_id": pa.array(np.char.add("C", np.char.zfill(ids.astype(str), 9))).take(
                pa.array(customer[order])
            ),
            "ts": pa.array(ts[order], pa.timestamp("us")),
            "amount": pa.array(amount[order], pa.float64()),
            "order_id": pa.array(np.char.add("O", np.char.zfill(np.arange(rows).astype(str), 10))),
        }
    )
    pq.write_table(table, parquet)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(
        f"COPY (SELECT customer_id, strftime(ts, '%Y-%m-%d %H:%M:%S') AS ts, amount, order_id "
        f"FROM read_parquet('{parquet}')) TO '{csv}' (HEADER, DELIMITER ',')"
    )
    return parquet, csv


# --------------------------------------------------------------------------- contenders
#
# Each contender runs in a fresh interpreter (``--worker``): the clock starts after the
# imports and stops when the per-customer table is in memory; the peak is the whole
# process's peak resident set (ru_maxrss), imports included.  The result is then written
# out so the parent can check that all contenders computed the same summary.


def _hand_written_sql(source: str, as_of: dt.date) -> str:
    """The fastest DuckDB SQL of the same summary we could write (see README).

    One window sorts each customer's purchases by day, which gives both the first day and
    whether a row opens a new day; grouping by (customer, day) first was 10% slower and
    needed 60% more memory.  Returns, a small share of rows, are summed apart and joined.
    """
    return f"""
    WITH purchases AS (
        SELECT customer_id, ts::DATE AS day, amount,
               first_value(ts::DATE) OVER by_day AS opening_day,
               ts::DATE IS DISTINCT FROM lag(ts::DATE) OVER by_day AS fresh
        FROM {source}
        WHERE amount >= 0 AND ts::DATE <= DATE '{as_of}'
        WINDOW by_day AS (PARTITION BY customer_id ORDER BY ts::DATE)
    ), customers AS (
        SELECT customer_id,
               count(*) FILTER (WHERE fresh) AS periods,
               min(day) AS first_day,
               max(day) AS last_day,
               sum(amount) AS bought,
               count(*) AS orders,
               sum(amount) FILTER (WHERE day = opening_day) AS first_spend
        FROM purchases
        GROUP BY customer_id
    ), returns AS (
        SELECT customer_id, count(*) AS returns, sum(amount) AS returned
        FROM {source}
        WHERE amount < 0 AND ts::DATE <= DATE '{as_of}'
        GROUP BY customer_id
    )
    SELECT customer_id,
           periods - 1 AS frequency,
           (last_day - first_day) / 7.0 AS recency,
           (DATE '{as_of}' - first_day) / 7.0 AS T,
           CASE WHEN periods > 1 THEN (bought - first_spend) / (periods - 1) ELSE 0 END
               AS monetary_value,
           orders,
           bought + coalesce(returned, 0) AS total_spend,
           coalesce(returns, 0) AS returns,
           coalesce(-returned, 0) AS returned_amount,
           first_day AS first_purchase,
           last_day AS last_purchase
    FROM customers LEFT JOIN returns USING (customer_id)
    ORDER BY customer_id
    """


def _run_patron(path: Path, as_of: dt.date):
    import ibis
    import ibis.backends.duckdb  # noqa: F401  (imports before the clock, as for the others)

    import patron
    import patron.engine  # noqa: F401

    if path.suffix == ".csv":
        import patron.ingest  # noqa: F401

    def run():
        return patron.summarize(path, period="D", time_unit="W", as_of=as_of)

    return run


def _run_lifetimes(path: Path, as_of: dt.date):
    import warnings

    import pandas as pd
    from lifetimes.utils import summary_data_from_transaction_data

    warnings.simplefilter("ignore")

    def run():
        df = pd.read_parquet(path, columns=["customer_id", "ts", "amount"])
        df = df[df["amount"] >= 0]  # lifetimes has no returns: give it the purchases
        return summary_data_from_transaction_data(
            df,
            "customer_id",
            "ts",
            "amount",
            observation_period_end=str(as_of),
            freq="D",
            freq_multiplier=7,
        )

    return run


def _run_duckdb(path: Path, as_of: dt.date):
    import duckdb

    if path.suffix == ".csv":
        source = (
            f"read_csv('{path}', header = true, columns = {{'customer_id': 'VARCHAR', "
            f"'ts': 'TIMESTAMP', 'amount': 'DOUBLE', 'order_id': 'VARCHAR'}})"
        )
    else:
        source = f"read_parquet('{path}')"
    sql = _hand_written_sql(source, as_of)

    def run():
        con = duckdb.connect()
        return con.sql(sql).to_arrow_table()

    return run


CONTENDERS = {"patron": _run_patron, "lifetimes": _run_lifetimes, "duckdb": _run_duckdb}


def _as_arrow(result):
    """Any contender's result as Arrow: customer_id, frequency, recency, T, monetary_value."""
    import pyarrow as pa

    if not isinstance(result, pa.Table):  # lifetimes: a pandas frame indexed by customer
        result = pa.Table.from_pandas(result.reset_index(), preserve_index=False)
    result = result.select(["customer_id", "frequency", "recency", "T", "monetary_value"])
    return result.cast(
        pa.schema(
            [("customer_id", pa.string()), ("frequency", pa.int64())]
            + [(c, pa.float64()) for c in ("recency", "T", "monetary_value")]
        )
    )


def _peak_memory() -> int:
    """This process's high-water resident set (VmHWM), in bytes.

    Not ``ru_maxrss``: Linux carries it across fork + exec, so a worker started by a
    driver holding 400 MB would report at least 400 MB whatever it did.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker(name: str, path: Path, as_of: dt.date, out: Path) -> None:
    """Run one contender once and print its time and peak memory as JSON."""
    import pyarrow.parquet as pq

    run = CONTENDERS[name](path, as_of)
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    peak = _peak_memory()
    pq.write_table(_as_arrow(result), out)
    print(json.dumps({"seconds": seconds, "peak_bytes": peak}))


# --------------------------------------------------------------------------- driver


def _spawn(name: str, path: Path, as_of: dt.date, out: Path) -> dict:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        name,
        "--input",
        str(path),
        "--as-of",
        str(as_of),
        "--out",
        str(out),
    ]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{name} on {path.name} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measure(names: list[str], path: Path, as_of: dt.date, repeat: int) -> dict[str, dict]:
    """Each contender ``repeat`` times, interleaved so that machine noise hits all alike."""
    runs: dict[str, list[dict]] = {n: [] for n in names}
    for _ in range(repeat):
        for name in names:
            out = OUTPUT / f"result_{name}_{path.stem}{path.suffix.replace('.', '_')}.parquet"
            runs[name].append(_spawn(name, path, as_of, out) | {"out": out})
    return {
        name: {
            "seconds": statistics.median(r["seconds"] for r in rs),
            "best": min(r["seconds"] for r in rs),
            "peak_bytes": max(r["peak_bytes"] for r in rs),
            "out": rs[-1]["out"],
        }
        for name, rs in runs.items()
    }


def _check_equal(results: dict[str, dict]) -> int:
    """All contenders computed the same summary; returns the number of customers."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    tables = {n: pq.read_table(r["out"]).sort_by("customer_id") for n, r in results.items()}
    names = list(tables)
    ref = tables[names[0]]
    for other in names[1:]:
        t = tables[other]
        if not t.column("customer_id").equals(ref.column("customer_id")):
            raise AssertionError(f"{other} and {names[0]} have different customers")
        if not t.column("frequency").equals(ref.column("frequency")):
            raise AssertionError(f"{other} and {names[0]} differ in frequency")
        for col in ("recency", "T", "monetary_value"):
            a, b = t[col], ref[col]
            tol = pc.add(pc.multiply(pc.abs(b), 1e-9), 1e-9)
            if not pc.all(pc.less_equal(pc.abs(pc.subtract(a, b)), tol)).as_py():
                raise AssertionError(f"{other} and {names[0]} differ in {col}")
    return ref.num_rows


def _csv_reader_available() -> bool:
    try:
        from patron.ingest import read_transactions  # noqa: F401
    except ImportError:
        return False
    return True


def _gb(n: float) -> str:
    return f"{n / 2**30:.2f} GB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender (median)")
    parser.add_argument("--no-csv", action="store_true", help="skip the CSV comparison")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.input, args.as_of, args.out)
        return 0

    import duckdb

    import patron

    print(
        f"patron {patron.__version__}, duckdb {duckdb.__version__}, "
        f"{os.cpu_count()} cores, python {sys.version.split()[0]}; median of {args.repeat}"
    )
    lines = []
    for rows in args.rows:
        parquet, csv = generate(rows, OUTPUT)
        results = _measure(["patron", "duckdb", "lifetimes"], parquet, END, args.repeat)
        customers = _check_equal(results)
        p, d, lt = (results[n] for n in ("patron", "duckdb", "lifetimes"))
        print(f"\n{rows:,} rows, {customers:,} customers (Parquet); outputs equal")
        for name, r in results.items():
            print(
                f"  {name:<10} {r['seconds']:7.2f} s (best {r['best']:.2f})  "
                f"peak {_gb(r['peak_bytes'])}"
            )
        ratios = (
            p["seconds"] / d["seconds"],
            lt["seconds"] / p["seconds"],
            p["peak_bytes"] / lt["peak_bytes"],
        )
        print(
            f"  patron/duckdb {ratios[0]:.2f}x   lifetimes/patron {ratios[1]:.1f}x   "
            f"memory patron/lifetimes {ratios[2]:.0%}"
        )
        lines.append(
            f"| {rows:,} | Parquet | {p['seconds']:.2f} s, {_gb(p['peak_bytes'])} | "
            f"{d['seconds']:.2f} s, {_gb(d['peak_bytes'])} | "
            f"{lt['seconds']:.2f} s, {_gb(lt['peak_bytes'])} | {ratios[0]:.2f}x | "
            f"{ratios[1]:.1f}x | {ratios[2]:.0%} |"
        )
        if args.no_csv:
            continue
        if not _csv_reader_available():
            print("  CSV: skipped, patron.read_transactions is not there yet")
            continue
        csv_results = _measure(["patron", "duckdb"], csv, END, args.repeat)
        _check_equal(csv_results)
        pc_, dc = csv_results["patron"], csv_results["duckdb"]
        print(
            f"  CSV: patron {pc_['seconds']:.2f} s, peak {_gb(pc_['peak_bytes'])}; "
            f"duckdb read_csv {dc['seconds']:.2f} s, peak {_gb(dc['peak_bytes'])}; "
            f"patron/duckdb {pc_['seconds'] / dc['seconds']:.1f}x"
        )
        lines.append(
            f"| {rows:,} | CSV | {pc_['seconds']:.2f} s, {_gb(pc_['peak_bytes'])} | "
            f"{dc['seconds']:.2f} s, {_gb(dc['peak_bytes'])} | – | "
            f"{pc_['seconds'] / dc['seconds']:.2f}x | – | – |"
        )
    print(
        "\n| rows | input | patron | hand-written DuckDB | lifetimes | patron/DuckDB "
        "| lifetimes/patron | memory patron/lifetimes |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
