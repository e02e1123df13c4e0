"""The real data sets patron ships: CDNOW, the donations panel and sBG retention.

They are the original data of the papers whose tables the models must reproduce, so tests
and benchmarks can check patron against published figures instead of against itself.
Provenance of every file is in ``datasets/data/README.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from patron.errors import PatronError

if TYPE_CHECKING:
    import pyarrow as pa

    from patron.ingest.transactions import Transactions

__all__ = ["cdnow", "cdnow_path", "donations", "sbg_retention"]

_DATA = Path(__file__).parent / "data"

# Columns of each CDNOW file, in file order, and how many header tokens to skip.
_SAMPLE_COLUMNS = ("master_id", "customer_id", "date", "number_of_cds", "dollar_value")
_MASTER_COLUMNS = ("customer_id", "date", "number_of_cds", "dollar_value")


def cdnow_path(sample: bool = True) -> Path:
    """Path of the shipped CDNOW file.

    Parameters
    ----------
    sample
        ``True`` for the 1/10th sample of the BG/NBD paper (2,357 customers, no header),
        ``False`` for the full cohort (23,570 customers, one header line).

    Returns
    -------
    pathlib.Path
        The whitespace-separated text file, for readers that want the raw bytes (for
        example to benchmark a parser against patron's loader).

    Examples
    --------
    >>> from patron.datasets import cdnow_path
    >>> cdnow_path().name
    'cdnow_sample.txt'
    """
    return _DATA / ("cdnow_sample.txt" if sample else "cdnow_master.txt")


def cdnow(sample: bool = True) -> Transactions:
    """The CDNOW purchases, read through patron's own ingest.

    Going through :func:`patron.read_transactions` (not a private shortcut) means every
    model test that starts from CDNOW also exercises the path a user's export takes.

    Parameters
    ----------
    sample
        ``True`` (default) for the 6,919 purchases of the 2,357 customers in the BG/NBD
        paper's sample; ``False`` for the 69,659 purchases of all 23,570 customers.

    Returns
    -------
    Transactions
        ``customer_id`` (string: the paper's sample id ``0001``...``2357`` for the sample,
        with the master id kept in ``master_id``; the zero-padded master id for the full
        file), ``ts`` (timestamp[us], the purchase day at midnight), ``amount`` (float64,
        US dollars) and ``number_of_cds`` (int64). The file has no order id, so identical
        rows (several equal purchases on one day) are kept, as the paper counts them.

    Examples
    --------
    >>> from patron.datasets import cdnow
    >>> tx = cdnow()  # doctest: +SKIP
    >>> len(tx), tx.report.customers  # doctest: +SKIP
    (6919, 2357)
    """
    from patron.ingest import read_transactions

    return read_transactions(_cdnow_table(sample))


def _cdnow_table(sample: bool = True) -> pa.Table:
    """Parse a CDNOW file into the Arrow table handed to ingest.

    The files separate columns by runs of spaces, which pyarrow's CSV reader cannot
    express, so the text is split on whitespace and reshaped: 70k rows take milliseconds.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    path = cdnow_path(sample)
    columns = _SAMPLE_COLUMNS if sample else _MASTER_COLUMNS
    tokens = path.read_text(encoding="ascii").split()
    if not sample:
        tokens = tokens[len(columns) :]  # the header line
    if len(tokens) % len(columns):
        raise PatronError(f"{path}: {len(tokens)} fields do not split into {len(columns)} columns")
    cells = np.array(tokens, dtype=object).reshape(-1, len(columns))
    col = {name: cells[:, i] for i, name in enumerate(columns)}

    arrays = {}
    if sample:
        arrays["master_id"] = pa.array(col["master_id"], pa.string())
    arrays["customer_id"] = pa.array(col["customer_id"], pa.string())
    arrays["ts"] = pc.strptime(pa.array(col["date"], pa.string()), format="%Y%m%d", unit="us")
    arrays["amount"] = pa.array(col["dollar_value"].astype(np.float64), pa.float64())
    arrays["number_of_cds"] = pa.array(col["number_of_cds"].astype(np.int64), pa.int64())
    return pa.table(arrays)


def donations() -> pa.Table:
    """The donations panel of Fader, Hardie & Shang (2010), for the BG/BB model.

    Returns
    -------
    pyarrow.Table
        ``frequency``, ``recency``, ``periods`` and ``weights`` (int64): 22 distinct
        histories over 6 annual opportunities, weighting 11,104 donors in all. It is
        already the compressed sufficient statistics BG/BB is fitted on.

    Examples
    --------
    >>> from patron.datasets import donations
    >>> donations().num_rows
    22
    """
    return _read_csv("donations_summary.csv")


def sbg_retention() -> pa.Table:
    """The retention curves of Fader & Hardie (2007), for the shifted-beta-geometric model.

    Returns
    -------
    pyarrow.Table
        ``year`` (0-12), ``regular`` and ``high_end`` (int64): customers still active at the
        start of each year out of a cohort of 1,000. The paper fits years 1-7 and
        projects 8-12, so tests can check both the fit and the projection.

    Examples
    --------
    >>> from patron.datasets import sbg_retention
    >>> sbg_retention().column("regular")[1].as_py()
    631
    """
    return _read_csv("sbg_retention.csv")


def _read_csv(name: str) -> pa.Table:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(_DATA / name)
    # Counts are integers; say so instead of trusting type inference on a short file.
    return table.cast(pa.schema([(f.name, pa.int64()) for f in table.schema]))
