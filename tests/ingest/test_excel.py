"""Excel exports: title rows above the header, several sheets, ids stored as numbers."""

import datetime as dt

import pytest
from openpyxl import Workbook

import patron
from patron.errors import InputError


@pytest.fixture
def workbook(tmp_path):
    wb = Workbook()
    notes = wb.active
    notes.title = "说明"
    notes.append(["本文件由系统导出"])
    sheet = wb.create_sheet("订单")
    sheet.append(["XX商城 订单导出 2024-01-01 至 2024-03-31"])
    sheet.append([])
    sheet.append(["订单编号", "会员编号", "手机号", "订单日期", "实付金额(元)"])
    sheet.append(["SO1", "00123", 13812345678.0, dt.datetime(2024, 1, 5, 10, 30), 99.5])
    sheet.append(["SO2", 124, 13812345679.0, dt.datetime(2024, 1, 6), 10])
    sheet.append([500001.0, "00125", None, "2024年2月1日", "¥1,000"])
    sheet.append([1.23456789012346e18, "00126", None, 45356.5, 5])
    sheet.append([None, None, None, None, None])
    sheet.append(["SO4", "00127", None, dt.datetime(2024, 3, 1), -5])
    for _ in range(3):  # formatting left below the data
        sheet.append([None, None, None, None, None])
    path = tmp_path / "订单导出.xlsx"
    wb.save(path)
    return path


def test_header_below_title_rows_and_sheet_found(workbook):
    tx = patron.read_transactions(workbook)
    r = tx.report
    assert r.sheet == "订单"
    assert (r.rows_read, r.purchases, r.returns, r.rejected) == (5, 3, 1, 1)
    assert r.blank_rows == 1
    assert tx.rejected.to_pylist()[0]["line"] == 7  # sheet row of the damaged order id
    assert tx.rejected.to_pylist()[0]["reason"] == "order_id_precision_lost"
    t = tx.to_arrow()
    assert t["customer_id"].to_pylist() == ["00123", "00124", "00125", "00127"]
    assert t["order_id"].to_pylist() == ["SO1", "SO2", "500001", "SO4"]
    assert t["ts"].to_pylist()[0] == dt.datetime(2024, 1, 5, 10, 30)
    assert t["手机号"].to_pylist()[0] == "13812345678"  # other columns kept
    assert r.ids_restored >= 1  # 124 -> 00124


def test_sheet_by_name_and_missing_sheet(workbook):
    assert patron.read_transactions(workbook, sheet="订单").report.sheet == "订单"
    assert patron.read_transactions(workbook, sheet=1).report.sheet == "订单"
    with pytest.raises(InputError, match="说明, 订单"):
        patron.read_transactions(workbook, sheet="Sheet9")


def test_old_xls_gets_a_clear_message(tmp_path):
    path = tmp_path / "old.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(InputError, match="xlsx"):
        patron.read_transactions(path)


def test_a_file_named_xlsx_that_is_no_workbook_is_an_input_error(tmp_path):
    path = tmp_path / "订单.xlsx"
    path.write_bytes(b"this is not a workbook")
    with pytest.raises(InputError, match="订单.xlsx"):
        patron.read_transactions(path)
