"""The demo shop against its own truth, counted here with csv and openpyxl, not with ingest."""

import csv
import datetime as dt
import re
import shutil
import unicodedata
from collections import Counter

import numpy as np
import openpyxl
import pytest

from patron.datasets import demo_shop
from patron.datasets.demo_shop import HEADER, ISSUES

END = dt.datetime(2025, 12, 31, 23, 59, 59)
EXCEL_EPOCH = dt.datetime(1899, 12, 30)
CANONICAL_DATE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
CANONICAL_AMOUNT = re.compile(r"-?\d+\.\d{2}")
ORDER_ID = re.compile(r"SO20(24|25)\d{6}(-R)?")
COUNTS = (
    "purchases",
    "refunds",
    "duplicates",
    "conflicts",
    "missing_customer_id",
    "bad_dates",
    "future_dates",
    "bad_amounts",
    "date_formats",
    "amount_formats",
)


# --- an independent reading of the cells ------------------------------------------------


def parse_date(cell):
    """(value, canonical); value None when the date does not exist."""
    if isinstance(cell, dt.datetime):
        return cell, True
    if isinstance(cell, float):
        return EXCEL_EPOCH + dt.timedelta(seconds=round(cell * 86_400)), False
    if re.fullmatch(r"\d{5}\.\d+", cell):
        return EXCEL_EPOCH + dt.timedelta(seconds=round(float(cell) * 86_400)), False
    m = re.fullmatch(r"(\d{4})年(\d{1,2})月(\d{1,2})日", cell)
    if m:
        parts = [*map(int, m.groups()), 0, 0, 0]
    else:
        m = re.fullmatch(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2}) (\d{2}):(\d{2})(?::(\d{2}))?", cell)
        assert m, f"a date form the test does not know: {cell!r}"
        parts = [*map(int, m.groups()[:5]), int(m.group(6) or 0)]
    try:
        value = dt.datetime(*parts)
    except ValueError:
        return None, False
    return value, bool(CANONICAL_DATE.fullmatch(cell))


def parse_amount(cell):
    """(value, canonical); value None when the cell is not an amount."""
    if isinstance(cell, int | float):
        return float(cell), True
    text = unicodedata.normalize("NFKC", cell)  # ￥１２３ -> ¥123
    negative = text.startswith("(") and text.endswith(")")
    text = text.strip("()").replace("¥", "").replace("元", "").replace(",", "")
    try:
        value = float(text)
    except ValueError:
        return None, False
    return (-value if negative else value), bool(CANONICAL_AMOUNT.fullmatch(cell))


