"""The scoring half of ``analyze``: models fitted, then every customer valued and labelled.

Spend is net of returns: returned amounts are spread over a customer's repeat purchases.
Customers whose net repeat spend is not positive are kept out of the Gamma-Gamma fit
(which needs positive spends) and valued with a mean spend of 0 in its posterior -- the
population's mean, shrunk towards 0 the more often they bought and returned; they are
counted in ``counts["spend_not_positive"]``.  Customers without a repeat purchase get the
population mean spend.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from patron.engine.periods import DAYS_PER_UNIT
from patron.errors import ConvergenceError, InputError
from patron.i18n import _
from patron.models.inputs import distinct_rows, distinct_values
from patron.value.actions import RISKS, action_codes, action_text, churn_risk
from patron.value.clv import customer_value, parse_horizon
from patron.value.grades import assign_grades, grade_label, shared_ranks, top_share
from patron.value.lifecycle import STAGES, lifecycle_stages
from patron.value.rfm import SEGMENTS, quintile_scores, rfm_segments

if TYPE_CHECKING:
    import pyarrow as pa

    from patron.value.analyze import Analysis

__all__ = ["score_customers", "TIME_UNIT"]

# The unit of recency, T and every model time: weeks, as in the papers.
TIME_UNIT = "W"


def _column(summary: pa.Table, name: str) -> np.ndarray:
    return summary[name].to_numpy(zero_copy_only=False).astype(np.float64)


def score_customers(
    analysis: Analysis,
    summary: pa.Table,
    gaps: np.ndarray,
    satisfaction: dict[str, float],
    step: Callable[[str], Any],
) -> None:
    """Fill ``analysis`` with the customer table, KPIs and forecast."""
    import pyarrow as pa

    settings = analysis.settings
    x, t_x, T = (_column(summary, k) for k in ("frequency", "recency", "T"))
    monetary = _column(summary, "monetary_value")
    returned = _column(summary, "returned_amount")
    total_spend = _column(summary, "total_spend")
    orders = _column(summary, "orders")
    ids = summary["customer_id"]
    n = len(x)
    horizon = parse_horizon(settings.horizon)

    with step("fit"):
        histories = distinct_rows([x, t_x, T])  # shared by the fit, the values, the forecast
        model, name = _purchase_model(analysis, summary, histories)
        net = np.where(x > 0, monetary - returned / np.maximum(x, 1), 0.0)
        spend_model = _spend_model(analysis, x, net)
    analysis.purchase_model, analysis.model_name, analysis.spend_model = model, name, spend_model
    analysis.counts = {
        "customers": n,
        "repeat_customers": int((x > 0).sum()),
        "spend_not_positive": int(((x > 0) & (net <= 0)).sum()),
    }

    with step("score"):
        spend, spend_second = _spend(spend_model, x, net, total_spend, orders)
        if model is not None:
            scores = customer_value(
                model,
                spend,
                (spend, spend_second),
                x,
                t_x,
                T,
                horizon=horizon,
                time_unit=TIME_UNIT,
                discount_rate=settings.discount_rate,
                histories=histories,
            )
            p_alive = scores.p_alive
            analysis.forecast = _forecast(model, scores, histories, horizon, analysis.as_of)
        else:
            scores = None
            p_alive = np.full(n, np.nan)

    with step("segment"), shared_ranks():
        recency_days = (T - t_x) * DAYS_PER_UNIT[TIME_UNIT]
        rfm_r = quintile_scores(-recency_days)
        rfm_f = quintile_scores(orders)
        rfm_m = quintile_scores(total_spend)
        segment = rfm_segments(rfm_r, rfm_f, rfm_m, codes=True)
        clv = scores.predicted_clv if scores is not None else np.full(n, np.nan)
        sat = None
        if satisfaction:
            sat = np.array([satisfaction.get(str(i), np.nan) for i in ids.to_pylist()])
        ingredients = {
            "predicted_clv": clv,
            "total_spend": total_spend,
            "repeat_rate": x / np.maximum(T, 1.0),
            "recency": -recency_days,
        }
        if sat is not None:
            ingredients["satisfaction"] = sat
        grade_index, composite = assign_grades(ingredients, settings.grades)
        rules = settings.grades
        stage_p_alive = np.where(np.isnan(p_alive), 1.0, p_alive)
        stage, overdue = lifecycle_stages(
            x, t_x, T, stage_p_alive, gaps, settings.lifecycle, codes=True
        )
        risk = churn_risk(stage_p_alive, overdue, settings.risk, settings.lifecycle, codes=True)
        spend_share = top_share(total_spend)
        action, actions = action_codes(
            grade_index,
            len(rules.names),
            stage,
            risk,
            spend_share,
            settings.playbook,
            rules.names,
        )
        grade_codes = pa.array(grade_index.astype(np.int32))
        reasons = _reasons(clv, total_spend, orders, recency_days)

    nan = np.full(n, np.nan)
    columns = {
        "customer_id": ids,
        "orders": summary["orders"],
        "total_spend": summary["total_spend"],
        "first_purchase": summary["first_purchase"],
        "last_purchase": summary["last_purchase"],
        "frequency": summary["frequency"],
        "recency": summary["recency"],
        "T": summary["T"],
        "monetary_value": summary["monetary_value"],
        "rfm_r": rfm_r,
        "rfm_f": rfm_f,
        "rfm_m": rfm_m,
        "rfm_segment": _coded(segment, SEGMENTS),
        "p_alive": p_alive,
        "expected_purchases": scores.expected_purchases if scores else nan,
        "expected_spend": spend,
        "predicted_clv": clv,
        "clv_low": scores.clv_low if scores else nan,
        "clv_high": scores.clv_high if scores else nan,
        "grade": pa.DictionaryArray.from_arrays(grade_codes, pa.array(rules.names, pa.string())),
        "lifecycle_stage": _coded(stage, STAGES),
        "churn_risk": _coded(risk, RISKS),
        "next_best_action": _coded(action, actions),
        "grade_reason": reasons,
        "grade_score": composite,
        "overdue": overdue,
        "grade_label": pa.DictionaryArray.from_arrays(
            grade_codes, pa.array([grade_label(i, rules) for i in range(len(rules.names))])
        ),
        "lifecycle_stage_label": _coded(stage, STAGES, "value.stage"),
        "churn_risk_label": _coded(risk, RISKS, "value.risk"),
        "rfm_segment_label": _coded(segment, SEGMENTS, "value.segment"),
        "next_best_action_text": _coded(action, actions, action_text),
    }
    analysis.customers = pa.table(
        {
            k: (v if isinstance(v, pa.ChunkedArray | pa.Array) else pa.array(v))
            for k, v in columns.items()
        }
    )
    analysis.kpis = _kpis(analysis.customers, total_spend, clv, stage)


def _coded(codes: np.ndarray, keys, text: str | Callable[[str], str] | None = None):
    """A dictionary-encoded text column from integer codes into ``keys``: the key, or its text.

    ``text`` is a catalogue section or a function of the key.  Built from the codes
    because turning millions of numpy strings into Arrow strings one by one took seconds
    per column.
    """
    import pyarrow as pa

    if text is None:
        labels = [str(k) for k in keys]
    elif isinstance(text, str):
        labels = [_(f"{text}.{k}") for k in keys]
    else:
        labels = [text(str(k)) for k in keys]
    indices = pa.array(np.asarray(codes, dtype=np.int32))
    return pa.DictionaryArray.from_arrays(indices, pa.array(labels, pa.string()))


def _reasons(clv: np.ndarray, spend: np.ndarray, orders: np.ndarray, recency_days: np.ndarray):
    """A short why for each grade: the value rank and the purchase count.

    Customers share a handful of (rank, count) pairs, so each text is written once and
    the column is dictionary-encoded.
    """
    import pyarrow as pa

    value = clv if np.isfinite(clv).any() else spend
    share = np.maximum(np.ceil(top_share(np.nan_to_num(value, nan=-np.inf))), 1).astype(np.int64)
    top = share <= 50
    rank = np.where(top, share, 101 - share)
    count = orders.astype(np.int64)
    key = (top * 101 + rank) * (int(count.max(initial=0)) + 1) + count
    _unique, index, _counts = distinct_values(key)
    first = np.empty(len(_unique), dtype=np.int64)
    first[index[::-1]] = np.arange(len(index))[::-1]  # each pair's first customer
    texts = []
    for i in first:
        side = "top" if top[i] else "bottom"
        text = _(f"value.reason.{side}_value", share=int(rank[i])) + "; "
        if count[i] == 1:
            text += _("value.reason.orders_one")
        else:
            text += _("value.reason.orders", orders=int(count[i]))
        texts.append(text)
    return pa.DictionaryArray.from_arrays(
        pa.array(index.astype(np.int32)), pa.array(texts, pa.string())
    )


def _purchase_model(
    analysis: Analysis, summary: pa.Table, histories: tuple[list[np.ndarray], np.ndarray]
) -> tuple[Any, str | None]:
    """The model asked for; with ``auto``, the backtest's best, then the next best.

    MBG/NBD is the fallback when the backtest could fit nothing (too short a history):
    unlike BG/NBD it lets one-time buyers fade, and it is the cheapest of the three.
    """
    from patron.value.analyze import MODELS, fit_purchase_model
    from patron.value.backtest import choose_model

    wanted = analysis.settings.model
    if wanted == "auto":
        import pyarrow.compute as pc

        first = pc.min(summary["first_purchase"]).as_py()
        name, backtest = choose_model(
            analysis.transactions, analysis.as_of, tuple(MODELS), first_purchase=first
        )
        analysis.backtest = backtest
        if backtest is not None and backtest.fitted:
            ranked = sorted(backtest.fitted, key=lambda k: backtest.metrics[k]["rmse"])
        else:
            ranked = ["mbgnbd"]
    else:
        ranked = [wanted]
    errors = []
    for name in ranked:
        try:
            model = fit_purchase_model(name, summary, histories)
        except (InputError, ConvergenceError) as error:
            errors.append(str(error))
            continue
        if wanted == "auto" and not (analysis.backtest and analysis.backtest.fitted):
            analysis.notes.append(_("value.no_backtest"))
        return model, name
    analysis.notes.append(_("value.no_model", reason=" ".join(errors)))
    return None, None


def _spend_model(analysis: Analysis, x: np.ndarray, net: np.ndarray) -> Any:
    from patron.models import GammaGamma

    keep = (x > 0) & (net > 0)
    if keep.sum() < 10:
        analysis.notes.append(_("value.no_spend_model", n=int(keep.sum())))
        return None
    try:
        return GammaGamma().fit(x[keep], net[keep])
    except (InputError, ConvergenceError) as error:
        analysis.notes.append(_("value.no_spend_model_error", reason=str(error)))
        return None


def _spend(
    model: Any, x: np.ndarray, net: np.ndarray, total_spend: np.ndarray, orders: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Expected spend per purchase and its second moment (Gamma-Gamma's posterior)."""
    if model is None or not model.params_["q"] > 2:
        mean = max(float(total_spend.sum() / max(orders.sum(), 1)), 0.0)
        spend = np.full(len(x), mean)
        return spend, spend**2
    spend = np.asarray(model.conditional_expected_spend(x, np.maximum(net, 0.0)))
    # The posterior of nu is Gamma(px + q, ...): E[(p/nu)^2] = E[p/nu]^2 (a-1)/(a-2).
    shape = model.params_["p"] * x + model.params_["q"]
    return spend, spend**2 * (shape - 1) / (shape - 2)


