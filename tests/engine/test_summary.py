"""patron.summarize: the per-customer summary, on every backend, against lifetimes.

The oracle is lifetimes 0.11.3 on the CDNOW sample of the BG/NBD paper, frozen in
tests/data/cdnow_lifetimes_*.csv (provenance on the first line of each file) because
lifetimes is a benchmark dependency, not a test one; ``test_frozen_oracle_is_what_lifetimes
_gives`` recomputes it wherever lifetimes is installed.  Every test body that takes
``backend`` runs on DuckDB, SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import patron
from patron.engine import HOLDOUT_COLUMNS, SUMMARY_COLUMNS, sources
from patron.errors import InputError

DATA = Path(__file__).parents[1] / "data"
CAL_END, OBS_END = "1997-09-30", "1998-06-30"


# --------------------------------------------------------------------------- helpers


def tx(rows, *, date_type=False):
    """An Arrow transactions table from (customer, 'YYYY-MM-DD[ HH:MM]', amount) rows."""
    stamps = [dt.datetime.fromisoformat(r[1]) for r in rows]
    ts = (
        pa.array([s.date() for s in stamps], pa.date32())
        if date_type
        else pa.array(stamps, pa.timestamp("us"))
    )
    return pa.table(
        {
            "customer_id": pa.array([r[0] for r in rows], pa.string()),
            "ts": ts,
            "amount": pa.array([float(r[2]) for r in rows], pa.float64()),
        }
    )


def by_customer(table):
    return {row["customer_id"]: row for row in table.to_pylist()}


def meta(table, key):
    return table.schema.metadata[f"patron.{key}".encode()].decode()


def read_frozen(name):
    table = pacsv.read_csv(
        DATA / name,
        read_options=pacsv.ReadOptions(skip_rows=1),
        convert_options=pacsv.ConvertOptions(column_types={"customer_id": pa.string()}),
    )
    return by_customer(table)


def assert_close(a, b, *, rel=1e-12, what=""):
    assert math.isclose(a, b, rel_tol=rel, abs_tol=1e-9), (what, a, b)


def assert_same(got, want, *, metadata=True):
    """Equal tables; floats to 1e-12, as engines sum in parallel, in no fixed order."""
    assert got.schema == want.schema
    if metadata:
        assert got.schema.metadata == want.schema.metadata
    for name in got.column_names:
        a, b = got.column(name).to_pylist(), want.column(name).to_pylist()
        if pa.types.is_floating(got.schema.field(name).type):
            assert len(a) == len(b)
            for x, y in zip(a, b, strict=True):
                assert_close(x, y, what=name)
        else:
            assert a == b, name


@pytest.fixture(scope="module")
def cdnow():
    """The CDNOW sample as patron reads it: customer_id is the paper's sample id."""
    return patron.datasets.cdnow(sample=True).to_arrow().select(["customer_id", "ts", "amount"])


# --------------------------------------------------------------------------- CDNOW oracle


def test_cdnow_summary_equals_lifetimes(backend, cdnow):
    s = patron.summarize(backend(cdnow), period="D", time_unit="W", as_of="1997-09-30")
    assert s.column_names == list(SUMMARY_COLUMNS)
    assert s.num_rows == 2357
    got = by_customer(s)
    first = got["0001"]
    assert (first["frequency"], round(first["recency"], 2), round(first["T"], 2)) == (
        2,
        30.43,
        38.86,
    )
    oracle = read_frozen("cdnow_lifetimes_summary.csv")
    assert list(got) == sorted(oracle)
    for cid, want in oracle.items():
        row = got[cid]
        assert row["frequency"] == want["frequency"], cid
        for col in ("recency", "T", "monetary_value"):
            assert_close(row[col], want[col], what=(cid, col))
    assert sum(r["frequency"] for r in got.values()) == 2457

    # Totals against the raw rows up to as_of (CDNOW has no returns).
    cut = dt.datetime(1997, 10, 1)
    kept = [r for r in cdnow.to_pylist() if r["ts"] < cut]
    assert sum(r["orders"] for r in got.values()) == len(kept)
    assert_close(
        sum(r["total_spend"] for r in got.values()), sum(r["amount"] for r in kept), rel=1e-9
    )
    assert sum(r["returns"] for r in got.values()) == 0
    assert first["first_purchase"] == dt.date(1997, 1, 1)
    assert first["last_purchase"] == dt.date(1997, 8, 2)
    assert meta(s, "as_of") == "1997-09-30"
    assert meta(s, "customers_without_purchase") == "0"


