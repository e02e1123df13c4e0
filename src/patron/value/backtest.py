r"""Holdout backtests: how well the purchase models predicted the user's own recent past.

The transactions are cut at ``calibration_end``; each candidate model is fitted on the
customers' histories up to the cut and predicts what each of them bought in the holdout,
``(calibration_end, observation_end]``, which has already happened.  Customers who first
bought in the holdout are outside the cohort, as in Fader, Hardie & Lee (2005).

Per model (and a naive baseline) over the cohort's customers:

- ``predicted_total`` / ``actual_total``: holdout repeat purchases, summed;
- ``mae`` / ``rmse``: mean absolute / root mean squared error of each customer's
  expected holdout purchases :math:`E[Y(t) \mid x, t_x, T]` against their actual count;
- ``correlation``: Pearson correlation of the two, per customer;
- ``brier``: mean squared difference between the probability that the customer buys at
  least once in the holdout and whether they did (0 is perfect; always saying 0.5 scores
  0.25).  The probability is

  .. math:: P(Y(t) > 0 \mid x, t_x, T) = P(\text{alive at } T)\,
            \big(1 - P(\text{no purchase in } (T, T+t] \mid \text{alive at } T)\big)

  Given alive at T, the purchase rate is :math:`\lambda \sim \mathrm{Gamma}(r+x,
  \alpha+T)`.  BG/NBD and MBG/NBD customers only leave right after a purchase, so one who
  buys nothing stays alive: :math:`P(\text{none}) = E[e^{-\lambda t}] =
  (\tfrac{\alpha+T}{\alpha+T+t})^{r+x}`.  A Pareto/NBD customer also has a remaining
  lifetime :math:`\tau \sim \mathrm{Exp}(\mu)`, :math:`\mu \sim \mathrm{Gamma}(s,
  \beta+T)`, and buys only while alive, so :math:`P(\text{none}) =
  E[e^{-\lambda \min(\tau, t)}]`, i.e.

  .. math:: 1 - P(\text{none}) = \int_0^t E[\lambda e^{-\lambda u}]\,E[e^{-\mu u}]\,du
            = \int_0^{v_t} \Big(\frac{\beta+T}{\beta+T+u(v)}\Big)^{s} dv,

  substituting :math:`v = 1 - (\tfrac{\alpha+T}{\alpha+T+u})^{r+x}` (the distribution
  of the time to the next purchase, were the customer immortal), which leaves a bounded
  integrand; tanh-sinh quadrature copes with its fractional power at :math:`v = 1`.

The naive baseline ("naive") expects every customer to go on buying at their calibration
rate, ``x / T`` per time unit: ``x / T * t`` purchases, and a Poisson chance
``1 - exp(-x / T * t)`` of buying at all.

``by_frequency`` is the paper's conditional-expectation check (FHL 2005, Figure 5): mean
actual and predicted holdout purchases by calibration frequency 0, 1, ..., 6, 7+.
``tracking`` is its Figure 3: week by week through calibration and holdout, the cohort's
actual cumulative repeat purchases against :math:`\sum_i E[X(s - T_{0i})]` for each model.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from patron.errors import ConvergenceError, InputError
from patron.i18n import _
from patron.value.analyze import MODELS

if TYPE_CHECKING:
    import pyarrow as pa
    from rich.table import Table

    from patron.ingest import Transactions

__all__ = [
    "Backtest",
    "backtest",
    "choose_model",
    "format_backtest",
    "probability_of_purchase",
    "METRICS",
]

METRICS = ("predicted_total", "actual_total", "mae", "rmse", "correlation", "brier")
NAIVE = "naive"
_EPOCH = dt.date(1970, 1, 1)
_WEEK = dt.timedelta(days=7)
_ONE_DAY = dt.timedelta(days=1)


@dataclass
class Backtest:
    """What a holdout backtest found (see the module docstring for the definitions).

    Attributes
    ----------
    calibration_end, observation_end
        The last days of the calibration and holdout periods.
    metrics
        Per fitted model and ``"naive"``: the values named in :data:`METRICS`.
    failures
        Per model that could not be fitted (or is not installed): the translated reason.
    fitted
        The models fitted on the calibration period.
    chosen
        The fitted model with the lowest per-customer RMSE (the earlier of ``models`` on a
        tie), or None when none could be fitted.  RMSE rather than MAE: most customers buy
        nothing in a holdout, so MAE rewards a model that forecasts too little, while CLV
        and the forecast are sums that the heavy buyers dominate, which RMSE weighs.
    by_frequency
        ``frequency`` ("0" ... "6", "7+"), ``customers``, ``actual`` and one column per
        fitted model and ``naive``: mean holdout purchases by calibration frequency.
    tracking
        ``week``, ``week_start``, ``holdout`` (whether the week is in the holdout),
        ``actual`` and one column per fitted model: cumulative repeat purchases of the
        cohort by the end of each week.
    models, time_unit, holdout_length, customers
        The candidates asked for, the time unit, the holdout length in it and the number
        of customers in the cohort.
    """

    calibration_end: dt.date
    observation_end: dt.date
    metrics: dict[str, dict[str, float]]
    failures: dict[str, str]
    fitted: dict[str, Any]
    chosen: str | None
    by_frequency: pa.Table
    tracking: pa.Table
    models: tuple[str, ...] = ()
    time_unit: str = "W"
    holdout_length: float = 0.0
    customers: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: dates as ISO text, tables as lists of rows, NaN as None."""
        return {
            "calibration_end": self.calibration_end.isoformat(),
            "observation_end": self.observation_end.isoformat(),
            "time_unit": self.time_unit,
            "holdout_length": self.holdout_length,
            "customers": self.customers,
            "models": list(self.models),
            "chosen": self.chosen,
            "metrics": {k: {m: _plain(v) for m, v in d.items()} for k, d in self.metrics.items()},
            "failures": dict(self.failures),
            "params": {k: dict(m.params_) for k, m in self.fitted.items()},
            "by_frequency": _rows(self.by_frequency),
            "tracking": _rows(self.tracking),
        }


