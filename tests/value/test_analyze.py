"""patron.analyze end to end: CDNOW, the messy Chinese demo export, and hard data."""

from __future__ import annotations

import datetime as dt
import json
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import patron
from patron.errors import InputError
from patron.models import BetaGeo
from patron.value.analyze import CUSTOMER_COLUMNS


@pytest.fixture(scope="module")
def cdnow():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return patron.analyze(patron.datasets.cdnow(sample=True), as_of="1997-09-30", model="bgnbd")


def test_one_row_per_customer_with_the_documented_columns(cdnow):
    table = cdnow.customers
    assert table.num_rows == 2357
    assert tuple(table.column_names[: len(CUSTOMER_COLUMNS)]) == CUSTOMER_COLUMNS
    assert len(set(table["customer_id"].to_pylist())) == 2357


def test_scores_are_the_fitted_models(cdnow, cdnow_summary):
    model = BetaGeo().fit_summary(cdnow_summary)
    assert cdnow.purchase_model.params_ == pytest.approx(model.params_)
    row = cdnow.customers.filter(pa.compute.equal(cdnow.customers["customer_id"], "0001"))
    assert row["p_alive"][0].as_py() == pytest.approx(
        model.probability_alive(2, 30.43, 38.86), 1e-3
    )
    clv = cdnow.customers["predicted_clv"].to_numpy()
    low = cdnow.customers["clv_low"].to_numpy()
    high = cdnow.customers["clv_high"].to_numpy()
    assert np.all(clv > 0) and np.all(low <= clv + 1e-9) and np.all(clv <= high + 1e-9)
    assert cdnow.kpis["customer_equity"] == pytest.approx(clv.sum())


def test_grades_stages_and_actions_are_filled(cdnow):
    c = cdnow.customers
    grades = c["grade"].to_pylist()
    assert grades.count("gold") == int(2357 * 0.10)  # at most the top 10%
    assert grades.count("silver") == int(2357 * 0.30) - int(2357 * 0.10)
    stages = set(c["lifecycle_stage"].to_pylist())
    assert stages <= {"new", "growing", "mature", "at_risk", "churned", "reactivated"}
    assert {"churned", "mature"} <= stages
    assert set(c["churn_risk"].to_pylist()) <= {"low", "medium", "high"}
    assert "" not in c["next_best_action"].to_pylist()
    for name in ("rfm_r", "rfm_f", "rfm_m"):
        assert set(c[name].to_pylist()) <= {1, 2, 3, 4, 5}
    gold = c.filter(pa.compute.equal(c["grade"], "gold"))
    regular = c.filter(pa.compute.equal(c["grade"], "regular"))
    assert np.mean(gold["predicted_clv"]) > 5 * np.mean(regular["predicted_clv"])


def test_one_time_buyers_of_long_ago_are_churned_even_under_bg_nbd(cdnow):
    c = cdnow.customers
    one_timers = np.asarray(c["frequency"]) == 0
    old = one_timers & (np.asarray(c["T"]) > 30)
    assert np.all(np.asarray(c["p_alive"])[old] == 1.0)  # BG/NBD's known failing ...
    assert set(np.asarray(c["lifecycle_stage"], dtype=object)[old]) == {"churned"}  # ... fixed


def test_forecast_has_twelve_months_with_a_band(cdnow):
    assert len(cdnow.forecast) == 12
    for month in cdnow.forecast:
        assert month["purchases_low"] <= month["purchases"] <= month["purchases_high"]
    first = dt.date.fromisoformat(cdnow.forecast[1]["start"])
    assert (first - dt.date(1997, 9, 30)).days in (30, 31)


def test_write_produces_every_file(cdnow, tmp_path):
    paths = cdnow.write(tmp_path, excel=True)
    for name in (
        "customers.csv",
        "customers.parquet",
        "customers.xlsx",
        "summary.json",
        "rejected.csv",
    ):
        assert (tmp_path / name).exists(), name
    summary = json.loads((tmp_path / "summary.json").read_text("utf-8"))
    assert summary["purchase_model"]["class"] == "BetaGeo"
    assert set(summary["purchase_model"]["standard_errors"]) == {"r", "alpha", "a", "b"}
    assert summary["spend_model"]["class"] == "GammaGamma"
    assert summary["kpis"]["customers"] == 2357
    assert summary["ingest"]["customers"] == 2357
    assert paths["customers_csv"].read_bytes().startswith(b"\xef\xbb\xbf")