def test_cdnow_holdout_equals_lifetimes(backend, cdnow):
    s = patron.summarize(backend(cdnow), as_of=OBS_END, calibration_end=CAL_END)
    assert s.column_names == list(SUMMARY_COLUMNS + HOLDOUT_COLUMNS)
    assert s.num_rows == 2357
    got = by_customer(s)
    oracle = read_frozen("cdnow_lifetimes_holdout.csv")
    for cid, want in oracle.items():
        row = got[cid]
        assert row["frequency"] == want["frequency_cal"], cid
        assert row["frequency_holdout"] == want["frequency_holdout"], cid
        for col, other in (
            ("recency", "recency_cal"),
            ("T", "T_cal"),
            ("monetary_value", "monetary_value_cal"),
            ("monetary_value_holdout", "monetary_value_holdout"),
            ("duration_holdout", "duration_holdout"),
        ):
            assert_close(row[col], want[other], what=(cid, col))
    assert sum(r["frequency_holdout"] for r in got.values()) == 1882
    assert got["0001"]["duration_holdout"] == 39.0
    assert meta(s, "calibration_end") == CAL_END
    assert meta(s, "customers_first_seen_in_holdout") == "0"


def test_every_backend_gives_the_same_table(backend, cdnow):
    reference = patron.summarize(cdnow, as_of=OBS_END, calibration_end=CAL_END, period="W")
    s = patron.summarize(backend(cdnow), as_of=OBS_END, calibration_end=CAL_END, period="W")
    assert_same(s, reference)


def test_frozen_oracle_is_what_lifetimes_gives():
    """Recompute the frozen files with lifetimes, from the raw CDNOW text, not patron's reader."""
    pytest.importorskip("lifetimes")
    pd = pytest.importorskip("pandas")
    import warnings

    from lifetimes.utils import (
        calibration_and_holdout_data,
        summary_data_from_transaction_data,
    )

    df = pd.read_csv(
        patron.datasets.cdnow_path(sample=True),
        sep=r"\s+",
        header=None,
        names=["master_id", "customer_id", "date", "cds", "amount"],
        dtype={"master_id": str, "customer_id": str, "date": str},
    )
    df["ts"] = pd.to_datetime(df["date"], format="%Y%m%d")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = summary_data_from_transaction_data(
            df,
            "customer_id",
            "ts",
            "amount",
            observation_period_end=CAL_END,
            freq="D",
            freq_multiplier=7,
        )
        common = dict(
            calibration_period_end=CAL_END,
            observation_period_end=OBS_END,
            freq="D",
            freq_multiplier=7,
            monetary_value_col="amount",
        )
        holdout = calibration_and_holdout_data(df, "customer_id", "ts", **common)
        per_day = df.groupby(["customer_id", "ts"], as_index=False)["amount"].sum()
        holdout_days = calibration_and_holdout_data(per_day, "customer_id", "ts", **common)
    holdout["monetary_value_holdout"] = holdout_days["monetary_value_holdout"]
    files = {"cdnow_lifetimes_summary.csv": summary, "cdnow_lifetimes_holdout.csv": holdout}
    for name, frame in files.items():
        frozen = read_frozen(name)
        assert sorted(frame.index) == sorted(frozen)
        for cid, row in frame.iterrows():
            for col, value in row.items():
                assert frozen[cid][col] == float(value), (name, cid, col)


def test_weekly_periods_equal_lifetimes_weeks(cdnow):
    """Period W / unit W gives lifetimes' freq='W': Monday-start weeks, whole numbers."""
    pytest.importorskip("lifetimes")
    import warnings

    from lifetimes.utils import summary_data_from_transaction_data

    df = patron.datasets.cdnow(sample=True).to_pandas()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = summary_data_from_transaction_data(
            df, "customer_id", "ts", "amount", observation_period_end="1997-09-28", freq="W"
        )
    # 1997-09-28 is a Sunday: lifetimes keeps whole weeks, patron cuts at the day.
    got = by_customer(patron.summarize(cdnow, period="W", time_unit="W", as_of="1997-09-28"))
    assert len(got) == len(want)
    for cid, row in want.iterrows():
        assert got[cid]["frequency"] == row["frequency"]
        assert got[cid]["recency"] == row["recency"]
        assert got[cid]["T"] == row["T"]
        assert_close(got[cid]["monetary_value"], row["monetary_value"], what=cid)


