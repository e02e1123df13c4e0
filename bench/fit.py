"""Benchmark: fitting and scoring the customer models, patron vs lifetimes vs PyMC-Marketing.

Run ``python bench/fit.py --customers 100000 1000000`` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
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

# The CDNOW estimates the data are drawn from: BG/NBD (Fader, Hardie & Lee 2005, weeks) and
# Gamma-Gamma (Fader & Hardie 2013).
BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}
DAYS = 365  # first purchases spread over the year before as_of
HORIZON = 39.0  # weeks ahead for the expected purchases, as in the BG/NBD paper


# --------------------------------------------------------------------------- data


def generate(n: int, directory: Path) -> Path:
    """Write ``n`` synthetic customer summaries as Parquet (cached by size).

    Shaped like :func:`patron.summarize` output in weeks from daily periods: each customer's
    first purchase falls on one of the 358 days from 7 to 364 days before ``as_of`` (so T is
    whole days / 7, 1 to 52 weeks); repeat purchases follow BG/NBD with the CDNOW estimates
    in continuous time and land on whole days, purchases on one day count once (recency is
    whole days / 7); the mean spend of the repeat purchases follows Gamma-Gamma.
    """
    path = directory / f"fit_{n}.parquet"
    if path.exists():
        return path
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    r, alpha, a, b = BGNBD.values()
    t_days = rng.integers(7, DAYS, n)
    lam = rng.gamma(r, 1.0 / alpha, n)  # purchases per week while alive
    limit = rng.geometric(rng.beta(a, b, n))  # repeat purchases made before leaving
    events = rng.poisson(lam * t_days / 7.0)
    customer = np.repeat(np.arange(n), events)
    moment = rng.random(len(customer)) * t_days[customer]  # days after the first purchase
    order = np.lexsort((moment, customer))
    moment = moment[order]
    first = np.r_[0, np.cumsum(events)[:-1]]
    alive = np.arange(len(customer)) - first[customer] < limit[customer]
    customer, day = customer[alive], np.maximum(np.ceil(moment[alive]), 1.0)
    fresh = np.r_[True, (customer[1:] != customer[:-1]) | (day[1:] != day[:-1])]
    frequency = np.bincount(customer[fresh], minlength=n).astype(np.float64)
    last_day = np.zeros(n)
    np.maximum.at(last_day, customer, day)
    p, q, gamma = GAMMA_GAMMA.values()
    nu = rng.gamma(q, 1.0 / gamma, n)
    x = np.maximum(frequency, 1.0)
    spend = np.where(frequency > 0, rng.gamma(p * x, 1.0 / (x * nu)), 0.0)
    table = pa.table(
        {
            "frequency": frequency,
            "recency": last_day / 7.0,
            "T": t_days / 7.0,
            "monetary_value": spend,
        }
    )
    pq.write_table(table, path)
    return path


def _load(path: Path) -> dict:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return {name: table[name].to_numpy() for name in table.column_names}


# --------------------------------------------------------------------------- contenders
#
# Each contender runs in a fresh interpreter (``--worker``): the libraries are imported and
# the data are read into the form each library's users hold them in (numpy arrays for
# patron, pandas Series for lifetimes, a DataFrame for PyMC-Marketing) before the clock
# starts; the clock stops when the parameters (or the scores) are in memory.  The peak is
# the process's high-water resident set (VmHWM), imports and data included; "added" is how
# far the timed call raised it above the resident set at the start of the clock.  (Not
# ru_maxrss: Linux carries it across fork + exec, so a worker would inherit the driver's.)


def _memory(field: str) -> int:
    """VmHWM or VmRSS of this process in bytes (ru_maxrss where /proc is missing)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _repeat(data: dict) -> dict:
    keep = data["frequency"] > 0
    return {k: v[keep] for k, v in data.items()}


def _patron_imports() -> None:
    # patron imports pyarrow.compute (to compress more than 200k rows by hash) and
    # threadpoolctl on first use; import them before the clock, as every other library's
    # imports are.
    import pyarrow.compute  # noqa: F401
    import threadpoolctl  # noqa: F401


def _patron_bgnbd(data):
    from patron.models import BetaGeo

    _patron_imports()

    def run():
        model = BetaGeo().fit(data["frequency"], data["recency"], data["T"])
        return {"params": model.params_}

    return run


