"""Recognising the customer, date, amount and order-id columns by their header names."""

import pytest

from patron.errors import InputError
from patron.ingest.columns import header_score, recognise


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (
            ["订单编号", "客户编号", "下单时间", "实付金额"],
            {
                "customer": "客户编号",
                "date": "下单时间",
                "amount": "实付金额",
                "order_id": "订单编号",
            },
        ),
        (
            ["会员ID", "订单日期", "金额"],
            {"customer": "会员ID", "date": "订单日期", "amount": "金额"},
        ),
        (
            ["买家会员名", "支付时间", "订单金额", "实付金额(元)", "下单时间"],
            {"customer": "买家会员名", "date": "下单时间", "amount": "实付金额(元)"},
        ),
        (
            ["InvoiceNo", "Customer ID", "InvoiceDate", "Revenue"],
            {
                "customer": "Customer ID",
                "date": "InvoiceDate",
                "amount": "Revenue",
                "order_id": "InvoiceNo",
            },
        ),
        (
            ["customer_id", "date", "sales"],
            {"customer": "customer_id", "date": "date", "amount": "sales"},
        ),
        (
            ["ＣＵＳＴＯＭＥＲ　ＩＤ", "Order Date", "Amount"],
            {"customer": "ＣＵＳＴＯＭＥＲ　ＩＤ", "date": "Order Date", "amount": "Amount"},
        ),
    ],
)
def test_usual_names_are_recognised(columns, expected):
    assert recognise(columns, source="f.csv") == expected


def test_explicit_choice_wins_and_is_not_reused():
    got = recognise(["id", "客户编号", "日期", "金额"], source="f.csv", customer="id")
    assert got["customer"] == "id"


def test_error_lists_columns_and_missing_roles():
    with pytest.raises(InputError) as info:
        recognise(["名字", "日期", "备注"], source="f.csv")
    text = str(info.value)
    assert "名字, 日期, 备注" in text and "customer id" in text and "amount" in text


def test_header_score_finds_headers_not_titles():
    assert header_score(["XX商城 订单导出", None]) == 0
    assert header_score(["订单编号", "客户编号", "下单时间", "实付金额"]) == 3