# --------------------------------------------------------------------------- small tables


def test_several_purchases_in_one_period_count_once(backend):
    rows = [
        ("a", "2024-01-01 09:00", 10),
        ("a", "2024-01-01 18:00", 5),  # same day
        ("a", "2024-01-08", 20),
        ("a", "2024-01-08 12:00", 40),
        ("a", "2024-01-15", 30),
    ]
    s = by_customer(patron.summarize(backend(tx(rows)), time_unit="D"))["a"]
    assert s["frequency"] == 2
    assert s["orders"] == 5
    assert s["recency"] == 14.0
    assert s["T"] == 14.0
    # repeat periods: 60 (Jan 8) and 30 (Jan 15); the first day's 15 is left out
    assert s["monetary_value"] == 45.0
    assert s["total_spend"] == 105.0
    assert s["previous_purchase"] == dt.date(2024, 1, 8)
    weekly = patron.summarize(backend(tx(rows)), period="W", time_unit="D")
    # Weeks of Jan 1, 8 and 15: the last purchase day before the week of Jan 15.
    assert by_customer(weekly)["a"]["previous_purchase"] == dt.date(2024, 1, 8)
    one = patron.summarize(backend(tx(rows[:2])), time_unit="D")
    assert by_customer(one)["a"]["previous_purchase"] is None


def test_monetary_value_is_the_mean_of_repeat_periods_only(backend):
    rows = [
        ("a", "2024-03-01", 100),
        ("a", "2024-03-05", 10),
        ("a", "2024-03-09", 30),
        ("b", "2024-03-02", 70),
    ]
    s = by_customer(patron.summarize(backend(tx(rows)), as_of="2024-03-10"))
    assert s["a"]["monetary_value"] == 20.0
    assert s["b"]["monetary_value"] == 0.0
    assert s["b"]["frequency"] == 0 and s["b"]["recency"] == 0.0
    assert s["b"]["T"] == 8 / 7


def test_weekly_periods_start_on_monday(backend):
    rows = [
        ("a", "2024-01-07", 10),  # Sunday
        ("a", "2024-01-08", 10),  # Monday: a new week
        ("a", "2024-01-14", 10),  # Sunday: same week as Monday
        ("b", "2024-01-08", 10),
        ("b", "2024-01-14", 99),  # same week: one period for b
    ]
    s = by_customer(
        patron.summarize(backend(tx(rows)), period="W", time_unit="W", as_of="2024-01-31")
    )
    assert s["a"]["frequency"] == 1
    assert s["a"]["recency"] == 1.0
    assert s["a"]["T"] == 4.0  # week of Jan 1 -> week of Jan 29
    assert s["a"]["monetary_value"] == 20.0  # the week of Jan 8 holds two purchases
    assert s["b"]["frequency"] == 0
    assert s["b"]["T"] == 3.0
    assert s["b"]["orders"] == 2
    # Counted in weeks, reported in days: whole weeks of 7 days between Mondays.
    d = by_customer(
        patron.summarize(backend(tx(rows)), period="W", time_unit="D", as_of="2024-01-31")
    )
    assert (d["a"]["recency"], d["a"]["T"]) == (7.0, 28.0)


def test_monthly_periods_in_every_unit(backend):
    rows = [
        ("a", "2023-01-31", 10),
        ("a", "2023-02-01", 20),  # next month
        ("a", "2023-02-28", 5),  # same month
        ("a", "2024-01-15", 40),
    ]
    table = backend(tx(rows))
    month = 365.25 / 12
    want = {  # recency 12 months, T 13 months (Jan 2023 -> Feb 2024)
        "M": (12.0, 13.0),
        "Y": (1.0, 13 / 12),
        "D": (12 * month, 13 * month),
        "W": (12 * month / 7, 13 * month / 7),
    }
    for unit, (recency, T) in want.items():
        got = patron.summarize(table, period="M", time_unit=unit, as_of="2024-02-10")
        s = by_customer(got)["a"]
        assert s["frequency"] == 2, unit
        assert_close(s["recency"], recency, what=unit)
        assert_close(s["T"], T, what=unit)
        assert s["monetary_value"] == 32.5, unit  # (25 + 40) / 2
        assert s["first_purchase"] == dt.date(2023, 1, 31)
        assert s["last_purchase"] == dt.date(2024, 1, 15)