def test_nobody_bought_twice_still_gives_grades_and_says_why(tmp_path):
    days = [dt.datetime(2024, 1, 1) + dt.timedelta(days=i) for i in range(30)]
    table = pa.table(
        {
            "customer_id": [f"c{i}" for i in range(30)],
            "ts": days,
            "amount": [10.0 + i for i in range(30)],
        }
    )
    analysis = patron.analyze(table)
    assert analysis.purchase_model is None
    assert any("No customer bought more than once" in note for note in analysis.notes)
    c = analysis.customers
    assert np.all(np.isnan(np.asarray(c["p_alive"])))
    assert set(c["grade"].to_pylist()) == {"gold", "silver", "regular"}
    top = c.sort_by([("total_spend", "descending")])["grade"][0].as_py()
    assert top == "gold"
    analysis.write(tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text("utf-8"))
    assert summary["purchase_model"] is None and summary["notes"]


def test_fully_returned_repeat_spend_is_valued_not_dropped():
    rows = []
    for i in range(40):
        start = dt.datetime(2024, 1, 1) + dt.timedelta(days=i)
        for k in range(1 + i % 4):
            rows.append((f"c{i}", start + dt.timedelta(days=20 * k), 50.0 + i))
    # c0..c2 return more than their repeat purchases were worth
    for i in (1, 2, 3):
        rows.append((f"c{i}", dt.datetime(2024, 6, 1), -500.0))
    table = pa.table(
        dict(zip(("customer_id", "ts", "amount"), zip(*rows, strict=False), strict=True))
    )
    analysis = patron.analyze(table, as_of="2024-07-01", model="mbgnbd")
    assert analysis.customers.num_rows == 40
    assert analysis.counts["spend_not_positive"] == 3
    spend = np.asarray(analysis.customers["expected_spend"])
    assert np.all(np.isfinite(spend)) and np.all(spend >= 0)


def test_messy_chinese_xlsx_needs_no_column_options(tmp_path):
    path = patron.datasets.demo_shop(tmp_path / "订单.xlsx", customers=300, fmt="xlsx", seed=3)
    analysis = patron.analyze(path)
    assert analysis.customers.num_rows > 250
    assert analysis.transactions.report.rejected > 0
    assert analysis.purchase_model is not None


def test_unknown_model_is_an_input_error():
    with pytest.raises(InputError, match="auto, bgnbd, pnbd, mbgnbd"):
        patron.analyze(patron.datasets.cdnow(sample=True), model="xgboost")


def test_last_gap_is_the_time_between_the_last_two_purchase_days():
    from patron.value.analyze import _last_gaps

    day = dt.datetime(2024, 1, 1)
    rows = [
        ("a", day, 10.0),
        ("a", day + dt.timedelta(days=10), 10.0),
        ("a", day + dt.timedelta(days=40), 5.0),
        ("a", day + dt.timedelta(days=40, hours=3), 5.0),  # same day: one purchase day
        ("a", day + dt.timedelta(days=45), -5.0),  # a return is no purchase
        ("b", day, 10.0),
    ]
    table = pa.table(
        dict(zip(("customer_id", "ts", "amount"), zip(*rows, strict=False), strict=True))
    )
    summary = patron.summarize(table, as_of="2024-03-01")
    gaps = dict(zip(summary["customer_id"].to_pylist(), _last_gaps(summary), strict=True))
    assert gaps == {"a": pytest.approx(30 / 7), "b": 0.0}


def test_clean_parquet_report_counts_every_customer(tmp_path):
    # Customer "c" only returned goods: no summary row, still a customer of the file.
    day = dt.datetime(2024, 1, 1)
    rows = [("a", day, 10.0), ("a", day + dt.timedelta(days=9), 4.0), ("b", day, 3.0)]
    rows += [("b", day + dt.timedelta(days=20), 6.0), ("c", day, -2.0)]
    path = tmp_path / "tx.parquet"
    pq.write_table(
        pa.table(dict(zip(("customer_id", "ts", "amount"), zip(*rows, strict=True), strict=True))),
        path,
    )
    assert patron.analyze(path).transactions.report.customers == 3
    assert patron.analyze(path, as_of="2024-01-05").transactions.report.customers == 3


def test_near_homogeneous_dropout_still_values_everyone(tmp_path):
    # This small shop fits MBG/NBD with a ~ 2e6 and b ~ 1e7 (dropout all but equal for
    # everyone), where Euler's form of 2F1 overflows: values must not come out NaN.
    path = patron.datasets.demo_shop(tmp_path / "shop.csv", customers=80, seed=11)
    analysis = patron.analyze(path, model="mbgnbd")
    assert analysis.purchase_model.params_["a"] > 1e5  # the case this test is about
    clv = analysis.customers["predicted_clv"].to_numpy()
    assert np.isfinite(clv).all() and (clv > 0).any()
    assert analysis.kpis["customer_equity"] > 0
