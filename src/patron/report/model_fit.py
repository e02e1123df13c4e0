"""How well the models fit: repeat-purchase histogram, parameters, and the holdout backtest.

The backtest (``analysis.backtest``) comes from :mod:`patron.value.backtest`; it is read
defensively -- only the attributes named in its interface (``metrics``, ``tracking``,
``by_frequency``) and each one only when present -- so the report renders
whatever part of it exists.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from patron.models.inputs import distinct_values
from patron.report import charts
from patron.report.charts import Series
from patron.report.sections import Formats, col, t

if TYPE_CHECKING:
    from patron.value.analyze import Analysis

__all__ = ["model_title", "repeat_histogram", "parameters", "backtest"]

TITLES = {
    "bgnbd": "BG/NBD",
    "pnbd": "Pareto/NBD",
    "mbgnbd": "MBG/NBD",
    "gamma_gamma": "Gamma-Gamma",
}
BASELINES = ("naive",)
SYMBOLS = {"alpha": "α", "beta": "β", "gamma": "γ", "s": "s", "r": "r"}
MAX_REPEAT = 7


def model_title(name: str | None) -> str:
    """The name a paper gives the model (BG/NBD), the baseline's description, or the code."""
    if name in BASELINES:
        return t(f"fit.baseline.{name}")
    return TITLES.get(name or "", name or "")


def repeat_histogram(analysis: Analysis, f: Formats) -> dict[str, Any] | None:
    r"""Customers with 0, 1, ... 7+ repeat purchases: actual against the model's expectation.

    The expectation is :math:`\sum_i P(X(T_i) = x)`, evaluated once per distinct ``T``
    and weighted by how many customers share it.
    """
    model = analysis.purchase_model
    if model is None or not hasattr(model, "probability_of_purchases"):
        return None
    x = col(analysis, "frequency")
    T = col(analysis, "T")
    values, _index, weights = distinct_values(T)
    expected = [
        float(weights @ np.asarray(model.probability_of_purchases(values, k), dtype=float))
        for k in range(MAX_REPEAT)
    ]
    expected.append(len(x) - sum(expected))
    actual = [int((x == k).sum()) for k in range(MAX_REPEAT)] + [int((x >= MAX_REPEAT).sum())]
    labels = [str(k) for k in range(MAX_REPEAT)] + [f"{MAX_REPEAT}+"]
    chart = charts.bar_chart(
        labels,
        [Series(t("fit.actual"), actual), Series(t("fit.expected"), expected)],
        title=t("fit.repeat_chart"),
        x_label=t("fit.repeat_axis"),
        y_label=t("axis.customers"),
        y_format=f.count,
    )
    rows = [
        {"repeat": label, "actual": f.count(a), "expected": f.number(e, 1)}
        for label, a, e in zip(labels, actual, expected, strict=True)
    ]
    return {"chart": chart, "rows": rows}


def _parameter_rows(model: Any, f: Formats) -> list[dict[str, str]]:
    errors = getattr(model, "standard_errors_", None) or {}
    intervals = getattr(model, "confidence_intervals_", None) or {}
    rows = []
    for name, value in model.params_.items():
        low, high = intervals.get(name, (math.nan, math.nan))
        rows.append(
            {
                "name": SYMBOLS.get(name, name),
                "estimate": f.number(value, 4),
                "error": f.number(errors.get(name), 4),
                "interval": f"{f.number(low, 4)} – {f.number(high, 4)}",
            }
        )
    return rows


def parameters(analysis: Analysis, f: Formats) -> list[dict[str, Any]]:
    """One table per fitted model: estimates, standard errors and 95% intervals."""
    tables = []
    for model, name in (
        (analysis.purchase_model, analysis.model_name),
        (analysis.spend_model, "gamma_gamma"),
    ):
        if model is None:
            continue
        tables.append(
            {
                "title": model_title(name),
                "rows": _parameter_rows(model, f),
                "log_likelihood": f.number(getattr(model, "log_likelihood_", None), 2),
                "customers": f.count(getattr(model, "n_customers_", None)),
            }
        )
    return tables


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)