def test_daily_periods_in_every_unit(backend):
    rows = [("a", "2023-01-01", 10), ("a", "2024-01-01", 10)]  # 365 days apart
    table = backend(tx(rows))
    for unit, days in {"D": 1, "W": 7, "M": 365.25 / 12, "Y": 365.25}.items():
        s = by_customer(patron.summarize(table, time_unit=unit, as_of="2024-01-01"))["a"]
        assert_close(s["recency"], 365 / days, what=unit)
        assert s["recency"] == s["T"]
    assert by_customer(patron.summarize(table, time_unit="d"))["a"]["recency"] == 365.0


def test_returns_never_make_a_purchase_period(backend):
    rows = [
        ("a", "2024-01-01", 100),
        ("a", "2024-01-01 15:00", -30),  # returned the same day
        ("a", "2024-01-05", -20),  # a return on a day without purchase
        ("a", "2024-01-10", 50),
        ("r", "2024-01-03", -15),  # only returns: no purchase, no T
        ("r", "2024-01-04", -5),
        ("z", "2024-01-02", 0),  # a zero amount is a purchase
    ]
    s = patron.summarize(backend(tx(rows)), time_unit="D")
    got = by_customer(s)
    assert list(got) == ["a", "z"]
    a = got["a"]
    assert a["frequency"] == 1
    assert a["recency"] == 9.0
    assert a["monetary_value"] == 50.0  # returns do not enter the period spend
    assert a["orders"] == 2
    assert a["returns"] == 2
    assert a["returned_amount"] == 50.0
    assert a["total_spend"] == 100.0  # 150 bought - 50 returned
    assert a["first_purchase"] == dt.date(2024, 1, 1)
    assert got["z"]["frequency"] == 0 and got["z"]["returned_amount"] == 0.0
    assert meta(s, "customers_without_purchase") == "1"


def test_as_of_cuts_later_rows(backend):
    rows = [
        ("a", "2024-01-01", 10),
        ("a", "2024-01-05 23:59", 20),  # on as_of: counts
        ("a", "2024-01-06 00:00", 40),  # after as_of: ignored
        ("a", "2024-01-07", -20),  # a later return: ignored
        ("b", "2024-01-09", 10),  # first purchase after as_of: not a customer yet
    ]
    table = backend(tx(rows))
    s = patron.summarize(table, time_unit="D", as_of=dt.date(2024, 1, 5))
    got = by_customer(s)
    assert list(got) == ["a"]
    assert (got["a"]["frequency"], got["a"]["T"], got["a"]["orders"]) == (1, 4.0, 2)
    assert (got["a"]["total_spend"], got["a"]["returns"]) == (30.0, 0)
    assert meta(s, "as_of") == "2024-01-05"
    # Without as_of, the last transaction's date (a return here) is the end.
    later = patron.summarize(table, time_unit="D")
    assert meta(later, "as_of") == "2024-01-09"
    assert by_customer(later)["a"]["T"] == 8.0
    assert by_customer(later)["a"]["returns"] == 1


def test_holdout_small(backend):
    rows = [
        ("a", "2024-01-01", 10),
        ("a", "2024-01-20", 30),  # holdout
        ("a", "2024-01-20 18:00", 10),  # same holdout day
        ("a", "2024-01-25", 20),  # holdout
        ("a", "2024-01-26", -5),  # holdout return: not a holdout purchase
        ("b", "2024-01-03", 10),  # no holdout purchase
        ("n", "2024-01-21", 99),  # first seen in the holdout: left out, counted
        ("c", "2024-01-02", 10),
        ("c", "2024-02-15", 10),  # after as_of
    ]
    s = patron.summarize(
        backend(tx(rows)), time_unit="D", calibration_end="2024-01-10", as_of="2024-01-31"
    )
    got = by_customer(s)
    assert list(got) == ["a", "b", "c"]
    assert got["a"]["frequency_holdout"] == 2
    assert got["a"]["monetary_value_holdout"] == 30.0  # (40 + 20) / 2
    assert got["a"]["T"] == 9.0  # to calibration_end
    assert got["a"]["duration_holdout"] == 21.0
    assert got["a"]["orders"] == 1  # calibration columns describe the calibration period
    assert got["b"]["frequency_holdout"] == 0
    assert got["b"]["monetary_value_holdout"] == 0.0
    assert got["c"]["frequency_holdout"] == 0
    assert meta(s, "customers_first_seen_in_holdout") == "1"