def _patron_pnbd(data):
    from patron.models import ParetoNBD

    _patron_imports()

    def run():
        model = ParetoNBD().fit(data["frequency"], data["recency"], data["T"])
        return {"params": model.params_}

    return run


def _patron_gg(data):
    from patron.models import GammaGamma

    _patron_imports()

    repeat = _repeat(data)

    def run():
        model = GammaGamma().fit(repeat["frequency"], repeat["monetary_value"])
        return {"params": model.params_}

    return run


def _patron_score(data):
    from patron.models import BetaGeo, GammaGamma

    bgnbd, spend = BetaGeo(), GammaGamma()
    bgnbd.params_, spend.params_ = dict(BGNBD), dict(GAMMA_GAMMA)
    f, r, T, m = data["frequency"], data["recency"], data["T"], data["monetary_value"]

    def run():
        return {
            "scores": {
                "p_alive": bgnbd.probability_alive(f, r, T),
                "purchases": bgnbd.conditional_expected_purchases(HORIZON, f, r, T),
                "spend": spend.conditional_expected_spend(f, m),
            }
        }

    return run


def _series(data):
    import pandas as pd

    return {k: pd.Series(v) for k, v in data.items()}


def _lifetimes_bgnbd(data):
    from lifetimes import BetaGeoFitter

    s = _series(data)

    def run():
        model = BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])
        return {"params": dict(model.params_)}

    return run


def _lifetimes_pnbd(data):
    from lifetimes import ParetoNBDFitter

    s = _series(data)

    def run():
        model = ParetoNBDFitter().fit(s["frequency"], s["recency"], s["T"])
        return {"params": dict(model.params_)}

    return run


def _lifetimes_gg(data):
    from lifetimes import GammaGammaFitter

    s = _series(_repeat(data))

    def run():
        model = GammaGammaFitter().fit(s["frequency"], s["monetary_value"])
        params = dict(model.params_)
        return {"params": {"p": params["p"], "q": params["q"], "gamma": params["v"]}}

    return run


def _lifetimes_score(data):
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    bgnbd, spend = BetaGeoFitter(), GammaGammaFitter()
    bgnbd.params_ = pd.Series(BGNBD)
    p, q, gamma = GAMMA_GAMMA.values()
    spend.params_ = pd.Series({"p": p, "q": q, "v": gamma})
    s = _series(data)
    f, r, T, m = s["frequency"], s["recency"], s["T"], s["monetary_value"]

    def run():
        return {
            "scores": {
                "p_alive": bgnbd.conditional_probability_alive(f, r, T),
                "purchases": bgnbd.conditional_expected_number_of_purchases_up_to_time(
                    HORIZON, f, r, T
                ),
                "spend": spend.conditional_expected_average_profit(f, m),
            }
        }

    return run


def _pymc_bgnbd(data):
    import numpy as np
    import pandas as pd
    from pymc_marketing.clv import BetaGeoModel

    try:
        from pymc_extras.prior import Prior
    except ImportError:  # older PyMC-Marketing
        from pymc_marketing.prior import Prior

    frame = pd.DataFrame(
        {
            "customer_id": np.arange(len(data["frequency"])),
            "frequency": data["frequency"],
            "recency": data["recency"],
            "T": data["T"],
        }
    )
    # Flat priors: the MAP is then the maximum-likelihood estimate the others compute.
    config = {name: Prior("HalfFlat") for name in BGNBD}

    def run():
        model = BetaGeoModel(data=frame, model_config=config)
        model.fit(method="map", progressbar=False)
        summary = model.fit_summary()
        return {"params": {name: float(summary[name]) for name in BGNBD}}

    return run


