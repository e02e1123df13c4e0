"""patron analyze / backtest / demo as a user runs them: a real process and real files."""

import json

import pyarrow.parquet as pq
from test_cli import run  # the same runner: a real process, real files

import patron


def test_analyze_writes_the_customer_table_and_summary(tmp_path):
    export = patron.datasets.demo_shop(tmp_path / "orders.csv", customers=400, seed=5)
    out = tmp_path / "out"
    result = run("analyze", export, "--out", out, "--excel", "--model", "mbgnbd")
    assert result.returncode == 0, result.stderr
    assert "Predicted customer equity" in result.stdout and "Gold" in result.stdout
    customers = pq.read_table(out / "customers.parquet")
    assert customers.num_rows > 350
    assert (out / "customers.xlsx").exists() and (out / "rejected.csv").exists()
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert summary["purchase_model"]["class"] == "ModifiedBetaGeo"
    assert summary["ingest"]["rejected"] > 0


def test_analyze_in_chinese_with_a_config(tmp_path):
    export = patron.datasets.demo_shop(tmp_path / "orders.csv", customers=300, seed=6)
    config = tmp_path / "patron.toml"
    config.write_text(
        '[grades]\nnames = ["钻石", "黄金", "白银", "普通"]\ncutoffs = [0.05, 0.15, 0.35]\n',
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = run("analyze", export, "--out", out, "--config", config, "--model", "bgnbd", lang="zh")
    assert result.returncode == 0, result.stderr
    assert "预测客户资产" in result.stdout and "钻石" in result.stdout
    grades = set(pq.read_table(out / "customers.parquet")["grade"].to_pylist())
    assert grades == {"钻石", "黄金", "白银", "普通"}


def test_unreadable_input_exits_2_with_one_paragraph(tmp_path):
    bad = tmp_path / "orders.csv"
    bad.write_text("name,colour\nx,red\n", encoding="utf-8")
    result = run("analyze", bad, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "Error" in result.stderr


def test_a_bad_setting_exits_2_naming_the_key(tmp_path):
    export = patron.datasets.demo_shop(tmp_path / "orders.csv", customers=100, seed=6)
    config = tmp_path / "patron.toml"
    config.write_text("[grades]\ncutofs = [0.1]\n", encoding="utf-8")
    result = run("analyze", export, "--out", tmp_path / "out", "--config", config)
    assert result.returncode == 2
    assert "grades.cutofs" in result.stderr


def test_demo_analyses_the_demo_shop(tmp_path):
    result = run("demo", "--out", tmp_path / "demo", "--customers", "300", "--no-serve")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "demo" / "customers.csv").exists()
    assert (tmp_path / "demo" / "summary.json").exists()


def test_lang_after_the_command_sets_the_report_language(tmp_path):
    export = patron.datasets.demo_shop(tmp_path / "orders.csv", customers=200, seed=8)
    out = tmp_path / "out"
    result = run("analyze", export, "--out", out, "--lang", "zh", "--model", "bgnbd")
    assert result.returncode == 0, result.stderr
    assert "客户数" in result.stdout
    assert '<html lang="zh-CN"' in (out / "report.html").read_text("utf-8")


def test_backtest_prints_the_comparison_and_writes_json(tmp_path):
    export = patron.datasets.demo_shop(tmp_path / "orders.csv", customers=600, seed=9)
    out = tmp_path / "backtest.json"
    result = run(
        "backtest",
        export,
        "--holdout",
        "26W",
        "--model",
        "bgnbd",
        "--model",
        "mbgnbd",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr
    assert "BG/NBD" in result.stdout and "MBG/NBD" in result.stdout
    assert "Naive" in result.stdout
    data = json.loads(out.read_text("utf-8"))
    assert set(data["metrics"]) == {"bgnbd", "mbgnbd", "naive"}
    assert data["chosen"] in ("bgnbd", "mbgnbd")


def test_backtest_rejects_an_unknown_model(tmp_path):
    export = patron.datasets.demo_shop(tmp_path / "orders.csv", customers=100, seed=9)
    result = run("backtest", export, "--model", "xgboost")
    assert result.returncode == 2
    assert "bgnbd" in result.stderr
