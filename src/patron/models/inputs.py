"""Customer data in, checked and compressed: what every model's ``fit`` does first.

Models accept numpy arrays, lists, pandas / polars Series and Arrow arrays, or a summary
table from :func:`patron.summarize`; all become float64 numpy arrays here.  A value that
cannot describe a customer (NaN, negative, recency after T) is an :class:`InputError`
naming the customer, never a NaN log-likelihood twenty iterations later.

Fitting then works on *distinct* histories with a count each (:func:`compress`), because
the likelihood of two customers with the same (x, t_x, T) is the same number: the cost of
a fit grows with distinct histories, not with customers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from patron.errors import InputError
from patron.i18n import _

__all__ = ["as_column", "columns_from", "check_counts", "check_histories", "compress", "Columns"]


def as_column(values: Any, name: str) -> np.ndarray:
    """One float64 array from any one-dimensional container (nulls become NaN)."""
    module = type(values).__module__.split(".")[0]
    if module == "pyarrow":
        import pyarrow as pa
        import pyarrow.compute as pc

        values = pc.cast(values, pa.float64())
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        values = values.to_numpy(zero_copy_only=False)
    elif module in ("pandas", "polars"):
        values = values.to_numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise InputError(_("models.not_one_dimensional", column=name), column=name)
    return array


@dataclass(frozen=True)
class Columns:
    """Named float arrays of equal length, and the customer ids for messages if known."""

    values: dict[str, np.ndarray]
    ids: np.ndarray | None = None

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[name]

    def __len__(self) -> int:
        return len(next(iter(self.values.values())))

    def who(self, row: int) -> str:
        """How a message names the customer on ``row``: their id when known."""
        if self.ids is not None:
            return _("models.customer", customer=self.ids[row])
        return _("models.row", row=row)


def columns_from(
    data: dict[str, Any], weights: Any = None, ids: Any = None
) -> tuple[Columns, np.ndarray]:
    """Convert and length-check the columns; weights default to one per row."""
    names = list(data)
    arrays = {name: as_column(values, name) for name, values in data.items()}
    first = names[0]
    m = len(arrays[first])
    if weights is not None:
        arrays["weights"] = as_column(weights, "weights")
    for name, array in arrays.items():
        if len(array) != m:
            raise InputError(
                _("models.length_mismatch", column=name, n=len(array), first=first, m=m),
                column=name,
            )
    if m == 0:
        raise InputError(_("models.empty"))
    w = arrays.pop("weights", None)
    if ids is not None:
        ids = np.asarray(_to_list(ids), dtype=object)
        if len(ids) != m:
            ids = None
    columns = Columns(arrays, ids)
    if w is None:
        w = np.ones(m)
    else:
        check_counts(columns, {"weights": w}, whole=False)
    return columns, w


def _to_list(values: Any) -> list:
    if hasattr(values, "to_pylist"):
        return values.to_pylist()
    if hasattr(values, "to_list"):
        return values.to_list()
    return list(values)


def _first_bad(mask: np.ndarray) -> int | None:
    bad = np.flatnonzero(mask)
    return int(bad[0]) if len(bad) else None


def check_counts(
    columns: Columns,
    arrays: dict[str, np.ndarray] | None = None,
    *,
    whole: Sequence[str] | bool = (),
) -> None:
    """Every value finite and non-negative; the ``whole`` columns integers."""
    arrays = columns.values if arrays is None else arrays
    for name, array in arrays.items():
        row = _first_bad(~np.isfinite(array))
        if row is not None:
            raise InputError(
                _("models.not_finite", who=columns.who(row), column=name, value=array[row]),
                column=name,
                value=array[row],
            )
        row = _first_bad(array < 0)
        if row is not None:
            raise InputError(
                _("models.negative", who=columns.who(row), column=name, value=array[row]),
                column=name,
                value=array[row],
            )
        if whole is True or (whole and name in whole):
            row = _first_bad(array != np.round(array))
            if row is not None:
                raise InputError(
                    _("models.not_whole", who=columns.who(row), column=name, value=array[row]),
                    column=name,
                    value=array[row],
                )


def check_histories(
    columns: Columns, model: str, *, end: str = "T", weights: np.ndarray | None = None
) -> None:
    """The checks every (frequency, recency, T)-style history must pass to be fitted.

    ``end`` names the observation-length column (``T``, or ``n_periods`` in discrete time).
    """
    check_counts(columns, whole=("frequency",) if end == "T" else ("frequency", "recency", end))
    x, t_x, T = columns["frequency"], columns["recency"], columns[end]
    tolerance = 1e-9 * np.maximum(1.0, T)
    row = _first_bad(t_x > T + tolerance)
    if row is not None:
        raise InputError(
            _("models.recency_after_T", who=columns.who(row), recency=t_x[row], end=end, T=T[row]),
            column="recency",
            value=t_x[row],
        )
    row = _first_bad((x == 0) & (t_x > 0))
    if row is not None:
        raise InputError(
            _("models.recency_without_repeat", who=columns.who(row), recency=t_x[row]),
            column="recency",
            value=t_x[row],
        )
    counted = x > 0 if weights is None else (x > 0) & (weights > 0)
    if not np.any(counted):
        raise InputError(_("models.no_repeat", model=model))


def compress(
    arrays: Sequence[np.ndarray], weights: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray]:
    """Distinct rows of ``arrays`` and the summed weight of each.

    Rows with zero weight are left out.  The order of the result is sorted, so a refit on
    the same data sees the same numbers in the same order and is deterministic.  Rows that
    already are distinct and sorted (a compressed table handed on) are returned as they are.
    """
    keep = weights > 0
    if not keep.any():
        return [a[:0] for a in arrays], weights[:0]
    if not keep.all():
        arrays = [a[keep] for a in arrays]
        weights = weights[keep]
    if _strictly_sorted(arrays):
        return list(arrays), weights
    if len(weights) > _HASH_FROM:
        columns, index = distinct_rows(arrays)
        return columns, np.bincount(index, weights, minlength=len(columns[0]))
    stacked = np.ascontiguousarray(np.column_stack(arrays))
    order = np.lexsort(stacked.T[::-1])
    stacked = stacked[order]
    new = np.empty(len(stacked), dtype=bool)
    new[0] = True
    np.any(stacked[1:] != stacked[:-1], axis=1, out=new[1:])
    starts = np.flatnonzero(new)
    counts = np.add.reduceat(weights[order], starts)
    unique = stacked[starts]
    return [np.ascontiguousarray(unique[:, j]) for j in range(unique.shape[1])], counts


def _strictly_sorted(arrays: Sequence[np.ndarray]) -> bool:
    """Whether the rows are in strictly increasing lexicographic order (so distinct)."""
    undecided = np.ones(len(arrays[0]) - 1, dtype=bool)
    for array in arrays:
        a, b = array[:-1][undecided], array[1:][undecided]
        if np.any(a > b):
            return False
        undecided[undecided] = a == b
        if not undecided.any():
            return True
    return not undecided.any()


# Above this many rows hashing beats sorting: on 1M rows of (x, t_x, T), Arrow's
# dictionary encoding and a bincount over the combined codes take ~0.05 s where numpy's
# lexsort takes ~0.3 s.
_HASH_FROM = 200_000


def distinct_values(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True, return_counts=True)``, by hashing.

    Arrow's hash encoding finds the distinct values and only those are sorted: customers
    share few values of orders, recency or T, so on millions of rows this is several
    times cheaper than sorting them all.  NaN is not allowed; -0.0 counts as 0.0.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    # + 0.0 turns -0.0 into 0.0, which hashing would otherwise keep apart.
    encoded = pc.dictionary_encode(pa.array(values + 0.0 if values.dtype.kind == "f" else values))
    distinct = encoded.dictionary.to_numpy(zero_copy_only=False)
    order = np.argsort(distinct, kind="stable")
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    index = position[encoded.indices.to_numpy()]
    return distinct[order], index, np.bincount(index, minlength=len(order))


def distinct_rows(arrays: Sequence[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Distinct rows of ``arrays`` in sorted order, and each row's index among them.

    Each column is dictionary-encoded (hashing) and its codes renumbered in value order,
    so one integer key per row sorts as the row does.  Counting the keys directly when
    their range is small, else sorting the keys (one int64 sort), is several times cheaper
    than sorting the rows.  Scoring computes this once and hands it to the fit, the values
    and the forecast.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    codes, values = [], []
    for array in arrays:
        encoded = pc.dictionary_encode(pa.array(array))
        dictionary = encoded.dictionary.to_numpy(zero_copy_only=False)
        order = np.argsort(dictionary, kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        codes.append(rank[encoded.indices.to_numpy()])  # codes in value order
        values.append(dictionary[order])
    sizes = [len(v) for v in values]
    if np.prod(np.array(sizes, dtype=np.float64)) >= 2.0**62:
        unique, index = factorize_rows(arrays)
        order = np.lexsort(unique[::-1])
        position = np.empty(len(order), dtype=np.int64)
        position[order] = np.arange(len(order))
        return [np.ascontiguousarray(u[order]) for u in unique], position[index]
    key = codes[0]
    for code, size in zip(codes[1:], sizes[1:], strict=True):
        key = key * size + code
    space = int(np.prod(np.array(sizes, dtype=np.int64)))
    if space <= max(4 * len(key), 1 << 24):
        seen = np.zeros(space, dtype=bool)
        seen[key] = True
        present = np.flatnonzero(seen)
        lookup = np.empty(space, dtype=np.int64)
        lookup[present] = np.arange(len(present))
        index = lookup[key]
    else:  # hash the keys, then sort only the distinct ones
        encoded = pc.dictionary_encode(pa.array(key))
        distinct = encoded.dictionary.to_numpy()
        order = np.argsort(distinct)
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        present, index = distinct[order], rank[encoded.indices.to_numpy()]
    columns, rest = [], present
    for size, vals in zip(sizes[::-1], values[::-1], strict=True):
        columns.append(vals[rest % size])
        rest = rest // size
    return columns[::-1], index.reshape(-1)


def factorize_rows(arrays: Sequence[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Distinct rows of ``arrays`` and, for every row, the index of its distinct row.

    Scoring evaluates the models once per distinct history and spreads the results back
    with the index; hashing (Arrow's dictionary encoding) keeps this linear in the rows.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    key = np.zeros(len(arrays[0]), dtype=np.int64)
    distinct = 1
    for array in arrays:
        encoded = pc.dictionary_encode(pa.array(array))
        codes = encoded.indices.to_numpy().astype(np.int64)
        if distinct * len(encoded.dictionary) >= 2**62:  # re-number before it overflows
            packed = pc.dictionary_encode(pa.array(key))
            key, distinct = packed.indices.to_numpy().astype(np.int64), len(packed.dictionary)
        key = key * len(encoded.dictionary) + codes
        distinct *= len(encoded.dictionary)
    encoded = pc.dictionary_encode(pa.array(key))
    index = encoded.indices.to_numpy()
    first = np.full(len(encoded.dictionary), -1, dtype=np.int64)
    first[index[::-1]] = np.arange(len(index))[::-1]
    return [array[first] for array in arrays], index
