"""Load from wrk (a C HTTP benchmarking tool, Debian package ``wrk``) for the API benchmarks.

The clients must not eat the cores they measure: a Python client costs 1-2 ms of CPU per
request, as much as the server, and on a 2-core machine it shares with the server and
PostgreSQL that alone doubles the latency it reports. wrk costs ~0.02 ms per request.
Each call runs ``wrk`` with ``--connections`` keep-alive connections (each a closed-loop
client: the next request leaves when the answer is read) and a Lua script from
``bench/wrk/`` that prints one JSON line when done.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "wrk"

__all__ = ["available", "run"]


def available() -> bool:
    """Whether ``wrk`` is installed (``apt-get install wrk``)."""
    return shutil.which("wrk") is not None


def run(
    base_url: str,
    script: str,
    args: list[str],
    *,
    connections: int,
    seconds: float,
    threads: int = 2,
) -> dict:
    """wrk's summary (latencies in ms), with ``client_cpu`` seconds it used.

    ``script`` names a file in ``bench/wrk/``; ``args`` follow ``--`` on wrk's command
    line (the script's ``init`` gets them).
    """
    command = [
        "wrk",
        f"--threads={min(threads, connections)}",
        f"--connections={connections}",
        f"--duration={max(int(round(seconds)), 1)}s",
        "--timeout=30s",
        f"--script={SCRIPTS / script}",
        base_url,
        "--",
        *map(str, args),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _pid, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    out, err = process.stdout.read(), process.stderr.read()
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}): {err or out}")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"wrk printed no summary:\n{out}\n{err}")
    result = json.loads(lines[-1])
    for key in ("p50", "p95", "p99", "max", "mean"):
        result[key] = result[key] / 1000  # microseconds -> ms
    result["per_second"] = result["requests"] / result["seconds"]
    result["client_cpu"] = usage.ru_utime + usage.ru_stime
    return result
