import datetime as dt

import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from patron.ingest.dates import DateParseError, parse_date, parse_dates

D = dt.datetime


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-05", D(2024, 3, 5)),
        ("2024-03-05 14:22", D(2024, 3, 5, 14, 22)),
        ("2024-03-05T14:22:01", D(2024, 3, 5, 14, 22, 1)),
        ("2024-03-05 14:22:01.5", D(2024, 3, 5, 14, 22, 1, 500000)),
        ("2024-03-05T14:22:01.123456789", D(2024, 3, 5, 14, 22, 1, 123456)),
        ("2024-03-05T14:22:01Z", D(2024, 3, 5, 14, 22, 1)),
        ("2024-03-05T14:22:01+08:00", D(2024, 3, 5, 6, 22, 1)),
        ("2024-03-05 14:22:01 +0800", D(2024, 3, 5, 6, 22, 1)),
        ("2024-03-05T01:00-05", D(2024, 3, 5, 6, 0)),
        ("2024-03-01T01:00+08:00", D(2024, 2, 29, 17, 0)),
        ("2024-3-5", D(2024, 3, 5)),
        ("2024/3/5", D(2024, 3, 5)),
        ("2024/03/05 14:22:01", D(2024, 3, 5, 14, 22, 1)),
        ("2024/3/5 8:05", D(2024, 3, 5, 8, 5)),
        ("2024.3.5", D(2024, 3, 5)),
        ("2024年3月5日", D(2024, 3, 5)),
        ("2024年3月5号", D(2024, 3, 5)),
        ("2024年3月5日 14:22", D(2024, 3, 5, 14, 22)),
        ("2024年3月5日14:22:01", D(2024, 3, 5, 14, 22, 1)),
        ("2024年3月5日14时22分", D(2024, 3, 5, 14, 22)),
        ("2024年3月5日 14时2分9秒", D(2024, 3, 5, 14, 2, 9)),
        ("2024年3月5日 14点", D(2024, 3, 5, 14, 0)),
        ("2024/3/5 下午 2:22", D(2024, 3, 5, 14, 22)),
        ("2024/3/5 上午12:05", D(2024, 3, 5, 0, 5)),
        ("3/5/2024 2:22:10 PM", D(2024, 3, 5, 14, 22, 10)),
        ("２０２４年３月５日", D(2024, 3, 5)),
        ("２０２４－０３－０５　１４：２２", D(2024, 3, 5, 14, 22)),
        ("  2024-03-05\t", D(2024, 3, 5)),
        ("\u30002024-03-05\u3000", D(2024, 3, 5)),
        ("20240305", D(2024, 3, 5)),
        ("45356", D(2024, 3, 5)),
        ("45356.0", D(2024, 3, 5)),
        ("45356.59861111111", D(2024, 3, 5, 14, 22)),
        ("3/5/2024", D(2024, 3, 5)),
        ("12/1/2010 8:26", D(2010, 12, 1, 8, 26)),
        ("05/03/2024", D(2024, 5, 3)),
        ("13/1/2024", D(2024, 1, 13)),
        ("5.3.2024 08:00", D(2024, 5, 3, 8, 0)),
    ],
)
def test_accepted_forms(text, expected):
    assert parse_date(text) == expected
    values, reasons = parse_dates(pa.array([text]))
    assert values.to_pylist() == [expected]
    assert reasons.to_pylist() == [None]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (None, "date_missing"),
        ("", "date_missing"),
        (" \t\u3000", "date_missing"),
        ("hello", "date_unparseable"),
        ("2024-03-05T", "date_unparseable"),
        ("2024/03-05", "date_unparseable"),
        ("2024/03/05T14:22", "date_unparseable"),
        ("2024-03-0514:22", "date_unparseable"),
        ("2024年3月5", "date_unparseable"),
        ("2024-03-05 14", "date_unparseable"),
        ("1/2/24", "date_unparseable"),
        ("5 Mar 2024", "date_unparseable"),
        ("18991231", "date_unparseable"),
        ("19999", "date_unparseable"),
        ("80001", "date_unparseable"),
        ("2024", "date_unparseable"),
        ("-45356", "date_unparseable"),
        ("2025年2月30日", "date_nonexistent"),
        ("2023-02-29", "date_nonexistent"),
        ("2025-13-01", "date_nonexistent"),
        ("2024-03-05 24:00", "date_nonexistent"),
        ("2024-03-05 23:61", "date_nonexistent"),
        ("2024-03-05 23:59:60", "date_nonexistent"),
        ("2024-03-05T10:00+24:00", "date_nonexistent"),
        ("0000-01-01", "date_nonexistent"),
        ("20241301", "date_nonexistent"),
        ("3/5/2024 13:00 PM", "date_nonexistent"),
        ("13/13/2024", "date_nonexistent"),
        ("2024年3月5日 14时61分", "date_nonexistent"),
    ],
)
def test_rejected_forms(text, reason):
    with pytest.raises(DateParseError) as info:
        parse_date(text)
    assert info.value.reason == reason
    assert isinstance(info.value, ValueError)
    values, reasons = parse_dates(pa.array([text], pa.string()))
    assert values.to_pylist() == [None]
    assert reasons.to_pylist() == [reason]


