import math
from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from patron.ingest.amounts import AmountParseError, parse_amount, parse_amounts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1234.5", 1234.5),
        ("0.1", 0.1),
        ("007", 7.0),
        (".5", 0.5),
        ("12.", 12.0),
        ("1,234.50", 1234.5),
        ("1,234,567", 1234567.0),
        ("¥1,234.50", 1234.5),
        ("￥１２３", 123.0),
        ("１，２３４．５", 1234.5),
        ("1234.5元", 1234.5),
        ("RMB 12", 12.0),
        ("12.00 CNY", 12.0),
        ("$1,234", 1234.0),
        ("US$12", 12.0),
        ("HK$ 12.5", 12.5),
        ("$12.00 USD", 12.0),
        ("1.2万", 12000.0),
        ("1.2万元", 12000.0),
        ("3亿", 300_000_000.0),
        ("-12", -12.0),
        ("\u221212", -12.0),
        ("(12.00)", -12.0),
        ("(¥1,234.50)", -1234.5),
        ("12-", -12.0),
        ("¥12-", -12.0),
        ("+12", 12.0),
        ("-¥12", -12.0),
        ("¥-12", -12.0),
        ("- ¥ 12", -12.0),
        ("1.5e-05", 1.5e-05),
        ("1E+3", 1000.0),
        ("  12.30\t", 12.3),
        ("\u300012", 12.0),
        ("0", 0.0),
    ],
)
def test_accepted_forms(text, expected):
    assert parse_amount(text) == expected
    values, reasons = parse_amounts(pa.array([text]))
    assert values.to_pylist() == [expected]
    assert reasons.to_pylist() == [None]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (None, "amount_missing"),
        ("", "amount_missing"),
        ("  \u3000", "amount_missing"),
        ("abc", "amount_unparseable"),
        ("1,23,4", "amount_unparseable"),
        ("1,23,456", "amount_unparseable"),
        ("12,5", "amount_unparseable"),
        ("1.234,50", "amount_unparseable"),
        ("1.2.3", "amount_unparseable"),
        ("NaN", "amount_unparseable"),
        ("nan", "amount_unparseable"),
        ("inf", "amount_unparseable"),
        ("-Infinity", "amount_unparseable"),
        ("1e400", "amount_unparseable"),
        ("-", "amount_unparseable"),
        ("--12", "amount_unparseable"),
        ("-12-", "amount_unparseable"),
        ("-¥-12", "amount_unparseable"),
        ("(-12)", "amount_unparseable"),
        ("(12", "amount_unparseable"),
        ("12)", "amount_unparseable"),
        ("1,234e5", "amount_unparseable"),
        ("1e5万", "amount_unparseable"),
        ("12 34", "amount_unparseable"),
        ("0x10", "amount_unparseable"),
        ("1_000", "amount_unparseable"),
        ("¥", "amount_unparseable"),
        ("万", "amount_unparseable"),
    ],
)
def test_rejected_forms(text, reason):
    with pytest.raises(AmountParseError) as info:
        parse_amount(text)
    assert info.value.reason == reason
    assert isinstance(info.value, ValueError)
    values, reasons = parse_amounts(pa.array([text], pa.string()))
    assert values.to_pylist() == [None]
    assert reasons.to_pylist() == [reason]


def test_scaled_units_are_exact():
    # 0.07 * 10**4 in binary floating point is 700.0000000000001.
    assert parse_amount("0.07万") == 700.0
    assert parse_amount("1.23456789亿") == 123456789.0


def test_text_types_and_chunks():
    texts = ["1,234.50", "x", None, "1,234.50"]
    for values in (
        pa.array(texts, pa.large_string()),
        pa.array(texts).dictionary_encode(),
        pa.chunked_array([pa.array(texts[:1]), pa.array(texts[1:])]),
        texts,
    ):
        result, reasons = parse_amounts(values)
        assert isinstance(result, pa.Array)
        assert result.type == pa.float64()
        assert result.to_pylist() == [1234.5, None, None, 1234.5]
        assert reasons.to_pylist() == [None, "amount_unparseable", "amount_missing", None]