def _forecast(model, scores, histories, horizon, as_of) -> list[dict[str, Any]]:
    """Purchases and revenue per horizon step from the existing base, with an 80% band.

    The band is parameter uncertainty, which moves every customer together and so
    dominates a total: the model is re-evaluated under 20 draws of its parameters on a
    weighted sample of up to 2,000 distinct histories, and the spread of the ratio to the
    fitted totals is applied to the totals.
    """
    import datetime as dt

    rng = np.random.default_rng(1)
    (hx, htx, hT), index = histories
    w = np.bincount(index, minlength=len(hx)).astype(np.float64)
    if len(w) > 2000:
        pick = rng.choice(len(w), 2000, replace=False, p=w / w.sum())
        hx, htx, hT, w = hx[pick], htx[pick], hT[pick], np.ones(2000)
    step = horizon.step_days / DAYS_PER_UNIT[TIME_UNIT]
    ends = step * np.arange(1, horizon.steps + 1)

    def totals(m) -> np.ndarray:
        cum = np.array(
            [w @ np.asarray(m.conditional_expected_purchases(t, hx, htx, hT)) for t in ends]
        )
        return np.diff(np.concatenate([[0.0], cum]))

    base = totals(model)
    names = list(model.params_)
    theta = np.array([model.params_[k] for k in names])
    cov = model.covariance_ / np.outer(theta, theta)
    ratios = []
    for phi in rng.multivariate_normal(np.log(theta), cov, size=20, method="eigh"):
        clone = copy.copy(model)
        clone.params_ = dict(zip(names, np.exp(phi), strict=True))
        ratios.append(totals(clone) / np.maximum(base, 1e-300))
    low, high = np.quantile(np.array(ratios), [0.1, 0.9], axis=0)
    rows = []
    for k in range(horizon.steps):
        start = as_of + dt.timedelta(days=1 + horizon.step_days * k)
        rows.append(
            {
                "step": k + 1,
                "start": start.isoformat(),
                "purchases": float(scores.purchases_by_step[k]),
                "purchases_low": float(scores.purchases_by_step[k] * low[k]),
                "purchases_high": float(scores.purchases_by_step[k] * high[k]),
                "revenue": float(scores.revenue_by_step[k]),
                "revenue_low": float(scores.revenue_by_step[k] * low[k]),
                "revenue_high": float(scores.revenue_by_step[k] * high[k]),
            }
        )
    return rows


def _kpis(customers: pa.Table, total_spend: np.ndarray, clv: np.ndarray, stage) -> dict:
    """Headline figures; ``stage`` holds indices into ``STAGES``."""
    n = customers.num_rows
    repeat = (customers["frequency"].to_numpy() > 0).mean() if n else 0.0
    alive = [STAGES.index(s) for s in ("new", "growing", "mature", "reactivated")]
    active = np.isin(stage, alive).mean() if n else 0.0
    revenue = float(total_spend.sum())
    k = max(int(np.ceil(n * 0.2)), 1)
    # The top fifth's spend: a partition finds it without sorting everyone.
    top = np.partition(total_spend, n - k)[n - k :].sum() if n else 0.0
    equity = float(np.nansum(clv)) if np.isfinite(clv).any() else None
    return {
        "customers": n,
        "active_share": float(active),
        "repeat_rate": float(repeat),
        "revenue": revenue,
        "customer_equity": equity,
        "top20_revenue_share": float(top / revenue) if revenue > 0 else None,
    }
