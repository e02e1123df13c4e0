"""Customer and order identifiers, kept as text and repaired where Excel damaged them.

An id is a label, not a number, but spreadsheets store digit-only ids as numbers and
export them damaged.  What can be undone is undone, and counted, so the report can say how
many ids were repaired:

- ``13812345678.0`` and ``SO500001.0`` (a number's text) become ``13812345678`` and
  ``SO500001``;
- ``1.3812345678E+10`` becomes ``13812345678``: scientific notation is exact when its last
  digit is the units digit;
- ids that lost their leading zeros (``123`` in a column of ``00123``, ``04567``, ...) are
  padded back: when most distinct all-digit ids share one width and some of those start
  with ``0``, shorter all-digit ids are padded to that width.

What cannot be undone is rejected as ``id_precision_lost`` rather than kept wrong, because
a wrong id silently merges or splits customers: ``1.38E+10`` (which of the 10⁸ ids it
could be is unknown) and any number of 16 or more significant digits (Excel keeps 15, so
``1234567890123456.0`` may not be the id that was typed).  Integer-typed columns are exact
by type and are kept digit for digit.

Besides repairs, ids are only stripped of surrounding whitespace and made half-width
(``Ｃ００１`` is ``C001``); letter case and inner spaces are kept.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from patron.ingest.cells import HALFWIDTH, as_array

__all__ = ["normalise_ids"]

MISSING = "id_missing"
PRECISION_LOST = "id_precision_lost"

_POINT_ZERO = re.compile(r"(?P<body>[A-Za-z0-9_-]*[0-9])\.0+", re.ASCII)
_SCIENTIFIC = re.compile(r"(?P<int>[0-9]+)(?:\.(?P<frac>[0-9]+))?[eE](?P<exp>[+-][0-9]+)", re.ASCII)
# Texts that need the Python path: anything beyond printable ASCII (full-width, inner
# spaces) and the shapes of Excel damage.  Everything else is already a clean id.
_NEEDS_WORK = r"[^!-~]|\.0+$|[0-9][eE][+-][0-9]+$"
_EXCEL_DIGITS = 15
_NO_TEXT = pa.scalar(None, pa.string())


def _normalise(text: str) -> tuple[str | None, str | None, bool]:
    """One id's text: ``(id, None, restored)`` or ``(None, reason, False)``."""
    text = text.translate(HALFWIDTH).strip()
    if not text:
        return None, MISSING, False
    if m := _POINT_ZERO.fullmatch(text):
        body = m["body"]
        if body.isdigit() and len(body.lstrip("0")) > _EXCEL_DIGITS:
            return None, PRECISION_LOST, False
        return body, None, True
    if m := _SCIENTIFIC.fullmatch(text):
        digits = m["int"] + (m["frac"] or "")
        exact = int(m["exp"]) == len(m["frac"] or "") and len(digits.lstrip("0")) <= _EXCEL_DIGITS
        if not exact:
            return None, PRECISION_LOST, False
        return digits.lstrip("0") or "0", None, True
    return text, None, False


def _float_text(value: float | None) -> str | None:
    if value is None or math.isnan(value):
        return None
    return repr(value)


def _pad_lost_zeros(ids: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Pad all-digit ids to the column's usual width when that width has leading zeros."""
    digits = pc.fill_null(pc.match_substring_regex(ids, r"^[0-9]+$"), False)
    distinct = pc.unique(ids.filter(digits))
    no_change = pa.array(np.zeros(len(ids), dtype=bool))
    if len(distinct) == 0:
        return ids, no_change
    widths = pc.utf8_length(distinct).to_numpy()
    counts = np.bincount(widths)
    width = int(counts.argmax())
    zero_led = pc.starts_with(distinct.filter(pc.equal(pc.utf8_length(distinct), width)), "0")
    if counts[width] * 2 <= len(distinct) or not pc.any(zero_led).as_py():
        return ids, no_change
    short = pc.and_(digits, pc.fill_null(pc.less(pc.utf8_length(ids), width), False))
    return pc.if_else(short, pc.utf8_lpad(ids, width, "0"), ids), short


def _normalise_strings(arr: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    text = pc.ascii_trim_whitespace(arr.cast(pa.string()))
    missing = pc.fill_null(pc.equal(pc.utf8_length(text), 0), True)
    work = pc.and_not(pc.fill_null(pc.match_substring_regex(text, _NEEDS_WORK), False), missing)
    ids = pc.if_else(missing, _NO_TEXT, text)
    reasons = pc.if_else(missing, MISSING, _NO_TEXT)
    restored = pa.array(np.zeros(len(text), dtype=bool))
    if pc.any(work).as_py():
        encoded = pc.if_else(work, text, _NO_TEXT).dictionary_encode()
        triples = [_normalise(s) for s in encoded.dictionary.to_pylist()]
        ids = pc.if_else(
            work, pa.array([t[0] for t in triples], pa.string()).take(encoded.indices), ids
        )
        reasons = pc.coalesce(
            reasons, pa.array([t[1] for t in triples], pa.string()).take(encoded.indices)
        )
        fixed = pa.array([t[2] for t in triples], pa.bool_()).take(encoded.indices)
        restored = pc.fill_null(fixed, False)
    return ids, reasons, restored


def normalise_ids(values: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array, int]:
    """Clean a column of ids and repair what Excel did to them.

    Parameters
    ----------
    values
        Text (``string``, ``large_string``, ``dictionary``), integers or floats; chunked or
        not.  A NaN in a float column is taken as an empty cell.

    Returns
    -------
    ids : pyarrow.Array
        ``string``, null where the id was rejected.
    reasons : pyarrow.Array
        ``string``, null where the id is good, else ``id_missing`` or ``id_precision_lost``.
    restored : int
        How many rows had their id repaired (each row counted once).

    Examples
    --------
    >>> ids, why, restored = normalise_ids(pa.array(["00123", "04567", "123", "1.38E+10"]))
    >>> ids.to_pylist(), why.to_pylist(), restored
    (['00123', '04567', '00123', None], [None, None, None, 'id_precision_lost'], 1)
    """
    values = as_array(values)
    kind = values.type
    if pa.types.is_dictionary(kind):
        values, kind = values.dictionary_decode(), kind.value_type
    if pa.types.is_integer(kind):
        ids = values.cast(pa.string())
        reasons = pc.if_else(pc.is_null(ids), MISSING, _NO_TEXT)
        restored = pa.array(np.zeros(len(ids), dtype=bool))
    elif pa.types.is_floating(kind):
        distinct = pc.unique(values)
        texts = pa.array([_float_text(v) for v in distinct.to_pylist()], pa.string())
        ids, reasons, restored = _normalise_strings(texts.take(pc.index_in(values, distinct)))
    elif pa.types.is_decimal(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind):
        ids, reasons, restored = _normalise_strings(values)
    elif pa.types.is_null(kind):
        ids, reasons, restored = _normalise_strings(values.cast(pa.string()))
    else:
        raise TypeError(f"cannot read identifiers from a column of type {kind}")
    ids, padded = _pad_lost_zeros(ids)
    return ids, reasons, pc.sum(pc.or_(restored, padded)).as_py() or 0
