"""read_transactions on a file of real-world messiness, with the fate of every line known."""

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

import patron
from patron.errors import InputError

DATA = Path(__file__).parents[1] / "data"
MESSY = DATA / "messy_orders.csv"

# line -> reason, for every rejected line of messy_orders.csv read with as_of=2024-03-31
REJECTED = {
    13: "order_id_conflict",
    14: "customer_missing",
    15: "date_nonexistent",
    16: "date_unparseable",
    17: "amount_unparseable",
    18: "amount_missing",
    19: "date_after_as_of",
    21: "row_malformed",
    22: "customer_id_precision_lost",
    24: "date_missing",
}


@pytest.fixture(scope="module")
def messy():
    return patron.read_transactions(MESSY, as_of="2024-03-31")


def test_every_row_is_accounted_for(messy):
    r = messy.report
    assert (r.rows_read, r.purchases, r.returns, r.duplicates, r.rejected) == (22, 8, 3, 1, 10)
    assert r.rows_read == r.purchases + r.returns + r.duplicates + r.rejected
    assert r.customers == 6
    assert r.blank_rows == 1
    assert r.encoding == "utf-8"
    assert r.columns == {
        "customer_id": "客户编号",
        "ts": "下单时间",
        "amount": "实付金额",
        "order_id": "订单编号",
    }


def test_rejected_rows_name_line_reason_column_and_value(messy):
    rejected = messy.rejected.to_pylist()
    assert {row["line"]: row["reason"] for row in rejected} == REJECTED
    by_line = {row["line"]: row for row in rejected}
    assert by_line[15]["column"] == "下单时间"
    assert by_line[15]["value"] == "2025年2月30日"
    assert by_line[17]["value"] == "待定"
    assert by_line[13]["实付金额"] == "99"  # raw cells of the rejected row are kept
    assert messy.report.rejected_by_reason["order_id_conflict"] == 1


def test_values_parsed_from_every_form(messy):
    t = messy.to_arrow()
    got = dict(zip(t["order_id"].to_pylist(), t["amount"].to_pylist(), strict=False))
    assert got["SO1001"] == 1234.50
    assert got["SO1003"] == 1234.5
    assert got["SO1004"] == 123.0
    assert got["SO1005"] == 12000.0
    assert got["SO1017"] == 1234.50
    assert got["SO1019"] == 0.0
    amounts = sorted(a for a in t["amount"].to_pylist() if a < 0)
    assert amounts == [-100.0, -12.0, -12.0]
    ts = dict(zip(t["order_id"].to_pylist(), t["ts"].to_pylist(), strict=False))
    assert ts["SO1001"] == dt.datetime(2024, 3, 5, 14, 22, 1)
    assert ts["SO1002"] == dt.datetime(2024, 3, 9)
    assert ts["SO1003"] == dt.datetime(2024, 3, 5)
    assert ts["SO1005"] == dt.datetime(1899, 12, 30) + dt.timedelta(days=45356)
    # Other columns are kept as read.
    assert t.column_names[:4] == ["customer_id", "ts", "amount", "order_id"]
    assert {"客户姓名", "渠道", "备注"} <= set(t.column_names)
    assert t.schema.field("customer_id").type == pa.string()
    assert t.schema.field("amount").type == pa.float64()


def test_without_as_of_rows_dated_after_now_are_rejected():
    tx = patron.read_transactions(MESSY)
    assert tx.report.rejected_by_reason["date_after_as_of"] == 1  # 2052: a typo, not an order
    later = patron.read_transactions(MESSY, as_of="2099-12-31")
    assert (later.report.rejected, later.report.purchases) == (9, 9)


def test_strict_raises_with_file_line_and_column():
    with pytest.raises(InputError) as info:
        patron.read_transactions(MESSY, strict=True)
    err = info.value
    assert (err.line, err.column) == (13, "订单编号")
    assert "messy_orders.csv" in str(err) and "13" in str(err)
    assert isinstance(err, ValueError)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030", "utf-16"])
def test_encodings_are_detected(tmp_path, encoding):
    path = tmp_path / "orders.csv"
    text = MESSY.read_text("utf-8")
    if encoding == "utf-16":
        text = text.replace(",", "\t")  # Excel's "Unicode text" export is UTF-16 + tabs
        text = text.replace('"¥1\t234.50"', "¥1,234.50").replace('"$1\t234"', "$1,234")
        text = text.replace('"1\t234.50"', "1,234.50").replace(
            "1\t234.50\t门店", "1,234.50\t门店\t"
        )
    path.write_bytes(text.encode(encoding))
    tx = patron.read_transactions(path, as_of="2024-03-31")
    assert tx.report.encoding == encoding
    assert tx.report.purchases == 8
    assert "张伟" in tx.to_arrow()["客户姓名"].to_pylist()


