"""The report's sections as plain data: figures, table rows and charts from an Analysis.

Each function takes the analysis and the language's formats and returns what the template
shows, already formatted; charts are SVG strings from :mod:`patron.report.charts`.  When
no purchase model was fitted, sections that rank or weigh customers use historical spend
instead of predicted value and say so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from patron.i18n import _
from patron.report import charts, formats
from patron.report.charts import Series

if TYPE_CHECKING:
    from patron.value.analyze import Analysis

__all__ = [
    "Formats",
    "t",
    "header",
    "kpis",
    "grades",
    "stages",
    "distribution",
    "rfm",
    "forecast",
    "customer_tables",
    "ingest",
    "horizon_text",
]

PAIRED = 480  # viewBox width of the charts shown two side by side, so their text stays legible
STAGE_ORDER = ("new", "growing", "mature", "reactivated", "at_risk", "churned")
TABLE_ROWS = 20
TOP_SHARE = 0.20


def t(key: str, **values: object) -> str:
    """A message of the report's own catalogue section."""
    return _(f"report.html.{key}", **values)


@dataclass(frozen=True)
class Formats:
    """Number formats bound to one language."""

    lang: str

    def count(self, value: float | None) -> str:
        """A whole count."""
        return formats.count(value, self.lang)

    def amount(self, value: float | None) -> str:
        """A money amount, two decimals."""
        return formats.amount(value, self.lang)

    def percent(self, value: float | None, decimals: int = 1) -> str:
        """A share as a percentage."""
        return formats.percent(value, decimals, self.lang)

    def number(self, value: float | None, decimals: int = 2) -> str:
        """Any number."""
        return formats.number(value, decimals, self.lang)

    def compact(self, value: float) -> str:
        """An axis tick: grouped, decimals only where the scale needs them."""
        if not np.isfinite(value) or value == 0 or abs(value) >= 100 or value == int(value):
            return self.count(value)
        return self.number(value, 2 if abs(value) < 1 else 1)


def col(analysis: Analysis, name: str) -> np.ndarray:
    """One customer column as a numpy array (floats as float64, NaN for missing)."""
    column = analysis.customers[name]
    array = column.to_numpy(zero_copy_only=False)
    return array.astype(np.float64) if array.dtype.kind in "iuf" else array