def test_date_typed_ts_column(backend):
    rows = [("a", "2024-01-01", 10), ("a", "2024-01-08", 20)]
    s = by_customer(patron.summarize(backend(tx(rows, date_type=True)), time_unit="D"))
    assert (s["a"]["frequency"], s["a"]["recency"], s["a"]["monetary_value"]) == (1, 7.0, 20.0)


def test_rows_with_nulls_are_left_out_and_counted(backend):
    table = pa.table(
        {
            "customer_id": ["a", None, "a", "b"],
            "ts": pa.array(
                [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2), None, dt.datetime(2024, 1, 3)],
                pa.timestamp("us"),
            ),
            "amount": [10.0, 5.0, 7.0, None],
        }
    )
    s = patron.summarize(backend(table), time_unit="D")
    assert by_customer(s).keys() == {"a"}
    assert by_customer(s)["a"]["orders"] == 1
    assert meta(s, "rows_with_nulls") == "3"


def test_extra_columns_and_integer_ids(backend):
    table = pa.table(
        {
            "customer_id": pa.array([7, 7, 12], pa.int64()),
            "ts": pa.array([dt.datetime(2024, 1, d) for d in (1, 4, 2)], pa.timestamp("us")),
            "amount": pa.array([1, 2, 3], pa.int64()),
            "note": ["x", "y", "z"],
        }
    )
    s = patron.summarize(backend(table), time_unit="D")
    assert s.column("customer_id").to_pylist() == ["12", "7"]  # text order
    assert by_customer(s)["7"]["total_spend"] == 3.0


def test_ibis_table_stays_on_its_backend(backend, cdnow, monkeypatch):
    """No DuckDB side-trip, no reader, and nothing larger than the result comes back."""
    table = backend(cdnow)

    def forbidden(*args, **kwargs):
        raise AssertionError("summarize left the backend")

    monkeypatch.setattr(ibis.duckdb, "connect", forbidden)
    monkeypatch.setattr(ibis, "memtable", forbidden)
    monkeypatch.setattr(sources, "_from_arrow", forbidden)
    monkeypatch.setattr(sources, "_duckdb", forbidden)
    fetched = []
    make = sources.Source.__init__

    def spy(self, *args, **kwargs):
        make(self, *args, **kwargs)
        inner = self.run

        def counted(expr):
            result = inner(expr)
            fetched.append(result.num_rows)
            return result

        self.run = counted

    monkeypatch.setattr(sources.Source, "__init__", spy)
    s = patron.summarize(table, as_of="1997-09-30")
    assert s.num_rows == 2357
    assert fetched and max(fetched) <= 2357 < cdnow.num_rows


# --------------------------------------------------------------------------- inputs


def test_inputs_transactions_arrow_parquet_and_csv(tmp_path, cdnow, monkeypatch):
    want = patron.summarize(patron.datasets.cdnow(), as_of=CAL_END)
    assert_same(patron.summarize(cdnow, as_of=CAL_END), want)

    clean = tmp_path / "clean.parquet"
    pq.write_table(cdnow, clean)
    with monkeypatch.context() as m:  # the fast path never calls the reader
        m.setattr("patron.ingest.read_transactions", None)
        assert_same(patron.summarize(clean, as_of=CAL_END), want)
        assert_same(patron.summarize(str(clean), as_of=CAL_END), want)

    raw = tmp_path / "orders.csv"
    pacsv.write_csv(cdnow, raw)
    assert_same(patron.summarize(raw, as_of=CAL_END), want)

    # A Parquet file that is not clean (other column names) goes through the reader.
    messy = tmp_path / "messy.parquet"
    pq.write_table(cdnow.rename_columns(["客户编号", "下单时间", "实付金额"]), messy)
    assert_same(patron.summarize(messy, as_of=CAL_END), want)


def test_parquet_fast_path_without_statistics(tmp_path, cdnow):
    path = tmp_path / "nostats.parquet"
    pq.write_table(cdnow, path, write_statistics=False)
    s = patron.summarize(path)
    assert meta(s, "as_of") == "1998-06-30"
    assert s.num_rows == 2357


