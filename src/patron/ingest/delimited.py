"""CSV and TSV exports: encoding, delimiter, title rows above the header, line numbers.

Encodings are detected, never asked for: a BOM first, then strict UTF-8, then strict
GB18030.  Plain ``gbk`` is never tried: it decodes many UTF-8 byte runs into wrong Chinese
without an error, and it lacks rare name characters (䶮, 𠮷) that GB18030 has.  DuckDB cannot
read GBK offline, so non-UTF-8 text is transcoded here and Arrow reads UTF-8 only.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from patron.errors import InputError
from patron.i18n import _
from patron.ingest.columns import header_score
from patron.ingest.raw import RawTable, unique_names

__all__ = ["read_delimited", "decode"]

_HEADER_SCAN_LINES = 30
_DELIMITERS = (",", "\t", ";", "|")


def decode(data: bytes, file: str) -> tuple[bytes, str]:
    """Return the content as UTF-8 bytes (BOM removed) and the encoding it was in."""
    for bom, name in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                text = data.decode(name)
            except UnicodeDecodeError as exc:
                raise _undecodable(file, exc) from exc
            return text.lstrip("\ufeff").encode("utf-8"), name
    if b"\x00" in data[:8192]:
        raise InputError(_("ingest.not_a_table", file=file), file=file)
    try:
        data.decode("utf-8")
        return data, "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030").encode("utf-8"), "gb18030"
    except UnicodeDecodeError as exc:
        raise _undecodable(file, exc) from exc


def _undecodable(file: str, exc: UnicodeDecodeError) -> InputError:
    return InputError(_("ingest.undecodable", file=file, offset=exc.start), file=file)


def _sniff_delimiter(lines: list[str], suffix: str) -> str:
    """The delimiter, or ``WHITESPACE`` for columns aligned with spaces (as CDNOW's are)."""
    if suffix == ".tsv":
        return "\t"
    sample = [ln for ln in lines if ln.strip()][:10]
    best, best_score = ",", 0
    for d in _DELIMITERS:
        counts = [ln.count(d) for ln in sample]
        if counts and min(counts) > 0:
            score = sum(counts)
            if score > best_score:
                best, best_score = d, score
    if best_score == 0 and sample:
        widths = {len(ln.split()) for ln in sample}
        if len(widths) == 1 and widths.pop() >= 2:
            return WHITESPACE
    return best


# Columns separated by runs of spaces: read as tab-separated after squeezing each run.
WHITESPACE = " "


def _find_header(head: list[str], delimiter: str) -> int:
    """Index of the header line among the first lines: a row naming known columns wins."""
    rows = list(csv.reader(head, delimiter=delimiter))
    candidates = [(i, row) for i, row in enumerate(rows) if sum(bool(c.strip()) for c in row)]
    if not candidates:
        return -1
    for i, row in candidates:
        if header_score(row) >= 2:
            return i
    widest = max(len(row) for _, row in candidates)
    return next(i for i, row in candidates if len(row) == widest)


def read_delimited(path: Path) -> RawTable:
    """Read a delimited text export with every cell as text."""
    file = str(path)
    data, encoding = decode(path.read_bytes(), file)
    head = data[: 1 << 16].decode("utf-8", errors="ignore").splitlines()[:_HEADER_SCAN_LINES]
    delimiter = _sniff_delimiter(head, path.suffix.lower())
    if delimiter == WHITESPACE:
        data = re.sub(rb"[ \t]+", b"\t", re.sub(rb"(?m)^[ \t]+|[ \t]+(?=\r?$)", b"", data))
        head = [re.sub(r"\s+", "\t", ln.strip()) for ln in head]
        delimiter = "\t"
    header_index = _find_header(head, delimiter)
    if header_index < 0:
        raise InputError(_("ingest.empty", file=file), file=file)
    offset = 0
    for _i in range(header_index + 1):
        nl = data.find(b"\n", offset)
        offset = nl + 1 if nl >= 0 else len(data)
    header_line = header_index + 1
    names = unique_names(next(csv.reader([head[header_index]], delimiter=delimiter)))
    body = data[offset:]
    table, lines = _read_fast(body, names, delimiter, header_line)
    malformed: list[tuple[int, str]] = []
    if table is None:
        table, lines, malformed = _read_exact(body, names, delimiter, header_line)
    return RawTable(table, lines, file, encoding=encoding, malformed=malformed)


def _read_fast(body: bytes, names: list[str], delimiter: str, header_line: int):
    """Arrow's multithreaded reader; gives up (None) on ragged rows or quoted newlines."""
    bad: list[object] = []

    def on_invalid(row):
        bad.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(body),
            read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        return None, None
    if bad:
        return None, None
    buf = np.frombuffer(body, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], ends + 1))
    stops = np.concatenate((ends, [len(buf)]))
    # A line holding only "\r" or nothing is skipped by Arrow; so are we.
    length = stops - starts
    cr_only = (length == 1) & (buf[np.minimum(starts, max(len(buf) - 1, 0))] == 13)
    nonempty = np.flatnonzero((length > 0) & ~cr_only)
    if len(nonempty) != table.num_rows:
        return None, None  # quoted line breaks: count lines the slow, exact way
    return table, (nonempty + header_line + 1).astype(np.int64)


def _read_exact(body: bytes, names: list[str], delimiter: str, header_line: int):
    """Python's csv reader: knows each row's physical line, keeps ragged rows as rejects."""
    reader = csv.reader(io.StringIO(body.decode("utf-8"), newline=""), delimiter=delimiter)
    width = len(names)
    columns: list[list[str]] = [[] for _ in names]
    lines: list[int] = []
    malformed: list[tuple[int, str]] = []
    last = 0
    for row in reader:
        start = header_line + last + 1
        last = reader.line_num
        if not row:
            continue
        if len(row) != width:
            if any(c.strip() for c in row):
                malformed.append((start, delimiter.join(row)))
            continue
        for col, cell in zip(columns, row, strict=True):
            col.append(cell)
        lines.append(start)
    table = pa.table({n: pa.array(c, pa.string()) for n, c in zip(names, columns, strict=True)})
    return table, np.asarray(lines, dtype=np.int64), malformed