def categories(analysis: Analysis, name: str) -> tuple[np.ndarray, list[str]]:
    """A label column as integer codes and the labels they stand for.

    Grouping by codes (``np.bincount``) is one pass over the customers where comparing
    millions of strings once per label is one pass per label.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    column = analysis.customers[name]
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    array = column.unify_dictionaries().combine_chunks()
    return array.indices.to_numpy(zero_copy_only=False), array.dictionary.to_pylist()


@dataclass(frozen=True)
class Groups:
    """Per-group counts and sums of customers grouped by integer codes."""

    codes: np.ndarray
    size: int

    def count(self) -> np.ndarray:
        """Customers in each group."""
        return np.bincount(self.codes, minlength=self.size)

    def sum(self, values: np.ndarray) -> np.ndarray:
        """Sum of the finite ``values`` in each group (NaN counts as 0, as nansum)."""
        finite = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        return np.bincount(self.codes, weights=finite, minlength=self.size)

    def mean(self, values: np.ndarray) -> np.ndarray:
        """Mean of the finite ``values`` in each group (NaN where there are none)."""
        known = np.bincount(self.codes, weights=np.isfinite(values), minlength=self.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(known > 0, self.sum(values) / known, np.nan)


def grouped(analysis: Analysis, name: str, order: list[str] | tuple[str, ...]) -> Groups:
    """Customers grouped by the labels of column ``name``, group ``i`` being ``order[i]``.

    Labels not in ``order`` fall into an extra last group.
    """
    codes, labels = categories(analysis, name)
    where = {label: i for i, label in enumerate(order)}
    remap = np.array([where.get(label, len(order)) for label in labels] or [0], dtype=np.int64)
    return Groups(remap[codes] if len(codes) else codes.astype(np.int64), len(order) + 1)


def has_model(analysis: Analysis) -> bool:
    """Whether predictions exist (a purchase model was fitted)."""
    return analysis.purchase_model is not None


def value_column(analysis: Analysis) -> str:
    """Predicted CLV when there is a model, else historical spend."""
    return "predicted_clv" if has_model(analysis) else "total_spend"


def horizon_text(text: str) -> str:
    """``"12M"`` as "12 months" / "12 个月" (the text as given if it is not a horizon)."""
    match = re.fullmatch(r"\s*(\d+)\s*([DWMY])\s*", str(text).upper())
    if not match:
        return str(text)
    n, unit = int(match.group(1)), match.group(2)
    return t(f"unit.{unit}_one") if n == 1 else t(f"unit.{unit}", n=n)


def header(analysis: Analysis, f: Formats) -> dict[str, Any]:
    """Title facts: the source, the date, the model and the value settings."""
    from patron.report.model_fit import model_title

    report = analysis.transactions.report
    return {
        "source": report.source,
        "as_of": analysis.as_of.isoformat(),
        "model": model_title(analysis.model_name) if has_model(analysis) else t("none"),
        "horizon": horizon_text(analysis.settings.horizon),
        "discount_rate": f.percent(analysis.settings.discount_rate, 0),
        "customers": f.count(analysis.kpis.get("customers")),
    }


def kpis(analysis: Analysis, f: Formats) -> list[dict[str, str]]:
    """The six KPI cards: label, value and a line saying what it counts."""
    k = analysis.kpis
    horizon = horizon_text(analysis.settings.horizon)
    values = {
        "customers": f.count(k.get("customers")),
        "active_share": f.percent(k.get("active_share")),
        "repeat_rate": f.percent(k.get("repeat_rate")),
        "revenue": f.amount(k.get("revenue")),
        "customer_equity": f.amount(k.get("customer_equity")),
        "top20_revenue_share": f.percent(k.get("top20_revenue_share")),
    }
    return [
        {
            "key": key,
            "label": t(f"kpi.{key}"),
            "value": value,
            "hint": t(f"kpi.{key}_hint", horizon=horizon),
        }
        for key, value in values.items()
    ]


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def grades(analysis: Analysis, f: Formats) -> dict[str, Any]:
    """Per grade: customers, revenue and predicted value, with their shares and a chart."""
    from patron.value.grades import grade_label

    rules = analysis.settings.grades
    groups = grouped(analysis, "grade", rules.names)
    spend = col(analysis, "total_spend")
    clv = col(analysis, "predicted_clv")
    model = has_model(analysis)
    n, revenue, equity = len(spend), spend.sum(), np.nansum(clv)
    counts, spends, clvs = groups.count(), groups.sum(spend), groups.sum(clv)
    mean_spends, mean_clvs = groups.mean(spend), groups.mean(clv)
    rows, shares = [], {"customers": [], "revenue": [], "clv": []}
    for i, _name in enumerate(rules.names):
        m = int(counts[i])
        row = {
            "grade": grade_label(i, rules),
            "customers": f.count(m),
            "customer_share": f.percent(_share(m, n)),
            "revenue": f.amount(spends[i]),
            "revenue_share": f.percent(_share(spends[i], revenue)),
            "mean_spend": f.amount(mean_spends[i] if m else None),
            "clv": f.amount(clvs[i] if model else None),
            "clv_share": f.percent(_share(clvs[i], equity) if model else None),
            "mean_clv": f.amount(mean_clvs[i] if model and m else None),
        }
        rows.append(row)
        shares["customers"].append(_share(m, n) or 0.0)
        shares["revenue"].append(_share(spends[i], revenue) or 0.0)
        shares["clv"].append(_share(clvs[i], equity) or 0.0 if model else 0.0)
    series = [
        Series(t("grades.share_customers"), shares["customers"]),
        Series(t("grades.share_revenue"), shares["revenue"]),
    ]
    if model:
        series.append(Series(t("grades.share_clv"), shares["clv"]))
    chart = charts.bar_chart(
        [r["grade"] for r in rows],
        series,
        title=t("grades.chart"),
        y_label=t("grades.share_axis"),
        y_format=lambda v: f.percent(v, 0),
        value_format=lambda v: f.percent(v, 0),
    )
    return {"rows": rows, "chart": chart}


def stages(analysis: Analysis, f: Formats) -> dict[str, Any]:
    """Customers per lifecycle stage, from new to churned."""
    groups = grouped(analysis, "lifecycle_stage", STAGE_ORDER)
    spend = col(analysis, "total_spend")
    n = len(spend)
    counts = [int(c) for c in groups.count()[: len(STAGE_ORDER)]]
    labels = [_(f"value.stage.{s}") for s in STAGE_ORDER]
    chart = charts.hbar_chart(
        labels,
        counts,
        title=t("stages.chart"),
        value_format=lambda v: f"{f.count(v)} ({f.percent(_share(v, n))})",
    )
    spends = groups.sum(spend)
    clvs = groups.sum(col(analysis, "predicted_clv"))
    rows = [
        {
            "stage": label,
            "customers": f.count(c),
            "share": f.percent(_share(c, n)),
            "revenue": f.amount(spends[i]),
            "clv": f.amount(clvs[i] if has_model(analysis) else None),
        }
        for i, (label, c) in enumerate(zip(labels, counts, strict=True))
    ]
    return {"chart": chart, "rows": rows}


def _bins(values: np.ndarray, bins: int = 24) -> tuple[np.ndarray, np.ndarray, bool]:
    """Histogram edges up to a round number near the 99th percentile, the rest in the last bin."""
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return np.array([0.0, 1.0]), np.array([0]), False
    lo = min(float(values.min()), 0.0)
    cap = float(np.quantile(values, 0.99))
    if cap <= lo:
        cap = float(values.max()) if values.max() > lo else lo + 1.0
    ticks = charts.nice_ticks(lo, cap, bins)
    edges = np.array(ticks if len(ticks) > 2 else [lo, cap])
    overflow = bool((values > edges[-1]).any())
    counts, _edges = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    return edges, counts, overflow


def _pareto(values: np.ndarray, points: int = 101) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative share of value held by the top x share of customers."""
    v = np.sort(np.nan_to_num(values, nan=0.0).clip(min=0))[::-1]
    x = np.linspace(0, 1, points)
    if v.sum() <= 0:
        return x, x.copy()
    cum = np.concatenate([[0.0], np.cumsum(v) / v.sum()])
    return x, np.interp(x * len(v), np.arange(len(v) + 1), cum)