# name: (task, library, builder, module that must be importable)
CONTENDERS = {
    "patron-bgnbd": ("BG/NBD fit", "patron", _patron_bgnbd, "patron"),
    "lifetimes-bgnbd": ("BG/NBD fit", "lifetimes", _lifetimes_bgnbd, "lifetimes"),
    "pymc-bgnbd": ("BG/NBD fit", "PyMC-Marketing MAP", _pymc_bgnbd, "pymc_marketing"),
    "patron-pnbd": ("Pareto/NBD fit", "patron", _patron_pnbd, "patron.models.pareto_nbd"),
    "lifetimes-pnbd": ("Pareto/NBD fit", "lifetimes", _lifetimes_pnbd, "lifetimes"),
    "patron-gg": ("Gamma-Gamma fit", "patron", _patron_gg, "patron"),
    "lifetimes-gg": ("Gamma-Gamma fit", "lifetimes", _lifetimes_gg, "lifetimes"),
    "patron-score": ("scoring", "patron", _patron_score, "patron"),
    "lifetimes-score": ("scoring", "lifetimes", _lifetimes_score, "lifetimes"),
}
TASKS = ("BG/NBD fit", "Pareto/NBD fit", "Gamma-Gamma fit", "scoring")


def worker(name: str, path: Path, out: Path) -> None:
    """Run one contender once; print its time and peak memory, save its answer to ``out``."""
    import warnings

    import numpy as np

    warnings.simplefilter("ignore")
    run = CONTENDERS[name][2](_load(path))
    before = _memory("VmRSS")
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    peak = _memory("VmHWM")
    if "scores" in result:
        np.savez(out, **{k: np.asarray(v, dtype=float) for k, v in result["scores"].items()})
        answer = {}
    else:
        answer = {"params": {k: float(v) for k, v in result["params"].items()}}
    print(
        json.dumps({"seconds": seconds, "peak_bytes": peak, "added_bytes": peak - before} | answer)
    )


# --------------------------------------------------------------------------- driver


BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _spawn(name: str, path: Path, blas_threads: int | None) -> dict:
    out = OUTPUT / f"scores_{name}_{path.stem}.npz"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name]
    cmd += ["--input", str(path), "--result", str(out)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    if blas_threads:
        env |= {variable: str(blas_threads) for variable in BLAS_THREADS}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": f"failed: {last}"}
    return json.loads(done.stdout.strip().splitlines()[-1]) | {"out": out}


def _measure(
    names: list[str], path: Path, repeat: int, blas_threads: int | None
) -> dict[str, dict]:
    """Each contender ``repeat`` times, interleaved so that machine noise hits all alike."""
    runs: dict[str, list[dict]] = {n: [] for n in names}
    for _ in range(repeat):
        for name in names:
            if runs[name] and "error" in runs[name][-1]:
                continue
            runs[name].append(_spawn(name, path, blas_threads))
    results = {}
    for name, rs in runs.items():
        if "error" in rs[-1]:
            results[name] = {"note": rs[-1]["error"]}
            continue
        results[name] = {
            "seconds": statistics.median(r["seconds"] for r in rs),
            "best": min(r["seconds"] for r in rs),
            "peak_bytes": max(r["peak_bytes"] for r in rs),
            "added_bytes": max(r["added_bytes"] for r in rs),
            "params": rs[-1].get("params"),
            "out": rs[-1]["out"],
        }
    return results


def _largest_difference(peer: dict, ours: dict) -> float:
    """Largest relative difference of the parameters, or of the scores for scoring."""
    import numpy as np

    if ours.get("params") is not None:
        return max(abs(peer["params"][k] - v) / abs(v) for k, v in ours["params"].items())
    with np.load(ours["out"]) as a, np.load(peer["out"]) as b:
        worst = 0.0
        for key in a.files:
            x, y = a[key], b[key]
            worst = max(worst, float(np.max(np.abs(y - x) / np.maximum(np.abs(x), 1e-300))))
        return worst


def _skip_note(name: str, n: int, args) -> str | None:
    module = CONTENDERS[name][3]
    if importlib.util.find_spec(module) is None:
        if module == "pymc_marketing":
            return "skipped: pymc-marketing is not installed (pip install -e '.[bench-pymc]')"
        if module == "patron.models.pareto_nbd":
            return "skipped: patron.models.ParetoNBD is not there yet"
        return f"skipped: {module} is not installed (pip install -e '.[bench]')"
    if name == "lifetimes-pnbd" and n > args.lifetimes_pnbd_max:
        return f"skipped: above --lifetimes-pnbd-max {args.lifetimes_pnbd_max:,} (very slow)"
    if name == "pymc-bgnbd" and n > args.pymc_max:
        return f"skipped: above --pymc-max {args.pymc_max:,}"
    return None


def _gb(n: float) -> str:
    return f"{n / 2**30:.2f} GB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender (median)")
    parser.add_argument("--out", type=Path, default=OUTPUT / "fit.csv", help="CSV of results")
    parser.add_argument(
        "--tasks",
        nargs="+",
        choices=TASKS,
        default=list(TASKS),
        metavar="TASK",
        help=f"which rows to run, of: {', '.join(TASKS)}",
    )
    parser.add_argument("--lifetimes-pnbd-max", type=int, default=100_000)
    parser.add_argument("--pymc-max", type=int, default=1_000_000)
    parser.add_argument(
        "--blas-threads",
        type=int,
        help="set OPENBLAS/OMP/MKL_NUM_THREADS for every worker (default: the libraries')",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.input, args.result)
        return 0

    import numpy as np

    import patron

    versions = [f"patron {patron.__version__}", f"numpy {np.__version__}"]
    for module in ("lifetimes", "pymc_marketing"):
        if importlib.util.find_spec(module) is not None:
            versions.append(f"{module} {__import__(module).__version__}")
    print(
        f"{', '.join(versions)}; {os.cpu_count()} cores, python {sys.version.split()[0]}; "
        f"median of {args.repeat}; BLAS threads: {args.blas_threads or 'default'}"
    )
    rows, lines = [], []
    for n in args.customers:
        path = generate(n, OUTPUT)
        repeaters = int(np.count_nonzero(_load(path)["frequency"] > 0))
        print(f"\n{n:,} customers ({repeaters:,} with repeat purchases)")
        print(
            f"  {'task':<16} {'library':<20} {'time':>9} {'peak':>8} {'added':>8} "
            f"{'peer/patron':>11} {'max rel. diff':>13}"
        )
        for task in args.tasks:
            names = [k for k, v in CONTENDERS.items() if v[0] == task]
            notes = {name: _skip_note(name, n, args) for name in names}
            run = [name for name in names if notes[name] is None]
            results = _measure(run, path, args.repeat, args.blas_threads) | {
                name: {"note": note} for name, note in notes.items() if note
            }
            ours = results[names[0]]
            for name in names:
                r = results[name]
                library = CONTENDERS[name][1]
                row = {"customers": n, "task": task, "library": library}
                if "note" in r:
                    print(f"  {task:<16} {library:<20} {r['note']}")
                    rows.append(row | {"note": r["note"]})
                    lines.append(f"| {n:,} | {task} | {library} | {r['note']} | | | |")
                    continue
                ratio = diff = None
                if name != names[0] and "note" not in ours:
                    ratio = r["seconds"] / ours["seconds"]
                    diff = _largest_difference(r, ours)
                shown_ratio = f"{ratio:.1f}x" if ratio is not None else ""
                shown_diff = f"{diff:.1e}" if diff is not None else ""
                print(
                    f"  {task:<16} {library:<20} {r['seconds']:7.2f} s {_gb(r['peak_bytes']):>8} "
                    f"{_gb(r['added_bytes']):>8} {shown_ratio:>11} {shown_diff:>13}"
                )
                rows.append(
                    row
                    | {
                        "seconds": round(r["seconds"], 4),
                        "best": round(r["best"], 4),
                        "peak_bytes": r["peak_bytes"],
                        "added_bytes": r["added_bytes"],
                        "ratio_to_patron": "" if ratio is None else round(ratio, 2),
                        "max_rel_diff": "" if diff is None else f"{diff:.3e}",
                        "params": json.dumps(r["params"]) if r.get("params") else "",
                    }
                )
                lines.append(
                    f"| {n:,} | {task} | {library} | {r['seconds']:.2f} s | "
                    f"{_gb(r['peak_bytes'])} | {shown_ratio} | {shown_diff} |"
                )
    print(
        "\n| customers | task | library | time | peak memory | peer/patron | max rel. difference |"
    )
    print("|---|---|---|---|---|---|---|")
    print("\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fields = ["customers", "task", "library", "seconds", "best", "peak_bytes", "added_bytes"]
    fields += ["ratio_to_patron", "max_rel_diff", "params", "note"]
    with args.out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