def test_empty_input(backend):
    empty = tx([]).slice(0, 0)
    table = backend(empty)
    s = patron.summarize(table, as_of="2024-01-01", calibration_end="2023-12-01")
    assert s.num_rows == 0
    assert s.column_names == list(SUMMARY_COLUMNS + HOLDOUT_COLUMNS)
    with pytest.raises(InputError, match="no transactions"):
        patron.summarize(table)


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"period": "Q"}, "period='Q'"),
        ({"period": "Y"}, "period='Y'"),
        ({"time_unit": "H"}, "time_unit='H'"),
        ({"as_of": "yesterday"}, "as_of='yesterday'"),
        ({"as_of": 20240101}, "as_of=20240101"),
        ({"as_of": "2024-01-05", "calibration_end": "2024-01-05"}, "calibration_end=2024-01-05"),
        ({"calibration_end": "2030-01-01"}, "calibration_end=2030-01-01"),
    ],
)
def test_bad_options_name_the_option_and_value(options, named):
    table = tx([("a", "2024-01-01", 1), ("a", "2024-01-06", 1)])
    with pytest.raises(InputError, match=named.replace("(", r"\(")) as info:
        patron.summarize(table, **options)
    assert isinstance(info.value, ValueError)
    assert info.value.column == next(iter(options)) or "calibration_end" in options


def test_missing_and_mistyped_columns():
    con = ibis.duckdb.connect()
    no_amount = con.create_table("t1", tx([("a", "2024-01-01", 1)]).drop(["amount"]))
    with pytest.raises(InputError, match="amount") as info:
        patron.summarize(no_amount)
    assert info.value.column == "amount"
    text_amount = con.create_table(
        "t2", tx([("a", "2024-01-01", 1)]).set_column(2, "amount", pa.array(["1"]))
    )
    with pytest.raises(InputError, match="amount"):
        patron.summarize(text_amount)


# --------------------------------------------------------------------------- property


def _reference(rows, period, unit, as_of):
    """A plain-Python summary from the definitions (not from patron's arithmetic)."""

    def start(d):
        if period == "D":
            return d
        if period == "W":
            return d - dt.timedelta(days=d.weekday())
        return d.replace(day=1)

    def length(a, b):  # from period start a to period start b, in units
        if period == "M":
            months = (b.year - a.year) * 12 + b.month - a.month
            if unit == "M":
                return float(months)
            return months * (365.25 / 12) / {"D": 1.0, "W": 7.0, "Y": 365.25}[unit]
        days = (b - a).days
        return {"D": days, "W": days / 7, "M": days / (365.25 / 12), "Y": days / 365.25}[unit]

    out = {}
    for cid in sorted({r[0] for r in rows}):
        mine = [r for r in rows if r[0] == cid and r[1] <= as_of]
        spend = {}
        for _, d, amount in mine:
            if amount >= 0:
                spend[start(d)] = spend.get(start(d), 0.0) + amount
        if not spend:
            continue
        keys = sorted(spend)
        repeat = [spend[k] for k in keys[1:]]
        before_last = [d for _, d, a in mine if a >= 0 and start(d) < keys[-1]]
        out[cid] = {
            "frequency": len(keys) - 1,
            "recency": length(keys[0], keys[-1]),
            "T": length(keys[0], start(as_of)),
            "monetary_value": sum(repeat) / len(repeat) if repeat else 0.0,
            "orders": sum(1 for r in mine if r[2] >= 0),
            "returns": sum(1 for r in mine if r[2] < 0),
            "previous_purchase": max(before_last) if before_last else None,
        }
    return out


transactions = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "é", "客户1"]),
        st.dates(dt.date(1965, 1, 1), dt.date(1975, 12, 31)),  # across 1970: negative days
        st.integers(-50, 200).map(float),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=transactions,
    period=st.sampled_from(["D", "W", "M"]),
    unit=st.sampled_from(["D", "W", "M", "Y"]),
    cut=st.floats(0.0, 1.0),
)
def test_matches_the_definitions(rows, period, unit, cut):
    days = sorted(r[1] for r in rows)
    as_of = days[int(cut * (len(days) - 1))]
    table = tx([(c, d.isoformat(), a) for c, d, a in rows])
    got = by_customer(patron.summarize(table, period=period, time_unit=unit, as_of=as_of))
    want = _reference(rows, period, unit, as_of)
    assert list(got) == sorted(want)
    for cid, w in want.items():
        g = got[cid]
        for col in ("frequency", "orders", "returns", "previous_purchase"):
            assert g[col] == w[col], (cid, col)
        for col in ("recency", "T", "monetary_value"):
            assert_close(g[col], w[col], rel=1e-9, what=(cid, col))