@pytest.mark.parametrize(
    ("text", "dayfirst", "expected"),
    [
        ("05/03/2024", True, D(2024, 3, 5)),
        ("05/03/2024", False, D(2024, 5, 3)),
        ("05/03/2024", None, D(2024, 5, 3)),
        ("25/03/2024", None, D(2024, 3, 25)),
        ("2024-03-05", True, D(2024, 3, 5)),
    ],
)
def test_dayfirst_scalar(text, dayfirst, expected):
    assert parse_date(text, dayfirst=dayfirst) == expected


def test_column_is_month_first_unless_a_first_field_exceeds_12():
    month_first, _ = parse_dates(pa.array(["12/1/2010 8:26", "3/5/2024"]))
    assert month_first.to_pylist() == [D(2010, 12, 1, 8, 26), D(2024, 3, 5)]
    day_first, why = parse_dates(
        pa.array(["12/1/2010 8:26", "3/5/2024", "25/12/2024", "1/13/2024"])
    )
    assert day_first.to_pylist()[:3] == [D(2010, 1, 12, 8, 26), D(2024, 5, 3), D(2024, 12, 25)]
    assert why.to_pylist() == [None, None, None, "date_nonexistent"]


def test_fast_and_slow_paths_meet_in_one_column():
    # Clean ISO rows take the Arrow path; the leap day, the padded and the Chinese rows
    # the Python one; the result must not depend on which.
    texts = ["2024-03-05 14:22:00"] * 5 + ["2024-02-29", " 2024-03-05 ", "2024年3月5日", None]
    values, reasons = parse_dates(pa.array(texts))
    assert values.to_pylist() == [D(2024, 3, 5, 14, 22)] * 5 + [
        D(2024, 2, 29),
        D(2024, 3, 5),
        D(2024, 3, 5),
        None,
    ]
    assert reasons.to_pylist() == [None] * 8 + ["date_missing"]


def test_text_types_and_chunks():
    texts = ["2024-03-05", "x", None]
    expected = [D(2024, 3, 5), None, None]
    for values in (
        pa.array(texts, pa.large_string()),
        pa.array(texts).dictionary_encode(),
        pa.chunked_array([pa.array(texts[:1]), pa.array(texts[1:])]),
        pa.chunked_array(
            [pa.array(texts[:1]).dictionary_encode(), pa.array(texts[1:]).dictionary_encode()]
        ),
        texts,
    ):
        result, reasons = parse_dates(values)
        assert isinstance(result, pa.Array)
        assert result.type == pa.timestamp("us")
        assert result.to_pylist() == expected
        assert reasons.to_pylist() == [None, "date_unparseable", "date_missing"]


def test_unused_dictionary_entries_do_not_sway_the_day_first_choice():
    column = pa.array(["13/1/2024", "3/5/2024"]).dictionary_encode().slice(1)
    assert parse_dates(column)[0].to_pylist() == [D(2024, 3, 5)]


def test_empty_and_all_null_columns():
    assert parse_dates(pa.array([], pa.string()))[0].to_pylist() == []
    result, reasons = parse_dates(pa.nulls(2))
    assert result.null_count == 2
    assert reasons.to_pylist() == ["date_missing"] * 2


