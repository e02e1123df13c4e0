"""Money amounts as shops write them, parsed to float64.

Accepted, after surrounding whitespace is stripped and full-width characters are made
half-width (``￥１２３`` is ``¥123``):

- a number, with or without thousands separators: ``1234.5``, ``1,234.50``, ``.5``,
  ``12.``; the Python ``repr`` of an Excel number (``1.5e-05``);
- a currency before it (``¥``, ``$``, ``US$``, ``HK$``, ``€``, ``£``, ``RMB``, ``CNY``,
  ``USD``) and/or after it (``元``, ``RMB``, ``CNY``, ``USD``), spaces allowed;
- Chinese magnitudes ``万`` (10⁴) and ``亿`` (10⁸): ``1.2万`` is 12000, ``3亿元``;
- a sign: ``-12``, ``−12`` (Unicode minus), ``+12``, ``-¥12``, ``¥-12``, ``12-`` (SAP's
  trailing minus) or accounting parentheses ``(12.00)``; only one of them.

The currency is not converted or checked: a column is assumed to hold one currency.

Deliberately rejected as ``amount_unparseable``: a comma as the decimal mark.  ``1.234,50``
could only be read by guessing, and ``1,234`` (one thousand two hundred and thirty-four
here) would silently mean 1.234 in the same guess, so a comma is always a thousands
separator and must group exactly three digits (``1,23,4`` and the Indian ``1,23,456`` are
rejected).  Also rejected: ``1.2.3``, ``NaN``, ``inf``, a lone ``-``, two signs.

Values are exact to the cent where the text is: the scalar path computes in
:class:`decimal.Decimal` and rounds once to the nearest float, and the vectorised path
uses Arrow's correctly rounded text-to-double cast, so both give ``float("1234.5")``.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from patron.ingest.cells import HALFWIDTH, CellError, as_array

__all__ = ["AmountParseError", "parse_amount", "parse_amounts"]

MISSING = "amount_missing"
UNPARSEABLE = "amount_unparseable"

_HALFWIDTH = HALFWIDTH | {
    0xFFE5: 0xA5,  # full-width yen sign
    0x2212: 0x2D,  # minus sign
}
_AMOUNT = re.compile(
    r"(?P<open>\()?(?P<s1>[-+])?[ \t]*"
    r"(?P<cur>US\$|HK\$|RMB|CNY|USD|[$¥€£])?[ \t]*(?P<s2>[-+])?[ \t]*"
    r"(?:(?P<num>[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?|[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?P<exp>[eE][-+]?[0-9]{1,3})?)"
    r"[ \t]*(?P<unit>[万亿])?[ \t]*(?P<suffix>元|RMB|CNY|USD)?(?P<s3>-)?(?P<close>\))?",
    re.ASCII,
)
_UNIT_EXPONENT = {"万": 4, "亿": 8}
# Forms Arrow parses on its own; anything else is parsed once per distinct text.
_PLAIN = r"^-?[0-9]{1,15}(?:\.[0-9]{1,6})?$"
_DECORATED = (
    r"^(?:-[¥$￥]?|[¥$￥]-?)?(?:[0-9]{1,3}(?:,[0-9]{3}){1,4}|[0-9]{1,15})(?:\.[0-9]{1,6})?元?$"
)
_NO_TEXT = pa.scalar(None, pa.string())


class AmountParseError(CellError):
    """A cell that is not an amount; ``reason`` is one of the stable reason codes.

    Parameters
    ----------
    reason
        ``amount_missing`` or ``amount_unparseable``.
    value
        The text as given.
    """


def _parse(text: str) -> tuple[float | None, str | None]:
    """Parse one text; returns ``(value, None)`` or ``(None, reason)``, never raises."""
    text = text.translate(_HALFWIDTH).strip()
    if not text:
        return None, MISSING
    m = _AMOUNT.fullmatch(text)
    if m is None:
        return None, UNPARSEABLE
    signs = [s for s in (m["s1"], m["s2"], m["s3"]) if s]
    if (
        len(signs) > 1
        or bool(m["open"]) != bool(m["close"])
        or (m["open"] and signs)
        or (m["exp"] and ("," in m["num"] or m["unit"]))
    ):
        return None, UNPARSEABLE
    value = Decimal(m["num"].replace(",", "") + (m["exp"] or ""))
    if m["unit"]:
        value = value.scaleb(_UNIT_EXPONENT[m["unit"]])
    if m["open"] or signs == ["-"]:
        value = -value
    result = float(value)
    if not math.isfinite(result):
        return None, UNPARSEABLE
    return result, None


def parse_amount(text: str) -> float:
    """Parse one amount as a shop export writes it.

    Parameters
    ----------
    text
        The cell's text.

    Returns
    -------
    float
        Negative for ``-12``, ``12-`` and ``(12)``.

    Raises
    ------
    AmountParseError
        With ``reason`` ``amount_missing`` or ``amount_unparseable``.

    Examples
    --------
    >>> parse_amount("¥1,234.50"), parse_amount("1.2万元"), parse_amount("(12.00)")
    (1234.5, 12000.0, -12.0)
    """
    value, reason = _parse(text or "")
    if reason is not None:
        raise AmountParseError(reason, text)
    return value


def _parse_strings(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    text = pc.ascii_trim_whitespace(arr.cast(pa.string()))
    missing = pc.fill_null(pc.equal(pc.utf8_length(text), 0), True)
    todo = pc.invert(missing)
    result = pa.nulls(len(text), pa.float64())
    for pattern in (_PLAIN, _DECORATED):
        hit = pc.and_(todo, pc.fill_null(pc.match_substring_regex(text, pattern), False))
        if not pc.any(hit).as_py():
            continue
        candidates = text if pc.all(hit).as_py() else pc.if_else(hit, text, _NO_TEXT)
        if pattern is _DECORATED:
            for mark in (",", "¥", "$", "￥", "元"):  # literal passes beat one regex pass
                candidates = pc.replace_substring(candidates, mark, "")
        result = pc.coalesce(result, pc.cast(candidates, pa.float64()))
        todo = pc.and_not(todo, hit)
        if not pc.any(todo).as_py():
            break
    reasons = pa.nulls(len(text), pa.string())
    if pc.any(todo).as_py():
        encoded = pc.if_else(todo, text, _NO_TEXT).dictionary_encode()
        pairs = [_parse(s) for s in encoded.dictionary.to_pylist()]
        parsed = pa.array([v for v, _ in pairs], pa.float64()).take(encoded.indices)
        result = pc.coalesce(result, parsed)
        reasons = pa.array([r for _, r in pairs], pa.string()).take(encoded.indices)
    return result, pc.if_else(missing, MISSING, reasons)


def parse_amounts(values: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """Parse a column of amounts, with the reason for every value that is not one.

    Parameters
    ----------
    values
        Text (``string``, ``large_string``, ``dictionary``) or numbers; chunked or not.
        A NaN in a float column is taken as an empty cell (it is how pandas writes one);
        an infinity is unparseable.

    Returns
    -------
    amounts : pyarrow.Array
        ``float64``, null where the value was rejected.
    reasons : pyarrow.Array
        ``string``, null where the value was parsed, else a reason code.

    Examples
    --------
    >>> amounts, why = parse_amounts(pa.array(["1,234.50", "12-", None, "abc"]))
    >>> amounts.to_pylist(), why.to_pylist()
    ([1234.5, -12.0, None, None], [None, None, 'amount_missing', 'amount_unparseable'])
    """
    values = as_array(values)
    kind = values.type
    if pa.types.is_dictionary(kind):
        result, reasons = parse_amounts(values.dictionary)
        reasons = pc.if_else(pc.is_null(values.indices), MISSING, reasons.take(values.indices))
        return result.take(values.indices), reasons
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        result = pc.cast(values, pa.float64())
        missing = pc.fill_null(pc.is_nan(result), True)
        bad = pc.invert(pc.fill_null(pc.is_finite(result), False))
        result = pc.if_else(bad, pa.scalar(None, pa.float64()), result)
        reasons = pc.if_else(bad, UNPARSEABLE, _NO_TEXT)
        return result, pc.if_else(missing, MISSING, reasons)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind):
        return _parse_strings(values)
    raise TypeError(f"cannot read amounts from a column of type {kind}")