def distribution(analysis: Analysis, f: Formats) -> dict[str, Any]:
    """Histogram of customer value and the Pareto curve of value against customers."""
    model = has_model(analysis)
    name = value_column(analysis)
    values = col(analysis, name)
    edges, counts, overflow = _bins(values)
    axis = t("axis.predicted_clv") if model else t("axis.total_spend")
    hist = charts.histogram(
        edges.tolist(),
        counts.tolist(),
        title=t("distribution.histogram"),
        x_label=axis,
        y_label=t("axis.customers"),
        x_format=f.compact,
        y_format=f.count,
        overflow=overflow,
        width=PAIRED,
    )
    x, spend_curve = _pareto(col(analysis, "total_spend"))
    series = [Series(t("distribution.revenue_curve"), spend_curve.tolist())]
    top = {"revenue": f.percent(float(np.interp(TOP_SHARE, x, spend_curve))), "clv": None}
    if model:
        _x, clv_curve = _pareto(values)
        series.insert(0, Series(t("distribution.clv_curve"), clv_curve.tolist()))
        top["clv"] = f.percent(float(np.interp(TOP_SHARE, x, clv_curve)))
    series.append(Series(t("distribution.equal"), x.tolist(), dashed=True))
    pareto = charts.line_chart(
        x.tolist(),
        series,
        title=t("distribution.pareto"),
        x_label=t("axis.share_customers"),
        y_label=t("axis.share_value"),
        x_format=lambda v: f.percent(v, 0),
        y_format=lambda v: f.percent(v, 0),
        y_domain=(0.0, 1.0),
        marks=[(TOP_SHARE, t("distribution.top_mark"))],
        width=PAIRED,
    )
    return {
        "histogram": hist,
        "pareto": pareto,
        "overflow_from": f.compact(edges[-1]) if overflow else None,
        "top": top,
    }


