import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import patron
from patron.datasets import cdnow, cdnow_path, donations, sbg_retention
from patron.datasets.cdnow import _cdnow_table

try:
    from patron.ingest import read_transactions  # noqa: F401

    INGEST_MISSING = None
except ImportError as exc:  # ingest is being written alongside; only then skip
    INGEST_MISSING = f"patron.ingest.read_transactions is not importable yet: {exc}"

needs_ingest = pytest.mark.skipif(INGEST_MISSING is not None, reason=str(INGEST_MISSING))

# Customer 0001 of the BG/NBD paper's sample (master id 00004): three purchases in the
# 39-week calibration period and one in the holdout.
CUSTOMER_0001_DAYS = [dt.date(1997, 1, 1), dt.date(1997, 1, 18), dt.date(1997, 8, 2)]
CUSTOMER_0001_HOLDOUT = [dt.date(1997, 12, 12)]


def naive_rows(sample):
    """The file split the obvious way, as an oracle independent of the loader."""
    lines = cdnow_path(sample).read_text().splitlines()
    return [line.split() for line in (lines if sample else lines[1:])]


def days_of(table, customer):
    rows = table.filter(pc.equal(table["customer_id"], customer))
    return sorted(ts.date() for ts in rows["ts"].to_pylist())


def test_paths_point_at_the_shipped_files():
    assert cdnow_path().name == "cdnow_sample.txt"
    assert cdnow_path(sample=False).name == "cdnow_master.txt"
    assert cdnow_path().read_text().startswith(" 00004 0001 19970101")
    assert (cdnow_path().parent / "README.md").read_text().count("Fader") >= 3


@pytest.mark.parametrize(
    ("sample", "rows", "customers"), [(True, 6_919, 2_357), (False, 69_659, 23_570)]
)
def test_parsed_table_has_the_published_size(sample, rows, customers):
    table = _cdnow_table(sample)
    assert table.num_rows == rows
    assert pc.count_distinct(table["customer_id"]).as_py() == customers
    assert table.schema.field("ts").type == pa.timestamp("us")
    assert table.schema.field("amount").type == pa.float64()
    assert table.schema.field("number_of_cds").type == pa.int64()
    assert ("master_id" in table.column_names) is sample


@pytest.mark.parametrize("sample", [True, False])
def test_parsed_table_equals_the_file_row_by_row(sample):
    table = _cdnow_table(sample).to_pylist()
    naive = naive_rows(sample)
    assert len(table) == len(naive)
    for got, cells in zip(table, naive, strict=True):
        if sample:
            master, customer, day, cds, dollars = cells
            assert got["master_id"] == master
        else:
            customer, day, cds, dollars = cells
        assert got["customer_id"] == customer
        assert got["ts"] == dt.datetime.strptime(day, "%Y%m%d")
        assert got["number_of_cds"] == int(cds)
        assert got["amount"] == float(dollars)


def test_sample_ids_are_the_papers_and_keep_the_master_id():
    table = _cdnow_table(True)
    ids = sorted(set(table["customer_id"].to_pylist()))
    assert ids[0] == "0001" and ids[-1] == "2357" and len(ids) == 2357
    first = table.filter(pc.equal(table["customer_id"], "0001"))
    assert set(first["master_id"].to_pylist()) == {"00004"}
    assert days_of(table, "0001") == CUSTOMER_0001_DAYS + CUSTOMER_0001_HOLDOUT


def test_master_ids_are_zero_padded():
    table = _cdnow_table(False)
    assert set(pc.utf8_length(table["customer_id"]).to_pylist()) == {5}
    assert days_of(table, "00004") == CUSTOMER_0001_DAYS + CUSTOMER_0001_HOLDOUT


@needs_ingest
def test_sample_through_ingest_keeps_every_purchase():
    tx = cdnow()
    table = tx.to_arrow()
    assert len(tx) == 6_919
    assert tx.report.customers == 2_357
    assert tx.report.rejected == 0
    assert pc.count_distinct(table["customer_id"]).as_py() == 2_357
    assert days_of(table, "0001") == CUSTOMER_0001_DAYS + CUSTOMER_0001_HOLDOUT
    assert pc.sum(table["amount"]).as_py() == pytest.approx(
        sum(float(cells[4]) for cells in naive_rows(True))
    )


@needs_ingest
def test_master_through_ingest_keeps_every_purchase():
    tx = cdnow(sample=False)
    assert len(tx) == 69_659
    assert tx.report.customers == 23_570
    assert tx.report.rejected == 0


def test_donations_weight_the_papers_11104_donors():
    table = donations()
    assert table.num_rows == 22
    assert pc.sum(table["weights"]).as_py() == 11_104
    assert set(table["periods"].to_pylist()) == {6}
    assert table.schema.field("frequency").type == pa.int64()
    # Recency can never be below frequency, nor above the number of periods.
    for row in table.to_pylist():
        assert row["frequency"] <= row["recency"] <= row["periods"]


def test_sbg_retention_has_both_segments_over_twelve_years():
    table = sbg_retention()
    assert table["year"].to_pylist() == list(range(13))
    assert table["regular"][0].as_py() == table["high_end"][0].as_py() == 1000
    assert table["regular"][1].as_py() == 631 and table["high_end"][1].as_py() == 869
    regular = table["regular"].to_pylist()
    assert regular == sorted(regular, reverse=True)


def test_datasets_are_reachable_from_the_top_package():
    assert patron.datasets.cdnow is cdnow
    assert set(patron.datasets.__all__) == {
        "cdnow",
        "cdnow_path",
        "demo_shop",
        "donations",
        "sbg_retention",
    }