def test_gbk_export_with_rare_name_characters(tmp_path):
    # 𠮷 and 䶮 are outside GBK: only a GB18030 reading keeps them.
    path = tmp_path / "会员订单.csv"
    rows = ["会员ID,姓名,支付时间,订单金额", "M01,𠮷野家,2024-01-02,10", "M02,刘䶮,2024-01-03,￥20"]
    path.write_bytes("\n".join(rows).encode("gb18030"))
    tx = patron.read_transactions(path)
    assert tx.report.encoding == "gb18030"
    assert tx.to_arrow()["姓名"].to_pylist() == ["𠮷野家", "刘䶮"]
    assert tx.to_arrow()["amount"].to_pylist() == [10.0, 20.0]


def test_english_headers_are_recognised(tmp_path):
    path = tmp_path / "retail.csv"
    path.write_text(
        "InvoiceNo,Customer ID,InvoiceDate,Revenue,Country\n"
        "536365,17850,12/1/2010 8:26,15.30,United Kingdom\n"
        "536366,17850,12/13/2010 8:28,22.00,United Kingdom\n"
    )
    tx = patron.read_transactions(path)
    assert tx.report.columns == {
        "customer_id": "Customer ID",
        "ts": "InvoiceDate",
        "amount": "Revenue",
        "order_id": "InvoiceNo",
    }
    assert tx.to_arrow()["ts"].to_pylist()[1] == dt.datetime(2010, 12, 13, 8, 28)


def test_unrecognised_columns_list_what_was_found(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("who,when,how much\na,2024-01-01,3\n")
    with pytest.raises(InputError) as info:
        patron.read_transactions(path)
    message = str(info.value)
    assert "who, when, how much" in message
    assert "--customer" in message and "odd.csv" in message
    tx = patron.read_transactions(path, customer="who", date="when", amount="how much")
    assert tx.report.purchases == 1


def test_explicit_column_that_does_not_exist(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("customer_id,date,amount\na,2024-01-01,3\n")
    with pytest.raises(InputError, match="客户"):
        patron.read_transactions(path, customer="客户")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "no rows"),
        (b"\x00\x01\x02PK\x00", "binary"),
        (b"customer_id,date,amount\n", "no rows"),
    ],
)
def test_unreadable_files_raise_input_error(tmp_path, content, fragment):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=fragment) as info:
        patron.read_transactions(path)
    assert info.value.file == str(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        patron.read_transactions(tmp_path / "nope.csv")


def test_identical_rows_without_order_id_are_kept_unless_dedupe(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("customer_id,date,amount\na,2024-01-01,3\na,2024-01-01,3\nb,2024-01-02,4\n")
    kept = patron.read_transactions(path)
    assert (kept.report.purchases, kept.report.possible_duplicates, kept.report.duplicates) == (
        3,
        1,
        0,
    )
    dropped = patron.read_transactions(path, dedupe=True)
    assert (dropped.report.purchases, dropped.report.duplicates) == (2, 1)
    assert dropped.report.rows_read == 3


def test_quoted_line_breaks_keep_line_numbers(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text('customer_id,date,amount,note\na,2024-01-01,3,"two\nlines"\n,2024-01-02,4,x\n')
    tx = patron.read_transactions(path)
    assert tx.rejected["line"].to_pylist() == [4]


@pytest.mark.parametrize("kind", ["arrow", "pandas", "polars", "parquet", "ibis"])
def test_in_memory_and_typed_sources(tmp_path, kind):
    table = pa.table(
        {
            "customer_id": [1, 2, 2, None],
            "ts": pa.array(
                [
                    dt.datetime(2024, 1, 1),
                    dt.datetime(2024, 1, 2),
                    dt.datetime(2024, 2, 1),
                    dt.datetime(2024, 2, 2),
                ]
            ),
            "amount": [10.0, 20.5, -5.0, 1.0],
        }
    )
    if kind == "arrow":
        source = table
    elif kind == "pandas":
        source = table.to_pandas()
    elif kind == "polars":
        import polars as pl

        source = pl.from_arrow(table)
    elif kind == "parquet":
        import pyarrow.parquet as pq

        source = tmp_path / "tx.parquet"
        pq.write_table(table, source)
    else:
        import ibis

        source = ibis.memtable(table)
    tx = patron.read_transactions(source)
    assert (tx.report.purchases, tx.report.returns, tx.report.rejected) == (2, 1, 1)
    assert tx.to_arrow()["customer_id"].to_pylist() == ["1", "2", "2"]
    assert tx.rejected["line"].to_pylist() == [4]


def test_columns_aligned_with_spaces_are_read(tmp_path):
    """CDNOW's own text files separate columns with runs of spaces."""
    path = tmp_path / "cdnow.txt"
    path.write_text(
        " customer_id  date number_of_cds  dollar_value\n"
        " 00001 19970101  1   11.77\n"
        " 00002 19970112  1   12.00\n"
        " 00002 19970112  5   77.00\n",
        encoding="utf-8",
    )
    tx = patron.read_transactions(path)
    table = tx.to_arrow()
    assert table["customer_id"].to_pylist() == ["00001", "00002", "00002"]
    assert table["amount"].to_pylist() == [11.77, 12.0, 77.0]
    assert tx.report.columns["amount"] == "dollar_value"
