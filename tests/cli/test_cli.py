"""The patron command, run as a user runs it: a real process, real files, exit codes."""

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

DATA = Path(__file__).parents[1] / "data"


def run(*args, lang="en"):
    env = {**os.environ, "PATRON_LANG": lang, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "patron.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_ingest_writes_transactions_and_rejects(tmp_path):
    result = run("ingest", DATA / "messy_orders.csv", "--as-of", "2024-03-31", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Rows read" in result.stdout and "22" in result.stdout
    assert pq.read_table(tmp_path / "transactions.parquet").num_rows == 11
    raw = (tmp_path / "rejected.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel shows 中文 right
    rejected = pacsv.read_csv(tmp_path / "rejected.csv")
    assert rejected.num_rows == 10
    assert "2025年2月30日" in rejected["value"].to_pylist()


def test_ingest_report_in_chinese(tmp_path):
    result = run("ingest", DATA / "messy_orders.csv", "--out", tmp_path, lang="zh")
    assert result.returncode == 0, result.stderr
    assert "读取行数" in result.stdout and "日历中不存在该日期" in result.stdout


def test_strict_failure_is_one_paragraph_and_exit_2(tmp_path):
    result = run("ingest", DATA / "messy_orders.csv", "--strict", "--out", tmp_path)
    assert result.returncode == 2
    assert "line 13" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "transactions.parquet").exists()


def test_unreadable_file_exit_2(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x00\x01binary")
    result = run("ingest", bad, "--out", tmp_path)
    assert result.returncode == 2
    assert "bad.csv" in result.stderr and "Traceback" not in result.stderr


def test_summarize_writes_the_summary(tmp_path):
    out = tmp_path / "summary.csv"
    result = run("summarize", DATA / "messy_orders.csv", "--as-of", "2024-03-31", "--out", out)
    assert result.returncode == 0, result.stderr
    table = pacsv.read_csv(out)
    assert table.num_rows == 5  # C004 only returned goods: no purchase, no T
    assert "5 customers" in result.stdout and "2024-03-31" in result.stdout
    assert {"frequency", "recency", "T", "monetary_value"} <= set(table.column_names)


def test_help_is_translated():
    assert "每位客户" in run("--help", lang="zh").stdout
    assert "what each customer is worth" in run("--help").stdout