def test_typed_timestamps_and_dates():
    aware = pa.array(
        [D(2024, 3, 5, 6, 22, tzinfo=dt.UTC), None], pa.timestamp("ns", "Asia/Shanghai")
    )
    result, reasons = parse_dates(aware)
    assert result.type == pa.timestamp("us")
    assert result.to_pylist() == [D(2024, 3, 5, 6, 22), None]
    assert reasons.to_pylist() == [None, "date_missing"]
    assert parse_dates(pa.array([dt.date(2024, 3, 5)]))[0].to_pylist() == [D(2024, 3, 5)]


def test_typed_numbers_are_excel_serials_or_yyyymmdd():
    numbers = pa.array([45356.59861111111, 61, 60.5, 2958465, 2958466, 20240305, 20241305, None])
    numbers = pa.chunked_array([numbers, pa.array([float("nan"), float("inf"), 20240305.5])])
    result, reasons = parse_dates(numbers)
    assert result.to_pylist()[:5] == [
        D(2024, 3, 5, 14, 22),
        D(1900, 3, 1),
        None,
        D(9999, 12, 31),
        None,
    ]
    assert result.to_pylist()[5] == D(2024, 3, 5)
    assert reasons.to_pylist() == [None, None, "date_unparseable", None, "date_unparseable", None,
                                   "date_nonexistent", "date_missing", "date_missing",
                                   "date_unparseable", "date_unparseable"]  # fmt: skip
    ints, _ = parse_dates(pa.array([45356, 20240305], pa.int32()))
    assert ints.to_pylist() == [D(2024, 3, 5), D(2024, 3, 5)]


def test_unsupported_type_is_a_type_error():
    with pytest.raises(TypeError):
        parse_dates(pa.array([True]))


# -- properties --------------------------------------------------------------------------

moments = st.datetimes(min_value=D(1900, 1, 1), max_value=D(2100, 12, 31))
to_minute = st.builds(lambda d: d.replace(second=0, microsecond=0), moments)
to_second = st.builds(lambda d: d.replace(microsecond=0), moments)
days = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31)).map(
    lambda d: D(d.year, d.month, d.day)
)
FULLWIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})
EPOCH = D(1899, 12, 30)


def _hour12(d):
    return f"{d.hour % 12 or 12}:{d.minute:02d}:{d.second:02d} {'PM' if d.hour >= 12 else 'AM'}"


FORMATS = [
    (moments, lambda d: d.isoformat(sep=" ", timespec="microseconds")),
    (moments, lambda d: d.isoformat(timespec="microseconds") + "Z"),
    (to_second, lambda d: d.strftime("%Y-%m-%dT%H:%M:%S")),
    (to_minute, lambda d: d.strftime("%Y-%m-%d %H:%M")),
    (days, lambda d: d.strftime("%Y-%m-%d")),
    (days, lambda d: f"{d.year}/{d.month}/{d.day}"),
    (to_second, lambda d: d.strftime("%Y/%m/%d %H:%M:%S")),
    (to_minute, lambda d: f"{d.year}/{d.month}/{d.day} {d.hour}:{d.minute:02d}"),
    (days, lambda d: f"{d.year}.{d.month}.{d.day}"),
    (days, lambda d: f"{d.year}年{d.month}月{d.day}日"),
    (to_minute, lambda d: f"{d.year}年{d.month}月{d.day}日 {d.hour}:{d.minute:02d}"),
    (to_second, lambda d: f"{d.year}年{d.month}月{d.day}日{d.hour}时{d.minute}分{d.second}秒"),
    (days, lambda d: f"{d.year}年{d.month}月{d.day}日".translate(FULLWIDTH)),
    (to_minute, lambda d: d.strftime("%Y-%m-%d %H:%M").translate(FULLWIDTH)),
    (days, lambda d: d.strftime("%Y%m%d")),
    (to_second, lambda d: f"{d.month}/{d.day}/{d.year} {_hour12(d)}"),
    (to_minute, lambda d: f" {d.month}/{d.day}/{d.year} {d.hour}:{d.minute:02d} "),
]


