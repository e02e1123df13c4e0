"""Dates and times as shops write them, parsed to naive timestamps.

Accepted, after surrounding whitespace is stripped and full-width characters are made
half-width (``２０２４年３月５日`` is ``2024年3月5日``):

- year first: ``2024-03-05``, ``2024/3/5``, ``2024.3.5``, ``2024年3月5日`` (or ``号``),
  optionally followed by a time ``14:22``, ``14:22:01``, ``14:22:01.123456`` (``T`` or a
  space before it; nothing needed after ``日``), ``14时22分``, ``14点``, ``下午 2:22``,
  ``2:22 PM``;
- a zone after the time (``Z``, ``+08:00``, ``+0800``, ``+08``): the value is converted to
  UTC and the zone dropped, so one column holds one kind of clock.  Values without a zone
  are kept as written (local wall-clock time);
- day or month first: ``3/5/2024``, ``12/1/2010 8:26``, ``05.03.2024``.  Which one is a
  property of the export, so :func:`parse_dates` decides per column: day first if any value
  starts with a number above 12, month first otherwise (the UCI Online Retail convention);
- ``20240305``: eight digits with a year in 1900-2100;
- Excel serial day numbers (1899-12-30 plus *n* days, the fraction is the time of day,
  rounded to the millisecond, Excel's own resolution).  As text only 20000-80000
  (1954-10-03 to 2119-01-11) counts, so that a year, an amount or a quantity that strayed
  into a date column is rejected instead of becoming a day in 1900.  Typed numbers (an
  Excel cell formatted as a number) may be anything from 61 to 2958465 (1900-03-01 to
  9999-12-31; Excel's serials below 61 count a 29 February 1900 that never was).

Deliberately not accepted: two-digit years (``3/5/24``), month names (``5 Mar 2024``),
times without a date, a time of ``24:00`` and leap seconds, and fractions of a second
beyond microseconds (truncated).

Columns are parsed in two steps, because files have millions of rows: the common clean
forms go through vectorised Arrow kernels (a regular expression that admits only real
calendar dates, then a cast or ``strptime``), and whatever is left is parsed in Python
once per distinct value.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from patron.ingest.cells import HALFWIDTH, CellError, as_array

__all__ = ["DateParseError", "parse_date", "parse_dates"]

MISSING = "date_missing"
UNPARSEABLE = "date_unparseable"
NONEXISTENT = "date_nonexistent"

_TS = pa.timestamp("us")
_NO_TEXT = pa.scalar(None, pa.string())
_EXCEL_EPOCH = dt.datetime(1899, 12, 30)
_MS_PER_DAY = 86_400_000
_EXCEL_TO_UNIX_DAYS = 25_569


class DateParseError(CellError):
    """A cell that is not a date; ``reason`` is one of the stable reason codes.

    Parameters
    ----------
    reason
        ``date_missing``, ``date_unparseable`` or ``date_nonexistent``.
    value
        The text as given.
    """


# One grammar, written once: group names are shared by the year-first and day/month-first
# patterns so that one function turns a match into a datetime.
_TIME = (
    r"(?P<H>[0-9]{1,2}):(?P<Mi>[0-9]{2})(?::(?P<S>[0-9]{2})(?:[.,](?P<F>[0-9]{1,9}))?)?"
    r"(?:[ \t]*(?P<ap>[AaPp][Mm]))?(?:[ \t]*(?P<tz>Z|[+-][0-9]{2}(?::?[0-9]{2})?))?"
)
_YMD = re.compile(
    r"(?P<y>[0-9]{4})(?P<s1>[-/.年])(?P<mo>[0-9]{1,2})(?P<s2>[-/.月])(?P<d>[0-9]{1,2})"
    r"(?P<e>日?)(?:(?P<g>T|[ \t]*)" + _TIME + ")?",
    re.ASCII,
)
_DMY = re.compile(
    r"(?P<a>[0-9]{1,2})(?P<s1>[-/.])(?P<b>[0-9]{1,2})(?P<s2>[-/.])(?P<y>[0-9]{4})"
    r"(?:[ \t]+" + _TIME + ")?",
    re.ASCII,
)
_COMPACT = re.compile(r"(?P<y>[0-9]{4})(?P<mo>[0-9]{2})(?P<d>[0-9]{2})", re.ASCII)
_SERIAL = re.compile(r"[0-9]{5}(?:\.[0-9]+)?", re.ASCII)
_CN_TIME = re.compile(r"([0-9]{1,2})[时点](?:([0-9]{1,2})分(?:([0-9]{1,2})秒)?)?$", re.ASCII)
_CN_HALF_DAY = re.compile(r"(上午|下午)[ \t]*([0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?)", re.ASCII)
_YMD_SEPARATORS = {("-", "-", ""), ("/", "/", ""), (".", ".", ""), ("年", "月", "日")}


def _clean(text: str) -> str:
    text = text.translate(HALFWIDTH).strip().replace("号", "日")
    if "时" in text or "点" in text:
        text = _CN_TIME.sub(
            lambda m: f"{m[1]}:{m[2] or '00':0>2}" + (f":{m[3]:0>2}" if m[3] else ""), text
        )
    if "午" in text:
        text = _CN_HALF_DAY.sub(lambda m: f"{m[2]} {'AM' if m[1] == '上午' else 'PM'}", text)
    return text


def _datetime(
    y: str, mo: str, d: str, m: re.Match | None = None
) -> tuple[dt.datetime | None, str | None]:
    """Build the datetime a match describes; the calendar decides what exists."""
    H = Mi = S = us = 0
    if m is not None and m["H"] is not None:
        H, Mi, S = int(m["H"]), int(m["Mi"]), int(m["S"] or 0)
        us = int(m["F"][:6].ljust(6, "0")) if m["F"] else 0
        if m["ap"]:
            if not 1 <= H <= 12:
                return None, NONEXISTENT
            H = H % 12 + (12 if m["ap"].lower() == "pm" else 0)
    try:
        value = dt.datetime(int(y), int(mo), int(d), H, Mi, S, us)
        tz = m["tz"] if m is not None else None
        if tz and tz != "Z":
            hours, minutes = int(tz[1:3]), (int(tz[-2:]) if len(tz) > 3 else 0)
            if hours > 23 or minutes > 59:
                return None, NONEXISTENT
            sign = 1 if tz[0] == "+" else -1
            value -= sign * dt.timedelta(hours=hours, minutes=minutes)
    except (ValueError, OverflowError):
        return None, NONEXISTENT
    return value, None


def _from_serial(days: float) -> dt.datetime:
    return _EXCEL_EPOCH + dt.timedelta(milliseconds=round(days * _MS_PER_DAY))


def _is_dayfirst(m: re.Match) -> bool:
    return m["s1"] == m["s2"] and int(m["a"]) > 12


def _parse_clean(text: str, dayfirst: bool | None) -> tuple[dt.datetime | None, str | None]:
    """Parse cleaned text; returns ``(value, None)`` or ``(None, reason)``, never raises."""
    if not text:
        return None, MISSING
    if m := _YMD.fullmatch(text):
        has_time = m["H"] is not None
        if (m["s1"], m["s2"], m["e"]) not in _YMD_SEPARATORS or (
            has_time and not (m["g"] or m["e"]) or (m["g"] == "T" and m["s1"] != "-")
        ):
            return None, UNPARSEABLE
        return _datetime(m["y"], m["mo"], m["d"], m)
    if m := _DMY.fullmatch(text):
        if m["s1"] != m["s2"]:
            return None, UNPARSEABLE
        if dayfirst is None:
            dayfirst = _is_dayfirst(m)
        day, month = (m["a"], m["b"]) if dayfirst else (m["b"], m["a"])
        return _datetime(m["y"], month, day, m)
    if m := _COMPACT.fullmatch(text):
        if not 1900 <= int(m["y"]) <= 2100:
            return None, UNPARSEABLE
        return _datetime(m["y"], m["mo"], m["d"])
    if _SERIAL.fullmatch(text) and 20_000 <= float(text) <= 80_000:
        return _from_serial(float(text)), None
    return None, UNPARSEABLE


def parse_date(text: str, *, dayfirst: bool | None = None) -> dt.datetime:
    """Parse one date as a shop export writes it.

    Parameters
    ----------
    text
        The cell's text.
    dayfirst
        How to read ``05/03/2024``: ``True`` for 5 March, ``False`` for 3 May.  ``None``
        reads it day first only when the first number cannot be a month, which is what
        :func:`parse_dates` does for a column of one value.

    Returns
    -------
    datetime.datetime
        Naive; a value written with a zone is converted to UTC.

    Raises
    ------
    DateParseError
        With ``reason`` ``date_missing``, ``date_unparseable`` or ``date_nonexistent``.

    Examples
    --------
    >>> parse_date("2024年3月5日 14:22")
    datetime.datetime(2024, 3, 5, 14, 22)
    >>> parse_date("2024-03-05T14:22:00+08:00")
    datetime.datetime(2024, 3, 5, 6, 22)
    >>> parse_date("2025-02-30")
    Traceback (most recent call last):
    ...
    patron.ingest.dates.DateParseError: date_nonexistent: '2025-02-30'
    """
    value, reason = _parse_clean(_clean(text or ""), dayfirst)
    if reason is not None:
        raise DateParseError(reason, text)
    return value


# -- columns -----------------------------------------------------------------------------

_Y = "[12][0-9]{3}"


def _month_day(sep: str, padded: bool) -> str:
    # Only dates that exist in every year, so that a cast cannot fail and strptime cannot
    # roll 30 February over into March; 29 February takes the slow, exact way.
    z = "0" if padded else "0?"
    upto28 = f"(?:{z}[1-9]|1[0-9]|2[0-8])"
    upto30 = f"(?:{z}[1-9]|[12][0-9]|30)"
    upto31 = f"(?:{z}[1-9]|[12][0-9]|3[01])"
    return f"(?:(?:{z}[13578]|1[02]){sep}{upto31}|(?:{z}[469]|11){sep}{upto30}|{z}2{sep}{upto28})"


def _fast_forms() -> list[tuple[str, str | pa.DataType]]:
    iso = f"{_Y}-{_month_day('-', True)}"
    iso_time = r"(?:[ T](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?)?"
    zone = "(?:Z|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)"
    forms: list[tuple[str, str | pa.DataType]] = [
        (f"^{iso}{iso_time}$", _TS),
        (f"^{iso}{iso_time[:-1]}{zone}$", pa.timestamp("us", "UTC")),
    ]
    hm = "(?:[01]?[0-9]|2[0-3]):[0-5][0-9]"
    dot = "\\."
    for date, fmt in (
        (f"{_Y}/{_month_day('/', False)}", "%Y/%m/%d"),
        (f"{_Y}-{_month_day('-', False)}", "%Y-%m-%d"),
        (f"{_Y}{dot}{_month_day(dot, False)}", "%Y.%m.%d"),
        (f"{_Y}年{_month_day('月', False)}日", "%Y年%m月%d日"),
    ):
        forms += [
            (f"^{date}$", fmt),
            (f"^{date} {hm}$", f"{fmt} %H:%M"),
            (f"^{date} {hm}:[0-5][0-9]$", f"{fmt} %H:%M:%S"),
        ]
    return forms


_FAST_FORMS = _fast_forms()
_FAST_RES = [re.compile(pattern, re.ASCII) for pattern, _ in _FAST_FORMS]


def _sample_forms(text: pa.Array) -> list[tuple[str, str | pa.DataType]]:
    """The fast forms seen in an even sample, most frequent first.

    Trying every form would cost a full regex pass each; a column almost always uses one
    or two.  A form missed by the sample is still parsed, only by the slow path.
    """
    n = len(text)
    sample = text.take(np.linspace(0, n - 1, min(n, 512)).astype(np.int64)).to_pylist()
    counts = [sum(1 for s in sample if s and r.match(s)) for r in _FAST_RES]
    order = sorted(range(len(counts)), key=lambda i: -counts[i])
    return [_FAST_FORMS[i] for i in order if counts[i]]


def _parse_strings(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    text = pc.ascii_trim_whitespace(arr.cast(pa.string()))
    missing = pc.fill_null(pc.equal(pc.utf8_length(text), 0), True)
    todo = pc.invert(missing)
    result = pa.nulls(len(text), _TS)
    for pattern, how in _sample_forms(text):
        hit = pc.and_(todo, pc.fill_null(pc.match_substring_regex(text, pattern), False))
        if not pc.any(hit).as_py():
            continue
        candidates = text if pc.all(hit).as_py() else pc.if_else(hit, text, _NO_TEXT)
        if isinstance(how, str):
            parsed = pc.strptime(candidates, format=how, unit="us", error_is_null=True)
        else:
            parsed = pc.cast(candidates, how).cast(_TS)
        result = pc.coalesce(result, parsed)
        todo = pc.and_not(todo, pc.is_valid(parsed))
        if not pc.any(todo).as_py():
            break
    reasons = pa.nulls(len(text), pa.string())
    if pc.any(todo).as_py():
        encoded = pc.if_else(todo, text, _NO_TEXT).dictionary_encode()
        cleaned = [_clean(s) for s in encoded.dictionary.to_pylist()]
        dayfirst = any(_is_dayfirst(m) for s in cleaned if (m := _DMY.fullmatch(s)))
        pairs = [_parse_clean(s, dayfirst) for s in cleaned]
        result = pc.coalesce(result, pa.array([v for v, _ in pairs], _TS).take(encoded.indices))
        reasons = pa.array([r for _, r in pairs], pa.string()).take(encoded.indices)
    return result, pc.if_else(missing, MISSING, reasons)


def _parse_numbers(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    days = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
    missing = np.isnan(days)  # nulls arrive as NaN; a NaN float is pandas' empty cell
    with np.errstate(invalid="ignore"):
        compact = (days >= 19_000_101) & (days <= 21_001_231) & (days == np.floor(days))
        serial = (days >= 61) & (days < 2_958_466)
    ms = np.round(np.where(serial, days, 0) * _MS_PER_DAY).astype(np.int64)
    us = (ms - _EXCEL_TO_UNIX_DAYS * _MS_PER_DAY) * 1000
    result = pa.array(us, _TS, mask=~serial)
    reasons = pa.array(np.where(missing, MISSING, UNPARSEABLE), pa.string(), mask=serial)
    if compact.any():
        texts = pa.array(np.where(compact, days, 0).astype(np.int64)).cast(pa.string())
        compact = pa.array(compact)
        c_values, c_reasons = _parse_strings(pc.if_else(compact, texts, _NO_TEXT))
        result = pc.coalesce(result, c_values)
        reasons = pc.if_else(compact, c_reasons, reasons)
    return result, reasons


def parse_dates(values: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """Parse a column of dates, with the reason for every value that is not one.

    Parameters
    ----------
    values
        Text (``string``, ``large_string``, ``dictionary``), numbers (Excel serials, or
        ``20240305`` as an integer), or already typed timestamps and dates; chunked or not.

    Returns
    -------
    timestamps : pyarrow.Array
        ``timestamp[us]``, null where the value was rejected.  Typed timestamps with a zone
        are converted to UTC, like text with a zone.
    reasons : pyarrow.Array
        ``string``, null where the value was parsed, else a reason code.

    Examples
    --------
    >>> ts, why = parse_dates(pa.array(["2024-03-05 14:22:00", "13/1/2024", "", "2025年2月30日"]))
    >>> ts.to_pylist()[:2]
    [datetime.datetime(2024, 3, 5, 14, 22), datetime.datetime(2024, 1, 13, 0, 0)]
    >>> why.to_pylist()
    [None, None, 'date_missing', 'date_nonexistent']
    """
    values = as_array(values)
    kind = values.type
    if pa.types.is_dictionary(kind) and pc.count_distinct(values.indices).as_py() == len(
        values.dictionary
    ):
        # Parse each distinct text once.  (Unused entries would sway the day-first choice,
        # so a dictionary with some is decoded instead.)
        result, reasons = parse_dates(values.dictionary)
        missing = pc.is_null(values.indices)
        reasons = pc.if_else(missing, MISSING, reasons.take(values.indices))
        return result.take(values.indices), reasons
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        result = pc.cast(values, _TS, safe=False)
        return result, pc.if_else(pc.is_null(result), MISSING, pa.scalar(None, pa.string()))
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return _parse_numbers(values)
    if pa.types.is_dictionary(kind):
        return parse_dates(values.dictionary_decode())
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind):
        return _parse_strings(values)
    raise TypeError(f"cannot read dates from a column of type {kind}")
