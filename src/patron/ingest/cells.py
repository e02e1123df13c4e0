"""What the value parsers (dates, amounts, identifiers) share.

Each parser has a scalar function that raises a :class:`CellError` subclass and a column
function over Arrow arrays; both start from the same normalised text.
"""

from __future__ import annotations

import pyarrow as pa

from patron.errors import PatronError

__all__ = ["HALFWIDTH", "CellError", "as_array"]

# Full-width ASCII (Ｃ００１, ２０２４) and wide spaces as their ordinary forms: Chinese input
# methods type them, and to a reader they are the same characters.
HALFWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20, 0xA0: 0x20}


class CellError(ValueError, PatronError):
    """A cell that cannot be read; ``reason`` is a stable code, ``value`` the text given."""

    def __init__(self, reason: str, value: object) -> None:
        super().__init__(f"{reason}: {value!r}")
        self.reason = reason
        self.value = value


def as_array(values: object) -> pa.Array:
    """One contiguous Arrow array from an array, a chunked array or a Python sequence."""
    if not isinstance(values, pa.Array | pa.ChunkedArray):
        values = pa.array(values)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values