@given(st.data())
@settings(max_examples=300)
def test_round_trip_every_format(data):
    strategy, fmt = data.draw(st.sampled_from(FORMATS))
    value = data.draw(strategy)
    text = fmt(value)
    assert parse_date(text, dayfirst=False) == value
    assert parse_dates(pa.array([text, text]))[0].to_pylist() == [value, value]


@given(days, st.booleans())
def test_round_trip_day_or_month_first(value, dayfirst):
    first, second = (value.day, value.month) if dayfirst else (value.month, value.day)
    text = f"{first:02d}/{second:02d}/{value.year}"
    assert parse_date(text, dayfirst=dayfirst) == value


@given(moments, st.integers(-23 * 60 - 59, 23 * 60 + 59))
def test_round_trip_zone_offset(value, minutes):
    sign = "+" if minutes >= 0 else "-"
    zone = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    text = value.isoformat(timespec="microseconds") + zone
    expected = value - dt.timedelta(minutes=minutes)
    assert parse_date(text) == expected
    assert parse_dates(pa.array([text]))[0].to_pylist() == [expected]


@given(st.datetimes(min_value=D(1954, 10, 4), max_value=D(2119, 1, 9)))
def test_round_trip_excel_serial(value):
    value = value.replace(microsecond=value.microsecond // 1000 * 1000)
    serial = (value - EPOCH) / dt.timedelta(days=1)
    assert parse_date(repr(serial)) == value
    assert parse_dates(pa.array([serial]))[0].to_pylist() == [value]


@given(st.text())
@example("2024-02-30")
@example("１３/１/２０２４ 下午 13:00")
def test_arbitrary_text_raises_only_the_declared_error(text):
    try:
        value = parse_date(text)
    except DateParseError as error:
        assert error.reason in {"date_missing", "date_unparseable", "date_nonexistent"}
    else:
        assert isinstance(value, dt.datetime)


def _field(lo, hi, width):
    return st.integers(lo, hi).map(lambda n: f"{n:0{width}d}")


# Near misses around every boundary the fast path's regular expressions encode.
near_misses = st.builds(
    lambda y, mo, d, sep, time: f"{y}{sep}{mo}{sep}{d}{time}",
    _field(998, 3001, 4),
    _field(0, 13, 2) | st.integers(0, 13).map(str),
    _field(0, 32, 2) | st.integers(0, 32).map(str),
    st.sampled_from(["-", "/", ".", "-"]),
    st.sampled_from(
        [
            "",
            " 23:59",
            "T00:00:00",
            " 9:05",
            " 24:00",
            "T12:60",
            " 23:59:60",
            "T10:00:00.1234567",
            "T10:00Z",
            "T10:00+08:00",
            " 10:00 +2400",
        ]
    ),  # fmt: skip
)
day_month = st.builds(
    lambda a, b, y, t: f"{a}/{b}/{y}{t}",
    st.integers(0, 32),
    st.integers(0, 32),
    st.integers(1999, 2001),
    st.sampled_from(["", " 8:26"]),
)
chinese = st.builds(
    lambda y, mo, d: f"{y}年{mo}月{d}日",
    st.integers(1899, 2101),
    st.integers(0, 13),
    st.integers(0, 32),
)
cells = st.one_of(
    st.none(),
    st.text(max_size=12),
    near_misses,
    day_month,
    chinese,
    moments.map(lambda d: d.isoformat(sep=" ")),
    st.integers(0, 99_999_999).map(str),
    near_misses.map(lambda s: f" {s}\t"),
)


@given(st.lists(cells, max_size=40))
@settings(max_examples=300)
def test_column_equals_scalar_elementwise(texts):
    values, reasons = parse_dates(pa.array(texts, pa.string()))
    got = list(zip(values.to_pylist(), reasons.to_pylist(), strict=True))

    def scalar(text, dayfirst):
        try:
            return parse_date(text, dayfirst=dayfirst), None
        except DateParseError as error:
            return None, error.reason

    # One reading of day and month for the whole column, whichever it is.
    assert any(got == [scalar(t, dayfirst) for t in texts] for dayfirst in (False, True))