def read_csv_rows(path, encoding="utf-8"):
    with open(path, encoding=encoding, newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == HEADER
    return [[cell or None for cell in row] for row in rows[1:]]


def read_xlsx_rows(path):
    ws = openpyxl.load_workbook(path, read_only=True).worksheets[0]
    return [list(row) for row in ws.iter_rows(min_row=4, values_only=True)]


def count_from_file(rows):
    """Every count of the truth, from the cells alone, plus each row's reading."""
    seen_rows, seen_ids = set(), {}
    counts = Counter()
    readings = []
    for row in rows:
        order_id, customer, _name, _phone, date, amount, _channel, status = row
        key = tuple(row)
        if key in seen_rows:
            kind = "duplicates"
        elif order_id in seen_ids:
            kind = "conflicts"
            assert seen_ids[order_id][:5] == key[:5] and seen_ids[order_id][6:] == key[6:]
        else:
            kind = "refunds" if status == "已退款" else "purchases"
            seen_ids[order_id] = key
        seen_rows.add(key)
        counts[kind] += 1
        when, date_ok = parse_date(date)
        if when is None:
            counts["bad_dates"] += 1
        elif when > END:
            counts["future_dates"] += 1
        elif not date_ok:
            counts["date_formats"] += 1
        money, amount_ok = parse_amount(amount)
        if money is None:
            counts["bad_amounts"] += 1
        elif not amount_ok:
            counts["amount_formats"] += 1
        counts["missing_customer_id"] += customer is None
        readings.append((when, money))
    return counts, readings


def check_against_truth(rows, truth):
    counts, readings = count_from_file(rows)
    assert len(rows) == truth["rows"]
    assert {k: counts[k] for k in COUNTS} == {k: truth[k] for k in COUNTS}
    assert truth["customers"] == len({row[1] for row in rows if row[1] is not None})
    assert truth["missing_phones"] == sum(row[3] is None for row in rows)

    table = truth["table"].to_pylist()
    assert [t["line"] for t in table] == list(
        range(truth["first_data_line"], truth["first_data_line"] + len(rows))
    )
    for row, (when, money), t in zip(rows, readings, table, strict=True):
        assert row[0] == t["order_id"]
        assert when == t["ts"] or (t["issue"] == "bad_date" and when is None)
        assert money == pytest.approx(t["amount"]) or (t["issue"] == "bad_amount" and money is None)
        assert t["amount"] is None or (t["amount"] < 0) is t["refund"]
        assert (row[7] == "已退款") is t["refund"]
    for kind, lines in truth["lines"].items():
        assert lines == [t["line"] for t in table if t["issue"] == kind]


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("shop") / "orders.csv"
    return demo_shop(path, customers=400, messy=0.1, return_truth=True)


@pytest.fixture(scope="module")
def shop_xlsx(tmp_path_factory):
    path = tmp_path_factory.mktemp("shop") / "orders.xlsx"
    return demo_shop(path, customers=400, messy=0.1, fmt="xlsx", return_truth=True)


# --- tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_same_seed_gives_the_same_bytes(tmp_path, fmt):
    a = demo_shop(tmp_path / f"a.{fmt}", customers=300, seed=11, fmt=fmt)
    b = demo_shop(tmp_path / f"b.{fmt}", customers=300, seed=11, fmt=fmt)
    c = demo_shop(tmp_path / f"c.{fmt}", customers=300, seed=12, fmt=fmt)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_csv_counts_match_the_truth(shop_csv):
    path, truth = shop_csv
    rows = read_csv_rows(path)
    check_against_truth(rows, truth)
    assert truth["header_line"] == 1 and truth["numeric_id_cells"] == 0
    assert truth["rows"] == sum(
        truth[k] for k in ("purchases", "refunds", "duplicates", "conflicts")
    )
    assert all(truth[k] >= 1 for k in COUNTS), "every kind of damage occurs"


def test_xlsx_counts_match_the_truth(shop_xlsx):
    path, truth = shop_xlsx
    rows = read_xlsx_rows(path)
    table = truth["table"].to_pylist()
    numeric_ids = 0
    for row, t in zip(rows, table, strict=True):
        if isinstance(row[1], int):  # Excel's damage: the zero padding is gone
            numeric_ids += 1
            assert f"{row[1]:08d}" == t["customer_id"]
            row[1] = t["customer_id"]
        else:
            assert row[1] is None or row[1] == t["customer_id"]
    assert numeric_ids == truth["numeric_id_cells"] > 0
    check_against_truth(rows, truth)
    assert truth["header_line"] == 3


def test_xlsx_has_a_title_row_a_blank_row_and_the_header_on_row_3(shop_xlsx):
    path, truth = shop_xlsx
    wb = openpyxl.load_workbook(path, read_only=True)
    assert wb.sheetnames == ["订单列表", "说明"]
    top = [list(row) for row in wb.worksheets[0].iter_rows(max_row=3, values_only=True)]
    assert re.fullmatch(r"\S+商城 订单导出 2024-01-01 至 2025-12-31", top[0][0])
    assert all(cell is None for cell in top[0][1:] + top[1])
    assert tuple(top[2]) == HEADER
    notes = [row[0] for row in wb["说明"].iter_rows(values_only=True)]
    assert any("模拟" in note for note in notes) and any("-R" in note for note in notes)


def test_counts_add_up_and_refunds_follow_their_orders(shop_csv):
    _, truth = shop_csv
    table = truth["table"].to_pylist()
    sales = {t["order_id"]: t for t in table if not t["refund"] and t["issue"] is None}
    refunds = [t for t in table if t["refund"]]
    assert refunds and all(t["order_id"].endswith("-R") for t in refunds)
    for refund in refunds:
        sale = sales.get(refund["order_id"][:-2])
        if sale and refund["ts"] and refund["amount"]:
            assert 1 <= (refund["ts"].date() - sale["ts"].date()).days <= 14
            assert -sale["amount"] <= refund["amount"] < 0
    assert all(ORDER_ID.fullmatch(t["order_id"]) for t in table)


def test_damage_is_the_asked_share_of_rows(shop_csv):
    _, truth = shop_csv
    damaged = sum(len(lines) for lines in truth["lines"].values())
    base = truth["rows"] - truth["duplicates"] - truth["conflicts"]
    assert damaged == int(np.floor(0.1 * base + 0.5))
    assert set(truth["lines"]) == set(ISSUES)


def test_a_clean_export_has_no_damage(tmp_path):
    path, truth = demo_shop(tmp_path / "clean.csv", customers=200, messy=0, return_truth=True)
    rows = read_csv_rows(path)
    assert all(CANONICAL_DATE.fullmatch(r[4]) and CANONICAL_AMOUNT.fullmatch(r[5]) for r in rows)
    assert all(r[1] is not None for r in rows)
    assert truth["rows"] == truth["purchases"] + truth["refunds"]
    assert all(lines == [] for lines in truth["lines"].values())


def test_the_shop_looks_like_a_shop(tmp_path):
    path, truth = demo_shop(tmp_path / "s.csv", customers=2000, messy=0, return_truth=True)
    rows = read_csv_rows(path)
    table = truth["table"].to_pylist()
    assert len({t["customer_id"] for t in table}) == 2000, "every customer buys once at least"
    spend = np.array([t["amount"] for t in table if not t["refund"]])
    assert 50 <= np.median(spend) <= 800
    assert np.mean((spend >= 30) & (spend <= 1000)) > 0.85
    assert spend.max() > 2000, "a few large orders"
    store_hours = {int(r[4][11:13]) for r in rows if r[6] == "门店" and r[7] == "已完成"}
    assert min(store_hours) >= 10 and max(store_hours) <= 21
    assert {r[6] for r in rows} == {"门店", "天猫", "京东", "小程序", "web"}
    assert 0.01 < truth["refunds"] / truth["purchases"] < 0.05
    assert 2 < truth["purchases"] / 2000 < 5
    ids = {r[1] for r in rows}
    assert any(re.fullmatch(r"C\d{6}", i) for i in ids) and any(
        re.fullmatch(r"\d{8}", i) for i in ids
    )
    assert all(re.fullmatch(r"1[3-9]\d{9}", r[3]) for r in rows if r[3])
    names = {r[2] for r in rows}
    assert any(re.fullmatch(r"[A-Z][a-z]+ [A-ZÜ][a-zü]+", n) for n in names), "some English names"
    assert {"刘䶮", "王𠮷"} <= names


def test_gb18030_holds_the_rare_characters(tmp_path):
    path = demo_shop(tmp_path / "gb.csv", customers=300, encoding="gb18030")
    data = path.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    text = data.decode("gb18030")
    assert "𠮷" in text and "䶮" in text and text.startswith(",".join(HEADER))


def test_gbk_replaces_what_it_cannot_hold(tmp_path):
    path, truth = demo_shop(
        tmp_path / "gbk.csv", customers=300, messy=0.2, encoding="gbk", return_truth=True
    )
    text = path.read_bytes().decode("gbk")
    assert "𠮷" not in text and "䶮" not in text and "¥" not in text
    assert truth["replaced_characters"] == text.count("?") > 0
    assert "￥" in text, "GBK exports write the full-width yuan sign"


@pytest.mark.parametrize(("encoding", "bom"), [("utf-8-sig", True), ("utf-8", False)])
def test_utf8_with_and_without_bom(tmp_path, encoding, bom):
    path = demo_shop(tmp_path / "u.csv", customers=20, encoding=encoding)
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") is bom
    assert data.decode("utf-8-sig").startswith("订单编号,")


def test_default_path_is_a_new_temporary_file():
    a, b = demo_shop(customers=5), demo_shop(customers=5)
    try:
        assert a.name == b.name == "demo_shop.csv"
        assert a != b and a.exists() and b.exists()
        assert a.read_bytes() == b.read_bytes()
    finally:
        shutil.rmtree(a.parent)
        shutil.rmtree(b.parent)


def test_a_directory_path_gets_the_default_name(tmp_path):
    assert demo_shop(tmp_path, customers=5, fmt="xlsx") == tmp_path / "demo_shop.xlsx"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"customers": 0},
        {"messy": 0.9},
        {"fmt": "xls"},
        {"encoding": "latin-1"},
        {"start": "2025-01-01", "end": "2024-01-01"},
    ],
)
def test_bad_options_are_refused(tmp_path, kwargs):
    with pytest.raises(ValueError):
        demo_shop(tmp_path / "x.csv", **kwargs)
    assert not (tmp_path / "x.csv").exists()
