"""Benchmark: the whole ``patron analyze`` job, stage by stage, against a lifetimes pipeline.

Run ``python bench/analyze.py --rows 1000000 10000000`` (see bench/README.md).

``patron`` runs ``patron.analyze(path)`` on the Parquet export and writes every output
(customers.csv/.parquet, summary.json, rejected.csv, report.html), as ``patron analyze``
does, with ``--model`` as given (default ``auto``, which adds a backtest of every
candidate).  ``lifetimes`` runs the nearest thing a lifetimes user can write: read the
Parquet with pandas, ``summary_data_from_transaction_data``, ``BetaGeoFitter``,
``GammaGammaFitter`` on repeat customers and ``customer_lifetime_value`` over 12 months at
10% a year -- no RFM, grades, stages, intervals or report, so it does less work.  Each run
is a fresh interpreter; time is wall time from the call to the last file written, memory
the process's peak RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "output"
sys.path.insert(0, str(HERE))

from summary import END, _peak_memory, generate  # noqa: E402  (bench/summary.py's data)


def _patron(path: Path, model: str) -> dict:
    import patron

    stages: dict[str, float] = {}

    @contextlib.contextmanager
    def step(key: str):
        start = time.perf_counter()
        yield
        stages[key] = time.perf_counter() - start

    start = time.perf_counter()
    analysis = patron.analyze(path, model=model, step=step)
    with step("write"), tempfile.TemporaryDirectory() as out:
        analysis.write(out)
    return {
        "seconds": time.perf_counter() - start,
        "stages": stages,
        "customers": analysis.customers.num_rows,
        "model": analysis.model_name,
    }


def _lifetimes(path: Path, model: str) -> dict:
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    start = time.perf_counter()
    df = pd.read_parquet(path, columns=["customer_id", "ts", "amount"])
    df = df[df["amount"] >= 0]
    s = summary_data_from_transaction_data(
        df, "customer_id", "ts", "amount", observation_period_end=str(END), freq="D",
        freq_multiplier=7,
    )
    bg = BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])
    repeat = s[(s["frequency"] > 0) & (s["monetary_value"] > 0)]
    gg = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    clv = gg.customer_lifetime_value(
        bg, s["frequency"], s["recency"], s["T"], s["monetary_value"], time=12,
        discount_rate=0.10 / 12, freq="W",
    )
    with tempfile.TemporaryDirectory() as out:
        clv.to_frame().to_csv(Path(out) / "clv.csv")
    return {"seconds": time.perf_counter() - start, "stages": {}, "customers": len(s)}


CONTENDERS = {"patron": _patron, "lifetimes": _lifetimes}


def worker(name: str, path: Path, model: str) -> None:
    """Run one contender once; print its figures as JSON."""
    result = CONTENDERS[name](path, model)
    result["peak_bytes"] = _peak_memory()
    print(json.dumps(result))


def _spawn(name: str, path: Path, model: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", name, "--input", str(path), "--model", model]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{name} on {path.name} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--model", default="auto", help="patron's --model (default auto)")
    parser.add_argument(
        "--lifetimes-max-rows", type=int, default=1_000_000,
        help="run the lifetimes pipeline only up to this many rows (it takes minutes beyond)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.input, args.model)
        return 0
    OUTPUT.mkdir(exist_ok=True)
    print(f"patron analyze benchmark, {dt.date.today()}, model={args.model}")
    header = f"{'rows':>11} {'customers':>10} {'who':<10} {'seconds':>8} {'peak GB':>8}  stages"
    print(header)
    for rows in args.rows:
        parquet, _csv = generate(rows, OUTPUT)
        results = {"patron": _spawn("patron", parquet, args.model)}
        if rows <= args.lifetimes_max_rows:
            results["lifetimes"] = _spawn("lifetimes", parquet, args.model)
        for name, r in results.items():
            stages = ", ".join(f"{k} {v:.2f}" for k, v in r["stages"].items())
            if r.get("model"):
                stages += f" (model {r['model']})"
            print(
                f"{rows:>11,} {r['customers']:>10,} {name:<10} {r['seconds']:>8.2f} "
                f"{r['peak_bytes'] / 1e9:>8.2f}  {stages}"
            )
        if "lifetimes" in results:
            ratio = results["lifetimes"]["seconds"] / results["patron"]["seconds"]
            print(f"{'':>11} lifetimes / patron time: {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