def _float(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


METRICS = ("predicted_total", "actual_total", "mae", "rmse", "correlation", "brier")


def _metric_rows(bt: Any, used: str | None, f: Formats) -> list[dict[str, Any]]:
    metrics = _get(bt, "metrics") or {}
    rows = []
    for name, m in metrics.items():
        values = {k: _float(_get(m, k)) for k in METRICS}
        predicted, actual = values["predicted_total"], values["actual_total"]
        error = (predicted - actual) / actual if predicted is not None and actual else None
        rows.append(
            {
                "model": model_title(name),
                "chosen": name == used,
                "predicted_total": f.number(predicted, 1),
                "actual_total": f.number(actual, 1),
                "error": f.percent(error),
                "mae": f.number(values["mae"], 3),
                "rmse": f.number(values["rmse"], 3),
                "correlation": f.number(values["correlation"], 3),
                "brier": f.number(values["brier"], 3),
            }
        )
    return rows


def _numbers(table: Any, name: str) -> list[float]:
    return [float("nan") if v is None else float(v) for v in table[name].to_pylist()]


def _predicted_columns(table: Any) -> list[str]:
    """The per-model columns of a backtest table: the floating ones besides ``actual``."""
    import pyarrow as pa

    return [
        field.name
        for field in table.schema
        if pa.types.is_floating(field.type) and field.name not in ("actual", "week")
    ]


def _is_table(table: Any, *columns: str) -> bool:
    names = getattr(table, "column_names", None)
    return names is not None and table.num_rows > 0 and all(c in names for c in columns)


def _tracking_chart(bt: Any, f: Formats) -> str | None:
    table = _get(bt, "tracking")
    if not _is_table(table, "week", "actual") or table.num_rows < 2:
        return None
    series = [Series(t("fit.actual"), _numbers(table, "actual"))]
    series += [
        Series(model_title(n), _numbers(table, n), dashed=True) for n in _predicted_columns(table)
    ]
    marks = []
    if "holdout" in table.column_names:
        calibration = [
            w
            for w, h in zip(_numbers(table, "week"), table["holdout"].to_pylist(), strict=True)
            if not h
        ]
        if calibration:
            marks.append((max(calibration), t("fit.calibration_end")))
    return charts.line_chart(
        _numbers(table, "week"),
        series,
        title=t("fit.tracking_chart"),
        x_label=t("fit.week"),
        y_label=t("fit.cumulative"),
        y_format=f.compact,
        marks=marks,
    )


def _by_frequency(bt: Any, f: Formats) -> dict[str, Any] | None:
    """FHL (2005) Figure 5: mean holdout purchases by calibration repeat purchases."""
    table = _get(bt, "by_frequency")
    if not _is_table(table, "frequency", "actual"):
        return None
    labels = [str(v) for v in table["frequency"].to_pylist()]
    models = _predicted_columns(table)
    zero = [0.0 if math.isnan(v) else v for v in _numbers(table, "actual")]
    series = [Series(t("fit.actual"), zero)]
    for name in models:
        series.append(
            Series(model_title(name), [0.0 if math.isnan(v) else v for v in _numbers(table, name)])
        )
    chart = charts.bar_chart(
        labels,
        series,
        title=t("fit.by_frequency_chart"),
        x_label=t("fit.repeat_axis"),
        y_label=t("fit.mean_holdout"),
        y_format=f.compact,
    )
    customers = table["customers"].to_pylist() if "customers" in table.column_names else None
    rows = []
    for i, label in enumerate(labels):
        rows.append(
            {
                "frequency": label,
                "customers": f.count(customers[i]) if customers else "",
                "values": [f.number(_numbers(table, c)[i], 2) for c in ("actual", *models)],
            }
        )
    return {
        "chart": chart,
        "header": [t("fit.actual"), *(model_title(m) for m in models)],
        "rows": rows,
    }


def backtest(analysis: Analysis, f: Formats) -> dict[str, Any] | None:
    """The holdout backtest's metrics, tracking plot and per-frequency table, if there is one.

    When no model could be fitted on the calibration period, only the reasons are shown:
    a baseline alone compares nothing.
    """
    bt = analysis.backtest
    if bt is None:
        return None
    # The model in use, which is not always the backtest's own pick: analyze ranks by its
    # own criterion and moves on to the next model when the best cannot be fitted on all
    # the data.
    used = analysis.model_name
    start, end = _get(bt, "calibration_end"), _get(bt, "observation_end")
    failures = _get(bt, "failures") or {}
    compared = any(name not in BASELINES for name in _get(bt, "metrics") or {})
    return {
        "chosen": model_title(used) if used else None,
        "period": {
            "start": str(start),
            "end": str(end),
            "customers": f.count(_get(bt, "customers")),
        }
        if start is not None and end is not None
        else None,
        "metrics": _metric_rows(bt, used, f) if compared else [],
        "tracking": _tracking_chart(bt, f) if compared else None,
        "by_frequency": _by_frequency(bt, f) if compared else None,
        "failures": [str(v) for v in failures.values()],
    }
