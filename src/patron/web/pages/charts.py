"""The pages' charts: the report's inline-SVG helpers with the reader's labels.

No chart library and nothing fetched: :mod:`patron.report.charts` writes plain SVG that
scales with the page (a phone as well as a laptop) and uses the page's fonts, Chinese
included.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from markupsafe import Markup

from patron.i18n import _
from patron.report.charts import Series, bar_chart, line_chart
from patron.web.pages.render import Formats, label

__all__ = ["shares_chart", "score_history_chart", "forecast_chart"]


def _short_money(value: float) -> str:
    if abs(value) >= 10_000:
        return f"¥{value / 1000:,.0f}k"
    return f"¥{value:,.0f}"


def shares_chart(shares: Sequence[dict[str, Any]], kind: str, lang: str, title: str) -> Markup:
    """Customers per grade or stage (:func:`patron.crm.services.scoring.distribution`)."""
    labels = [label(kind, s["label"], lang) for s in shares]
    series = [Series(_("pages.dashboard.customers", lang=lang), [s["customers"] for s in shares])]
    svg = bar_chart(
        labels,
        series,
        title=title,
        y_label=_("pages.dashboard.customers", lang=lang),
        value_format=lambda v: f"{v:,.0f}",
        height=260,
    )
    return Markup(svg)


def score_history_chart(history: Sequence[dict[str, Any]], formats: Formats) -> Markup | None:
    """Predicted CLV at each scoring run, oldest first, with its 80% band when known.

    None for fewer than two runs: one point is no history (the table shows it).
    """
    points = [h for h in history if h.get("predicted_clv") is not None]
    points.sort(key=lambda h: h.get("run_id") or 0)
    if len(points) < 2:
        return None
    lang = formats.lang
    x = list(range(len(points)))
    values = [float(h["predicted_clv"]) for h in points]
    low = [_number(h.get("clv_low"), v) for h, v in zip(points, values, strict=True)]
    high = [_number(h.get("clv_high"), v) for h, v in zip(points, values, strict=True)]
    banded = any(lo != v or hi != v for lo, hi, v in zip(low, high, values, strict=True))
    series = Series(
        _("pages.customer.clv", lang=lang),
        values,
        low=low if banded else None,
        high=high if banded else None,
    )
    ticks = [(i, formats.day(_when(h))) for i, h in zip(x, points, strict=True)]
    if len(ticks) > 6:  # keep the dates readable on a phone
        step = math.ceil(len(ticks) / 6)
        ticks = ticks[::step]
    svg = line_chart(
        x,
        [series],
        title=_("pages.customer.history_title", lang=lang),
        y_label=_("pages.customer.clv", lang=lang),
        x_ticks=ticks,
        y_format=_short_money,
        points=True,
        width=720,
        height=260,
    )
    return Markup(svg)


def _when(h: dict[str, Any]) -> Any:
    """The date a score describes: the run's as-of date, else when it ran."""
    return h.get("as_of") or h.get("scored_at")


def _number(value: Any, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default


def forecast_chart(forecast: Sequence[dict[str, Any]] | None, formats: Formats) -> Markup | None:
    """A scoring run's revenue forecast per month, with its 80% band."""
    rows = [r for r in forecast or () if r.get("revenue") is not None]
    if len(rows) < 2:
        return None
    lang = formats.lang
    x = list(range(len(rows)))
    series = Series(
        _("pages.scoring.forecast_revenue", lang=lang),
        [_number(r.get("revenue"), 0.0) for r in rows],
        low=[_number(r.get("revenue_low"), _number(r.get("revenue"), 0.0)) for r in rows],
        high=[_number(r.get("revenue_high"), _number(r.get("revenue"), 0.0)) for r in rows],
    )
    step = max(math.ceil(len(rows) / 6), 1)
    ticks = [(i, str(r.get("start", ""))[:7]) for i, r in zip(x, rows, strict=True)][::step]
    svg = line_chart(
        x,
        [series],
        title=_("pages.scoring.forecast", lang=lang),
        y_label=_("pages.scoring.forecast_revenue", lang=lang),
        x_ticks=ticks,
        y_format=_short_money,
        width=720,
        height=260,
    )
    return Markup(svg)
