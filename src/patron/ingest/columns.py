"""Which input column holds the customer, the date, the amount and the order id.

Exports name these in many ways (客户编号, 买家会员名, CustomerID, InvoiceDate, 实付金额…).
We match normalised header names against ordered synonym lists, so a file with both
``实付金额`` and ``订单金额`` uses what was actually paid, and a file with both ``下单时间``
and ``支付时间`` uses the order time.  The user's explicit choice always wins.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from patron.errors import InputError
from patron.i18n import _

__all__ = ["ROLES", "REQUIRED", "normalise_name", "recognise", "header_score"]

ROLES = ("customer", "date", "amount", "order_id")
REQUIRED = ("customer", "date", "amount")

# Ordered by preference: the first synonym found in a file wins.
# fmt: off
SYNONYMS: dict[str, tuple[str, ...]] = {
    "customer": (
        "customer_id", "customerid", "customer_no", "customer_number", "customer_code",
        "cust_id", "custid", "client_id", "clientid", "member_id", "memberid", "user_id",
        "userid", "buyer_id", "buyerid", "account_id", "customer", "client", "member",
        "客户id", "客户编号", "客户号", "客户代码", "客户编码", "会员id", "会员编号", "会员号",
        "会员卡号", "会员编码", "用户id", "用户编号", "顾客id", "顾客编号", "买家id",
        "买家会员名", "买家账号", "买家昵称", "买家", "客户", "会员", "顾客",
    ),
    "date": (
        "ts", "order_date", "orderdate", "order_time", "invoicedate", "invoice_date",
        "purchase_date", "purchase_time", "transaction_date", "transaction_time",
        "order_created_at", "created_at", "date", "datetime", "timestamp", "time",
        "下单时间", "下单日期", "订单日期", "订单时间", "订单创建时间", "创建时间", "购买日期",
        "购买时间", "交易时间", "交易日期", "成交时间", "支付时间", "付款时间", "付款日期",
        "消费时间", "消费日期", "日期", "时间",
    ),
    "amount": (
        "amount", "amount_paid", "paid_amount", "order_amount", "order_total", "total_amount",
        "net_amount", "net_sales", "sales_amount", "revenue", "sales", "total", "value",
        "dollar_value", "payment", "payment_amount", "gmv",
        "实付金额", "买家实付金额", "实际支付金额", "实收金额", "支付金额", "付款金额",
        "订单金额", "成交金额", "交易金额", "消费金额", "销售额", "销售金额", "订单总额",
        "总金额", "应付金额", "金额", "合计",
    ),
    "order_id": (
        "order_id", "orderid", "order_no", "order_number", "invoiceno", "invoice_no",
        "invoice_id", "invoice", "transaction_id", "receipt_no",
        "订单编号", "订单号", "订单id", "主订单编号", "交易号", "交易编号", "流水号", "单号",
    ),
}
# fmt: on

_PAREN = re.compile(r"[（(\[【].*?[)）\]】]")
_SEP = re.compile(r"[\s\-./:：]+")


def normalise_name(name: object) -> str:
    """Header text reduced to what identifies it: case, width, spaces, units in brackets."""
    text = unicodedata.normalize("NFKC", str(name)).strip().lower()
    text = _PAREN.sub("", text)  # 实付金额(元) -> 实付金额
    text = _SEP.sub("_", text).strip("_")
    return text


def _key(name: str) -> str:
    return normalise_name(name).replace("_", "")


_RANK = {role: {_key(s): i for i, s in enumerate(words)} for role, words in SYNONYMS.items()}


def _best(role: str, columns: Sequence[str], taken: set[str]) -> str | None:
    ranked = [
        (_RANK[role][_key(c)], i, c)
        for i, c in enumerate(columns)
        if c not in taken and _key(c) in _RANK[role]
    ]
    return min(ranked)[2] if ranked else None


def header_score(cells: Sequence[object]) -> int:
    """How many of the required roles a candidate header row names (0–3)."""
    keys = {_key(c) for c in cells if c is not None and str(c).strip()}
    return sum(any(k in _RANK[role] for k in keys) for role in REQUIRED)


def recognise(columns: Sequence[str], *, source: str, **chosen: str | None) -> dict[str, str]:
    """Map each role to a column name: explicit choices first, then synonyms.

    Raises
    ------
    InputError
        A chosen column is not in the file, or a required role cannot be found; the message
        lists the columns that are there and how to name them.
    """
    found = ", ".join(columns)
    mapping: dict[str, str] = {}
    for role in ROLES:
        name = chosen.get(role)
        if name is None:
            continue
        if name not in columns:
            raise InputError(
                _(
                    "ingest.column_not_found",
                    file=source,
                    column=name,
                    role=_(f"role.{role}"),
                    found=found,
                ),
                file=source,
                column=name,
            )
        mapping[role] = name
    for role in ROLES:
        if role not in mapping:
            best = _best(role, columns, set(mapping.values()))
            if best is not None:
                mapping[role] = best
    missing = [role for role in REQUIRED if role not in mapping]
    if missing:
        raise InputError(
            _(
                "ingest.columns_unrecognised",
                file=source,
                found=found,
                roles=", ".join(_(f"role.{role}") for role in missing),
            ),
            file=source,
        )
    return mapping