def test_typed_numbers():
    result, reasons = parse_amounts(pa.array([12, None, -3], pa.int32()))
    assert result.to_pylist() == [12.0, None, -3.0]
    assert reasons.to_pylist() == [None, "amount_missing", None]
    result, reasons = parse_amounts(pa.array([1.5, float("nan"), float("inf"), None]))
    assert result.to_pylist() == [1.5, None, None, None]
    assert reasons.to_pylist() == [None, "amount_missing", "amount_unparseable", "amount_missing"]
    decimals = pa.array([Decimal("1234.50")], pa.decimal128(10, 2))
    assert parse_amounts(decimals)[0].to_pylist() == [1234.5]


def test_empty_and_all_null_columns():
    assert parse_amounts(pa.array([], pa.string()))[0].to_pylist() == []
    assert parse_amounts(pa.nulls(2))[1].to_pylist() == ["amount_missing"] * 2


def test_unsupported_type_is_a_type_error():
    with pytest.raises(TypeError):
        parse_amounts(pa.array([True]))


# -- properties --------------------------------------------------------------------------

cents = st.decimals(min_value=-(10**12), max_value=10**12, places=2, allow_nan=False)
FULLWIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})


def _neg(d: Decimal, text: str, style: str) -> str:
    if d >= 0:
        return text
    return {"lead": f"-{text}", "paren": f"({text})", "trail": f"{text}-",
            "minus": f"\u2212{text}"}[style]  # fmt: skip


STYLES = [
    lambda d: f"{d}",
    lambda d: f"{d:,}",
    lambda d: _neg(d, f"¥{abs(d):,}", "lead"),
    lambda d: _neg(d, f"¥{abs(d):,}", "paren"),
    lambda d: _neg(d, f"{abs(d)}", "trail"),
    lambda d: _neg(d, f"{abs(d):,}", "minus"),
    lambda d: _neg(d, f"{abs(d):,}元", "lead"),
    lambda d: _neg(d, f"RMB {abs(d):,}", "lead"),
    lambda d: _neg(d, f"{abs(d):,.2f} CNY", "lead"),
    lambda d: _neg(d, f"US${abs(d):,}", "paren"),
    lambda d: f"¥{d:,}" if d >= 0 else f"¥-{abs(d):,}",
    lambda d: f"{d.scaleb(-4):f}万",
    lambda d: f"{d.scaleb(-8):f}亿元",
    lambda d: f"￥{d}".translate(FULLWIDTH),
    lambda d: f"  {d:,}\t",
]


@given(cents, st.sampled_from(STYLES))
@settings(max_examples=300)
@example(Decimal("-0.07"), STYLES[11])
def test_round_trip_every_style(amount, style):
    text = style(amount)
    assert parse_amount(text) == float(amount)
    assert parse_amounts(pa.array([text]))[0].to_pylist() == [float(amount)]


@given(st.text())
@example("1" * 400)
@example("1e999亿")
def test_arbitrary_text_raises_only_the_declared_error(text):
    try:
        value = parse_amount(text)
    except AmountParseError as error:
        assert error.reason in {"amount_missing", "amount_unparseable"}
    else:
        assert math.isfinite(value)


# Near misses around every boundary the fast path's regular expressions encode.
near_misses = st.builds(
    "{}{}{}{}".format,
    st.sampled_from(["", "-", "+", "¥", "-¥", "¥-", "$", "￥", "(", "--", " "]),
    st.lists(st.text("0123456789", min_size=1, max_size=4), min_size=1, max_size=6).map(",".join),
    st.sampled_from(["", ".", ".5", ".123456", ".1234567", ".1.2"]),
    st.sampled_from(["", "元", "-", ")", "万", " "]),
)
cells = st.one_of(
    st.none(),
    near_misses,
    st.text("0123456789", min_size=14, max_size=17),
    st.text(max_size=10),
    st.text(alphabet="0123456789,.-+()¥$元万 e", max_size=12),
    cents.map(str),
    cents.map(lambda d: f"{d:,}"),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers().map(str),
)


@given(st.lists(cells, max_size=40))
@settings(max_examples=300)
def test_column_equals_scalar_elementwise(texts):
    values, reasons = parse_amounts(pa.array(texts, pa.string()))

    def scalar(text):
        try:
            return parse_amount(text), None
        except AmountParseError as error:
            return None, error.reason

    got = list(zip(values.to_pylist(), reasons.to_pylist(), strict=True))
    assert got == [scalar(t) for t in texts]