def rfm(analysis: Analysis, f: Formats) -> dict[str, Any]:
    """Recency score (rows, 5 = most recent at the top) by frequency score (columns)."""
    r, fr = col(analysis, "rfm_r"), col(analysis, "rfm_f")
    value = col(analysis, value_column(analysis))
    scores = range(1, 6)
    # Cell (5 - R, F - 1): recency 5 on the first row.
    cells = Groups(((5 - r) * 5 + (fr - 1)).astype(np.int64), 25)
    count_grid = cells.count().reshape(5, 5)
    mean_grid = cells.mean(value).reshape(5, 5)
    counts = [[int(c) for c in row] for row in count_grid]
    means = [
        [float(m) if c else np.nan for m, c in zip(mrow, crow, strict=True)]
        for mrow, crow in zip(mean_grid, count_grid, strict=True)
    ]
    legend = t("rfm.mean_clv") if has_model(analysis) else t("rfm.mean_spend")
    chart = charts.heatmap(
        [str(i) for i in reversed(scores)],
        [str(j) for j in scores],
        counts,
        means,
        title=t("rfm.chart"),
        row_title=t("rfm.recency"),
        col_title=t("rfm.frequency"),
        count_format=f.count,
        value_format=f.compact,
        legend_title=legend,
    )
    return {"chart": chart, "legend": legend}


