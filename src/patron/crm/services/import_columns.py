"""The profile columns of an export (name, phone, email, channel, status, ...) and their values.

An order export carries more than the customer, time and amount that ingest reads: the
customer's name and phone on every row, the channel and the order status. They are found
by name in Chinese and English like ingest's columns (客户姓名, 手机号, 渠道, 订单状态), and
their values are made storable: phones restored from Excel's number form and normalised
for identity resolution, genders and statuses mapped to the store's codes, birthdays
parsed, texts trimmed to their column's length. Work is done once per distinct value, so
a million rows of a few hundred thousand customers cost a few hundred thousand calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from patron.ingest.columns import normalise_name

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["PROFILE_FIELDS", "find_columns", "profile_values", "order_statuses"]

# fmt: off
SYNONYMS: dict[str, tuple[str, ...]] = {
    "name": (
        "name", "customer_name", "full_name", "client_name", "member_name", "buyer_name",
        "姓名", "客户姓名", "客户名称", "会员姓名", "会员名称", "顾客姓名", "买家姓名", "收货人",
        "收货人姓名", "联系人", "名字",
    ),
    "phone": (
        "phone", "mobile", "phone_number", "mobile_phone", "mobile_number", "cellphone",
        "tel", "telephone", "contact_phone",
        "手机", "手机号", "手机号码", "电话", "电话号码", "联系电话", "联系方式", "收货人手机",
        "收货人电话", "会员手机",
    ),
    "email": ("email", "e_mail", "mail", "email_address", "邮箱", "电子邮箱", "邮件", "电子邮件"),
    "channel": (
        "channel", "sales_channel", "order_channel", "source_channel", "platform",
        "渠道", "销售渠道", "下单渠道", "来源渠道", "订单来源", "平台", "来源",
    ),
    "status": (
        "status", "order_status", "state", "订单状态", "交易状态", "状态",
    ),
    "region": (
        "region", "province", "city", "area", "地区", "省份", "城市", "所在地区", "区域",
        "收货地区", "省市",
    ),
    "gender": ("gender", "sex", "性别"),
    "birthday": (
        "birthday", "birth_date", "date_of_birth", "dob", "生日", "出生日期", "出生年月日",
    ),
}
# fmt: on

PROFILE_FIELDS = ("name", "phone", "email", "region", "gender", "birthday", "channel")

#: Column lengths of the store (customers and orders tables).
_LENGTHS = {"name": 128, "phone": 32, "email": 255, "region": 64, "channel": 32}

# fmt: off
_GENDERS = {
    "male": ("男", "男性", "先生", "m", "male", "man", "1"),
    "female": ("女", "女性", "女士", "f", "female", "woman", "2"),
    "other": ("其他", "other", "x", "diverse"),
}
_STATUSES = {
    "completed": (
        "已完成", "完成", "交易成功", "交易完成", "已付款", "已支付", "已发货", "已签收",
        "已收货", "completed", "complete", "paid", "shipped", "delivered", "done", "success",
    ),
    "refunded": (
        "已退款", "退款", "退款成功", "已退货", "退货", "部分退款", "refunded", "refund",
        "returned", "return",
    ),
    "cancelled": (
        "已取消", "取消", "交易关闭", "已关闭", "关闭", "cancelled", "canceled", "closed", "void",
    ),
    "pending": (
        "待付款", "待发货", "未付款", "待支付", "处理中", "pending", "processing", "unpaid",
    ),
}
# fmt: on


def _key(name: object) -> str:
    return normalise_name(name).replace("_", "")


_RANK = {f: {_key(s): i for i, s in enumerate(words)} for f, words in SYNONYMS.items()}
_GENDER = {_key(v): code for code, words in _GENDERS.items() for v in words}
_STATUS = {_key(v): code for code, words in _STATUSES.items() for v in words}


def find_columns(names: Sequence[str], *, taken: Sequence[str] = ()) -> dict[str, str]:
    """Map each profile field (and ``status``) to a column of ``names``, by synonym.

    Columns in ``taken`` (the ones ingest already used) are skipped, and each column
    serves one field.
    """
    used = set(taken)
    found: dict[str, str] = {}
    for field in SYNONYMS:
        ranked = [
            (_RANK[field][_key(c)], i, c)
            for i, c in enumerate(names)
            if c not in used and _key(c) in _RANK[field]
        ]
        if ranked:
            found[field] = min(ranked)[2]
            used.add(found[field])
    return found


def profile_values(table: pa.Table, columns: dict[str, str]) -> dict[str, pa.Array]:
    """The profile of each row, storable: one array per field present in ``columns``.

    Adds ``phone_norm`` and ``email_norm`` (identity keys) when there is a phone or email
    column. Blank cells are null; a gender or birthday that cannot be read is null too
    (it is not a reason to reject an order).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from patron.crm.contacts import normalise_email, normalise_phone

    out: dict[str, pa.Array] = {}
    for field, name in columns.items():
        if field == "status":
            continue
        column = _text(table[name])
        if field == "phone":
            from patron.ingest.identifiers import normalise_ids

            column = _blank_to_null(normalise_ids(column)[0])  # 1.38E+10, 13812345678.0
            out["phone_norm"] = _per_distinct(column, normalise_phone, pa.string())
        elif field == "email":
            out["email_norm"] = _per_distinct(column, normalise_email, pa.string())
        elif field == "gender":
            column = _per_distinct(column, lambda v: _GENDER.get(_key(v)), pa.string())
        elif field == "birthday":
            column = _birthdays(column)
        if field in _LENGTHS:
            column = pc.utf8_slice_codeunits(column, 0, _LENGTHS[field])
        out[field] = column
    return out


def order_statuses(table: pa.Table, column: str | None, amount: pa.Array) -> pa.Array:
    """Each order's status code; unknown or missing: refunded for a return, else completed."""
    import pyarrow as pa
    import pyarrow.compute as pc

    default = pc.if_else(pc.less(amount, 0), "refunded", "completed")
    if column is None:
        return default
    codes = _per_distinct(_text(table[column]), lambda v: _STATUS.get(_key(v)), pa.string())
    return pc.coalesce(codes, default)


def _text(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Trimmed text, blanks as null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if pa.types.is_floating(column.type):
        # A phone or id Excel stored as a number: 13812345678.0 is handled by normalise_ids.
        column = pc.cast(column, pa.string())
    column = pc.utf8_trim_whitespace(pc.cast(column, pa.string()))
    return _blank_to_null(column)


def _blank_to_null(column: pa.Array) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    blank = pc.fill_null(pc.equal(pc.utf8_length(column), 0), False)
    return pc.if_else(blank, pa.scalar(None, pa.string()), column)


def _per_distinct(column: pa.Array, fn: Callable[[str], object], kind: pa.DataType) -> pa.Array:
    """``fn`` applied once per distinct non-null value."""
    import pyarrow as pa

    encoded = column.dictionary_encode()
    values = [None if v is None else fn(v) for v in encoded.dictionary.to_pylist()]
    return pa.array(values, kind).take(encoded.indices)


def _birthdays(column: pa.Array) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    from patron.ingest.dates import parse_dates

    if len(column) == 0 or column.null_count == len(column):
        return pa.nulls(len(column), pa.date32())
    ts, _reason = parse_dates(column)
    return pc.cast(ts, pa.date32())