def _plain(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items()} for row in table.to_pylist()]


# --------------------------------------------------------------------------- options


def _model_names(models: Any) -> tuple[str, ...]:
    names = (models,) if isinstance(models, str) else tuple(models)
    for name in names:
        if name not in MODELS:
            choices = ", ".join(MODELS)
            raise InputError(
                _("engine.bad_option", option="models", value=name, choices=choices),
                column="models",
                value=name,
            )
    return tuple(dict.fromkeys(names))


def _as_date(option: str, value: Any) -> dt.date | None:
    if value is None or (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    try:
        return dt.date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise InputError(
            _("engine.bad_date", option=option, value=value), column=option, value=value
        ) from None


def _holdout_days(holdout: str) -> int:
    from patron.value.clv import parse_horizon

    try:
        days = round(parse_horizon(holdout).days)  # a month is 365.25/12 days
    except InputError:
        raise InputError(
            _("backtest.bad_holdout", value=holdout), column="holdout", value=holdout
        ) from None
    return days


def _transactions(source: Any, **columns: str | None) -> Transactions:
    from patron.ingest import Transactions, read_transactions

    if isinstance(source, Transactions):
        return source
    return read_transactions(source, **columns)


@contextlib.contextmanager
def _purchases(tx: Transactions) -> Iterator[Any]:
    """A DuckDB connection where ``purchases`` is the transactions table.

    A clean Parquet file (``analyze`` leaves it in place) is read where it lies, so its
    rows are never loaded into Python.
    """
    import duckdb

    from patron.value.sources import CleanParquet

    with duckdb.connect() as con:
        if isinstance(tx, CleanParquet):
            path = str(tx.path).replace("'", "''")
            con.execute(
                "CREATE VIEW purchases AS SELECT customer_id, ts, amount "
                f"FROM read_parquet('{path}') WHERE {tx.sample_sql()}"
            )
        else:
            con.register("purchases", tx.to_arrow().select(["customer_id", "ts", "amount"]))
        yield con


def _dates(tx: Transactions, where: str = "TRUE") -> tuple[dt.date | None, dt.date | None]:
    """First and last day of the rows that satisfy ``where``."""
    with _purchases(tx) as con:
        query = f"SELECT min(CAST(ts AS DATE)), max(CAST(ts AS DATE)) FROM purchases WHERE {where}"
        first, last = con.execute(query).fetchone()
    return first, last


# --------------------------------------------------------------------------- predictions


def _label(name: str) -> str:
    return _(f"backtest.model.{name}")


def _fit(name: str, summary: pa.Table) -> tuple[Any, str | None]:
    """The fitted model, or None and the translated reason it could not be fitted."""
    import patron.models as models

    try:
        cls = getattr(models, MODELS[name])
    except ImportError as error:  # a model still being built is unavailable, not a crash
        return None, _("backtest.unavailable", model=_label(name), reason=str(error))
    try:
        return cls().fit_summary(summary), None
    except (InputError, ConvergenceError) as error:
        return None, _("backtest.fit_failed", model=_label(name), reason=str(error))


def probability_of_purchase(model: Any, t: float, x: Any, t_x: Any, T: Any) -> np.ndarray:
    """P(at least one purchase in ``(T, T + t]`` | x, t_x, T) (see the module docstring)."""
    from patron.models.beta_geo import BetaGeo

    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    alive = np.asarray(model.probability_alive(x, t_x, T), dtype=np.float64)
    p = model.params_
    shape, rate = p["r"] + x, p["alpha"] + T
    if isinstance(model, BetaGeo):  # also MBG/NBD
        buys = -np.expm1(shape * (np.log(rate) - np.log(rate + t)))
    elif type(model).__name__ == "ParetoNBD":
        buys = _pareto_buys(shape, rate, p["s"], p["beta"] + T, t)
    else:  # a model this module does not know: a bug, not a user's mistake
        raise TypeError(f"no P(no purchase | alive) for {type(model).__name__}")
    return alive * buys


def _pareto_buys(shape: np.ndarray, rate: np.ndarray, s: float, b: np.ndarray, t: float):
    """Pareto/NBD: P(a purchase in the next t | alive), by tanh-sinh quadrature over v.

    The integrand behaves like a fractional power of ``1 - v`` at ``v = 1``, which
    tanh-sinh nodes (step 1/8, 51 nodes) handle: against adaptive quadrature the error is
    below 1e-10 for x up to 1000, t up to 1e5 and s from 0.01 to 50.
    """
    k = np.arange(-25, 26) / 8
    y = np.pi / 2 * np.sinh(k)
    weights = np.pi / 16 * np.cosh(k) / np.cosh(y) ** 2
    log_q_t = shape * (np.log(rate) - np.log(rate + t))  # 1 - v_t, kept exact near v_t = 1
    v_t = -np.expm1(log_q_t)
    one_minus_v = np.exp(log_q_t)[:, None] + v_t[:, None] / (1 + np.exp(2 * y))
    u = rate[:, None] * np.expm1(-np.log(one_minus_v) / shape[:, None])
    survive = np.exp(-s * np.log1p(u / b[:, None]))
    return (survive @ weights) * v_t / 2


def _metrics(predicted: np.ndarray, probability: np.ndarray, actual: np.ndarray) -> dict:
    n = len(actual)
    error = predicted - actual
    bought = (actual > 0).astype(np.float64)
    nan = float("nan")
    correlation = nan
    if n > 1 and predicted.std() > 0 and actual.std() > 0:
        correlation = float(np.corrcoef(predicted, actual)[0, 1])
    return {
        "predicted_total": float(predicted.sum()),
        "actual_total": float(actual.sum()),
        "mae": float(np.abs(error).mean()) if n else nan,
        "rmse": float(np.sqrt((error**2).mean())) if n else nan,
        "correlation": correlation,
        "brier": float(((probability - bought) ** 2).mean()) if n else nan,
    }


def _predict(model: Any, t: float, x, t_x, T) -> tuple[np.ndarray, np.ndarray]:
    """Expected holdout purchases and P(any), evaluated once per distinct history."""
    from patron.models.inputs import factorize_rows

    if len(x) == 0:
        return np.zeros(0), np.zeros(0)
    (hx, htx, hT), index = factorize_rows([x, t_x, T])
    expected = np.asarray(model.conditional_expected_purchases(t, hx, htx, hT), dtype=float)
    probability = probability_of_purchase(model, t, hx, htx, hT)
    return expected[index], probability[index]


# --------------------------------------------------------------------------- tables


def _by_frequency(x: np.ndarray, actual: np.ndarray, predicted: dict[str, np.ndarray]):
    import pyarrow as pa

    group = np.minimum(x, 7).astype(np.int64)
    customers = np.bincount(group, minlength=8)[:8]

    def means(values: np.ndarray) -> list[float | None]:
        sums = np.bincount(group, weights=values, minlength=8)[:8]
        return [float(s / c) if c else None for s, c in zip(sums, customers, strict=True)]

    columns: dict[str, Any] = {
        "frequency": [str(k) for k in range(7)] + ["7+"],
        "customers": pa.array(customers, pa.int64()),
        "actual": pa.array(means(actual), pa.float64()),
    }
    for name, values in predicted.items():
        columns[name] = pa.array(means(values), pa.float64())
    return pa.table(columns)


def _repeat_days(tx: Transactions, period: str, observation_end: dt.date, cohort_end: dt.date):
    """Days on which the cohort's repeat purchase periods open, with how many on each.

    A repeat purchase period is one after the customer's first; it counts on its first
    purchase day.  The cohort is the customers whose first purchase is by ``cohort_end``.
    """
    key = {
        "D": "day - DATE '1970-01-01'",
        "W": "(day - DATE '1970-01-01' + 3) // 7",
        "M": "year(day) * 12 + month(day) - 1",
    }[period]
    query = f"""
        WITH p AS (
            SELECT customer_id, CAST(ts AS DATE) AS day FROM purchases
            WHERE amount >= 0 AND customer_id IS NOT NULL AND CAST(ts AS DATE) <= $end
        ), k AS (
            SELECT customer_id, {key} AS k, min(day) AS day FROM p GROUP BY ALL
        ), f AS (
            SELECT customer_id, min(k) AS k0, min(day) AS first_day FROM k GROUP BY ALL
        )
        SELECT k.day, count(*) AS n FROM k JOIN f USING (customer_id)
        WHERE k.k > f.k0 AND f.first_day <= $cohort_end
        GROUP BY k.day ORDER BY k.day
    """
    with _purchases(tx) as con:
        result = con.execute(query, {"end": observation_end, "cohort_end": cohort_end})
        rows = result.fetchall()
    days = np.array([d.toordinal() for d, _n in rows], dtype=np.int64)
    counts = np.array([n for _d, n in rows], dtype=np.int64)
    return days, counts


def _tracking(
    tx: Transactions,
    summary: pa.Table,
    fitted: dict[str, Any],
    *,
    calibration_end: dt.date,
    observation_end: dt.date,
    period: str,
    time_unit: str,
) -> pa.Table:
    """Weekly cumulative repeat purchases of the cohort, actual and expected (FHL Fig. 3).

    Weeks end on ``calibration_end`` (the first one may start before the first purchase);
    the last holdout week ends at ``observation_end``.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from patron.engine.periods import duration_value, period_index_of

    # Customers by first-purchase day: a few hundred days, however many customers.
    first_days = pc.cast(summary["first_purchase"].drop_null(), pa.int32()).to_numpy()
    day_numbers, day_counts = np.unique(first_days, return_counts=True)
    first = [_EPOCH + dt.timedelta(days=int(d)) for d in day_numbers]
    origin = min(first, default=calibration_end)
    n_cal = max(1, -(-((calibration_end - origin).days + 1) // 7))
    n_hold = -(-(observation_end - calibration_end).days // 7)
    ends = [calibration_end - _WEEK * (n_cal - k) for k in range(1, n_cal + 1)]
    ends += [min(calibration_end + _WEEK * j, observation_end) for j in range(1, n_hold + 1)]
    starts = [ends[0] - _WEEK + _ONE_DAY] + [e + _ONE_DAY for e in ends[:-1]]

    days, counts = _repeat_days(tx, period, observation_end, calibration_end)
    cumulative = np.concatenate([[0], np.cumsum(counts)])
    end_days = np.array([e.toordinal() for e in ends])
    actual = cumulative[np.searchsorted(days, end_days, side="right")]

    columns: dict[str, Any] = {
        "week": pa.array(np.arange(1, len(ends) + 1), pa.int64()),
        "week_start": pa.array(starts, pa.date32()),
        "holdout": pa.array([e > calibration_end for e in ends], pa.bool_()),
        "actual": pa.array(actual.astype(np.float64), pa.float64()),
    }
    if fitted:
        k_first = np.array([period_index_of(d, period) for d in first], dtype=np.int64)
        k0, where = np.unique(k_first, return_inverse=True)
        n0 = np.bincount(where, weights=day_counts, minlength=len(k0))
        k_end = np.array([period_index_of(e, period) for e in ends])
        elapsed = (k_end[:, None] - k0[None, :]) * duration_value(1, period, time_unit)
        for name, model in fitted.items():
            expected = np.asarray(model.expected_purchases(np.maximum(elapsed, 0.0)))
            expected = np.where(elapsed > 0, expected, 0.0) @ n0
            columns[name] = pa.array(np.asarray(expected, dtype=np.float64), pa.float64())
    return pa.table(columns)


# --------------------------------------------------------------------------- public


def backtest(
    source: Any,
    *,
    calibration_end: str | dt.date | None = None,
    holdout: str = "26W",
    observation_end: str | dt.date | None = None,
    period: str = "D",
    time_unit: str = "W",
    models: tuple[str, ...] = ("bgnbd", "pnbd", "mbgnbd"),
    customer: str | None = None,
    date: str | None = None,
    amount: str | None = None,
    max_customers: int | None = None,
) -> Backtest:
    """Fit the purchase models on a calibration period and score them on the holdout.

    Parameters
    ----------
    source
        A :class:`~patron.ingest.Transactions` or anything :func:`patron.read_transactions`
        reads (``customer``, ``date`` and ``amount`` name its columns when needed).
    calibration_end
        The last day of the calibration period; by default ``observation_end - holdout``.
    holdout
        The holdout length when ``calibration_end`` is not given: ``"26W"``, ``"6M"``
        (a month is 365.25/12 days), ``"90D"``.
    observation_end
        The last day of the holdout; by default the date of the last transaction.
    period, time_unit
        As for :func:`patron.summarize`.
    models
        The candidates, among ``bgnbd``, ``pnbd`` and ``mbgnbd``.
    max_customers
        Fit and score on a seeded random sample of this many customers when there are
        more (the tracking plot still counts everyone): the RMSEs of the candidates settle
        with tens of thousands of customers, not millions.

    Returns
    -------
    Backtest
        Metrics per fitted model and for the naive baseline; models that could not be
        fitted are in ``failures`` with the reason and left out of the comparison.

    Raises
    ------
    patron.InputError
        An unknown model name, a bad date or holdout, or a calibration end not before
        the observation end.

    Examples
    --------
    >>> import patron
    >>> bt = backtest(patron.datasets.cdnow(), calibration_end="1997-09-30",
    ...               observation_end="1998-06-30", models=("bgnbd",))
    >>> bt.chosen, bt.customers, bt.holdout_length
    ('bgnbd', 2357, 39.0)
    >>> {k: round(v, 3) for k, v in bt.metrics["bgnbd"].items()}  # doctest: +NORMALIZE_WHITESPACE
    {'predicted_total': 1653.409, 'actual_total': 1882.0, 'mae': 0.785, 'rmse': 1.608,
     'correlation': 0.626, 'brier': 0.161}
    >>> round(bt.metrics["naive"]["mae"], 3), round(bt.metrics["naive"]["brier"], 3)
    (1.024, 0.212)
    """
    from patron.engine import summarize
    from patron.engine.periods import duration_value, period_index_of
    from patron.value.sources import CleanParquet

    names = _model_names(models)
    end = _as_date("observation_end", observation_end)
    cal = _as_date("calibration_end", calibration_end)
    days = _holdout_days(holdout) if cal is None else 0
    tx = _transactions(source, customer=customer, date=date, amount=amount)
    if end is None:
        end = _dates(tx)[1]
        if end is None:
            raise InputError(_("engine.no_transactions"))
    if cal is None:
        cal = end - dt.timedelta(days=days)
    where: Any = tx.path if isinstance(tx, CleanParquet) else tx  # summarised in place
    if max_customers and isinstance(tx, CleanParquet):
        every = tx.report.customers // max_customers
        if every >= 2:
            # Millions of customers in a file: summarise a hash sample of them (whole
            # histories), so neither the summary nor the tracking scan aggregates them all.
            tx = CleanParquet(tx.path, tx.report, sample_every=every)
            where = tx.sampled_table()
    summary = summarize(where, period=period, time_unit=time_unit, as_of=end, calibration_end=cal)
    unit = summary.schema.metadata[b"patron.time_unit"].decode()
    everyone = summary
    if max_customers is not None and summary.num_rows > max_customers:
        rng = np.random.default_rng(0)
        keep = np.sort(rng.choice(summary.num_rows, max_customers, replace=False))
        summary = summary.take(keep)
    x, t_x, T, actual = (
        summary[c].to_numpy().astype(np.float64)
        for c in ("frequency", "recency", "T", "frequency_holdout")
    )
    span = period_index_of(end, period.upper()) - period_index_of(cal, period.upper())
    t = duration_value(span, period.upper(), unit)  # as summarize measures it

    fitted, failures, predicted, probability = {}, {}, {}, {}
    for name in names:
        model, why = _fit(name, summary)
        if model is None:
            failures[name] = why
            continue
        expected, chance = _predict(model, t, x, t_x, T)
        if not (np.isfinite(expected).all() and np.isfinite(chance).all()):
            failures[name] = _("backtest.not_finite", model=_label(name))
            continue
        fitted[name], predicted[name], probability[name] = model, expected, chance
    rate = np.divide(x, T, out=np.zeros_like(x), where=T > 0)
    predicted[NAIVE], probability[NAIVE] = rate * t, -np.expm1(-rate * t)
    metrics = {k: _metrics(predicted[k], probability[k], actual) for k in predicted}
    chosen = min(fitted, key=lambda k: metrics[k]["rmse"], default=None)  # first on ties

    return Backtest(
        calibration_end=cal,
        observation_end=end,
        metrics=metrics,
        failures=failures,
        fitted=fitted,
        chosen=chosen,
        by_frequency=_by_frequency(x, actual, predicted),
        tracking=_tracking(
            tx,
            everyone,
            fitted,
            calibration_end=cal,
            observation_end=end,
            period=period.upper(),
            time_unit=unit,
        ),
        models=names,
        time_unit=unit,
        holdout_length=t,
        customers=everyone.num_rows,
    )


# Customers the automatic model choice fits on, at most (a seeded random sample).
CHOICE_SAMPLE = 50_000


def choose_model(
    transactions: Any,
    as_of: str | dt.date,
    models: tuple[str, ...],
    *,
    first_purchase: dt.date | None = None,
) -> tuple[str | None, Backtest | None]:
    """The model that best predicted the last part of the data, and its backtest.

    The holdout is the last 26 weeks before ``as_of``, or the last third of the time since
    the first transaction when that is shorter.  Returns ``(None, backtest)`` when no
    model could be fitted on the rest, and ``(None, None)`` when the data span less than
    three days, too short to hold anything out.  ``first_purchase``, the first purchase
    day, saves a pass over the transactions when the caller knows it.
    """
    tx = _transactions(transactions)
    as_of = _as_date("as_of", as_of)
    first = first_purchase or _dates(tx, "amount >= 0")[0]
    if first is None:
        return None, None
    days = min(26 * 7, (as_of - first).days // 3)
    if days < 1:
        return None, None
    result = backtest(
        tx,
        calibration_end=as_of - dt.timedelta(days=days),
        observation_end=as_of,
        models=models,
        max_customers=CHOICE_SAMPLE,
    )
    return result.chosen, result


def format_backtest(bt: Backtest) -> Table:
    """The metrics as a rich table for the CLI; failures and the choice in the caption."""
    from rich.table import Table

    table = Table(
        title=_(
            "backtest.title",
            calibration_end=bt.calibration_end.isoformat(),
            observation_end=bt.observation_end.isoformat(),
            customers=bt.customers,
        )
    )
    table.add_column(_("backtest.column.model"))
    for metric in METRICS:
        table.add_column(_(f"backtest.column.{metric}"), justify="right")
    for name, values in bt.metrics.items():
        label = _label(name) + (" *" if name == bt.chosen else "")
        cells = [
            "-" if not math.isfinite(values[m]) else f"{values[m]:,.{0 if 'total' in m else 3}f}"
            for m in METRICS
        ]
        table.add_row(label, *cells)
    notes = [
        _("backtest.chosen", model=_label(bt.chosen)) if bt.chosen else _("backtest.none_chosen")
    ]
    notes += [_("backtest.failed", model=_label(k), reason=v) for k, v in bt.failures.items()]
    table.caption = "\n".join(notes)
    return table