def forecast(analysis: Analysis, f: Formats) -> dict[str, Any] | None:
    """Purchases and revenue per future period with the 80% band (None without a model)."""
    rows = analysis.forecast
    if not rows:
        return None
    steps = [r["step"] for r in rows]
    every = -(-len(rows) // 4)  # four dated ticks: steps are not calendar months
    ticks = [(r["step"], r["start"]) for r in rows[::every]]

    def chart(key: str, fmt) -> str:
        return charts.line_chart(
            steps,
            [
                Series(
                    t(f"forecast.{key}"),
                    [r[key] for r in rows],
                    low=[r[f"{key}_low"] for r in rows],
                    high=[r[f"{key}_high"] for r in rows],
                )
            ],
            title=t(f"forecast.{key}_chart"),
            x_label=t("forecast.period_start"),
            y_label=t(f"forecast.{key}"),
            x_ticks=ticks,
            y_format=fmt,
            points=True,
            width=PAIRED,
        )

    table = [
        {
            "start": r["start"],
            "purchases": f.number(r["purchases"], 1),
            "purchases_band": f"{f.number(r['purchases_low'], 1)} – "
            f"{f.number(r['purchases_high'], 1)}",
            "revenue": f.amount(r["revenue"]),
            "revenue_band": f"{f.amount(r['revenue_low'])} – {f.amount(r['revenue_high'])}",
        }
        for r in rows
    ]
    total = {
        "purchases": f.number(sum(r["purchases"] for r in rows), 1),
        "revenue": f.amount(sum(r["revenue"] for r in rows)),
    }
    return {
        "purchases_chart": chart("purchases", f.compact),
        "revenue_chart": chart("revenue", f.compact),
        "rows": table,
        "total": total,
        "periods": len(rows),
    }


def _customer_rows(analysis: Analysis, index: np.ndarray, f: Formats) -> list[dict[str, Any]]:
    """Rows of a customer table.

    Labels are translated here from the codes: the ``*_label`` columns are in the
    language that was in use when the analysis ran, not necessarily the report's.
    """
    from patron.value.actions import action_text
    from patron.value.grades import grade_label

    rules = analysis.settings.grades
    grade_names = {name: grade_label(i, rules) for i, name in enumerate(rules.names)}
    rows = []
    for k, row in enumerate(analysis.customers.take(index).to_pylist()):
        low, high = row["clv_low"], row["clv_high"]
        band = low is not None and high is not None and np.isfinite(low) and np.isfinite(high)
        rows.append(
            {
                "rank": k + 1,
                "customer_id": row["customer_id"],
                "grade": grade_names.get(row["grade"], row["grade"]),
                "stage": _message(f"value.stage.{row['lifecycle_stage']}", row["lifecycle_stage"]),
                "risk": _message(f"value.risk.{row['churn_risk']}", row["churn_risk"]),
                "orders": f.count(row["orders"]),
                "total_spend": f.amount(row["total_spend"]),
                "last_purchase": str(row["last_purchase"] or formats.MISSING),
                "clv": f.amount(row["predicted_clv"]),
                "clv_band": f"{f.amount(low)} – {f.amount(high)}" if band else formats.MISSING,
                "p_alive": f.percent(row["p_alive"], 0),
                "action": action_text(row["next_best_action"]),
            }
        )
    return rows


def _top_mask(values: np.ndarray) -> np.ndarray:
    """Customers in the top 20% of ``values`` (NaN never)."""
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(len(values), dtype=bool)
    cut = np.quantile(values[finite], 1 - TOP_SHARE)
    return finite & (values >= cut) & (values > 0)


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest values, largest first, ties in table order.

    What a stable descending argsort would start with, from a partition and a sort of the
    few candidates only.
    """
    if len(values) <= k:
        return np.argsort(-values, kind="stable")
    threshold = np.partition(values, len(values) - k)[len(values) - k]
    candidates = np.flatnonzero(values >= threshold)
    return candidates[np.argsort(-values[candidates], kind="stable")][:k]


def customer_tables(analysis: Analysis, f: Formats) -> dict[str, Any]:
    """The most valuable customers, and valuable customers at risk of leaving."""
    import pyarrow as pa
    import pyarrow.compute as pc

    value = col(analysis, value_column(analysis))
    spend = col(analysis, "total_spend")
    # Stable sorts: equal values keep the table's order, so the result is deterministic.
    order = _top(np.nan_to_num(value, nan=-np.inf), TABLE_ROWS)
    valuable = _top_mask(spend) | _top_mask(col(analysis, "predicted_clv"))
    table = analysis.customers
    leaving = pc.or_(
        pc.is_in(table["lifecycle_stage"], value_set=pa.array(["at_risk", "churned"])),
        pc.equal(table["churn_risk"], "high"),
    )
    leaving = leaving.to_numpy(zero_copy_only=False).astype(bool)
    at_risk = np.flatnonzero(valuable & leaving)
    at_risk = at_risk[np.argsort(-spend[at_risk], kind="stable")]
    return {
        "top": _customer_rows(analysis, order, f),
        "at_risk": _customer_rows(analysis, at_risk[:TABLE_ROWS], f),
        "at_risk_count": f.count(len(at_risk)),
        "at_risk_spend": f.amount(spend[at_risk].sum()),
        "at_risk_clv": f.amount(
            np.nansum(col(analysis, "predicted_clv")[at_risk]) if has_model(analysis) else None
        ),
        "rows": TABLE_ROWS,
    }


def _message(key: str, fallback: str) -> str:
    try:
        return _(key)
    except KeyError:
        return fallback


ROLES = {
    "customer_id": "role.customer",
    "ts": "role.date",
    "amount": "role.amount",
    "order_id": "role.order_id",
}


def ingest(analysis: Analysis, f: Formats) -> dict[str, Any]:
    """Where every input row went, why rows were rejected and which columns were used."""
    r = analysis.transactions.report
    items = [
        ("report.rows_read", f.count(r.rows_read)),
        ("report.purchases", f.count(r.purchases)),
        ("report.returns", f.count(r.returns)),
        ("report.duplicates", f.count(r.duplicates)),
        ("report.possible_duplicates", f.count(r.possible_duplicates)),
        ("report.rejected", f.count(r.rejected)),
        ("report.blank_rows", f.count(r.blank_rows)),
        ("report.ids_restored", f.count(r.ids_restored)),
        ("report.customers", f.count(r.customers)),
        ("report.encoding", r.encoding or formats.MISSING),
    ]
    if r.sheet is not None:
        items.append(("report.sheet", str(r.sheet)))
    reasons = sorted(r.rejected_by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "source": r.source,
        "items": [{"label": _(key), "value": value} for key, value in items],
        "reasons": [
            {"reason": _message(f"reason.{code}", code), "count": f.count(n)} for code, n in reasons
        ],
        "columns": [
            {"role": _message(ROLES.get(role, ""), role), "column": column}
            for role, column in r.columns.items()
        ],
    }
