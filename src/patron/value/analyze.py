"""``patron.analyze``: an order export in, a value, grade, stage and action per customer out.

The pipeline is ingest -> summarize -> fit the purchase model (chosen on the user's own
holdout with ``model="auto"``) and Gamma-Gamma -> scores -> RFM -> grade -> lifecycle
stage -> churn risk -> next best action.  Each stage reports through ``step`` so the CLI
can show progress; nothing here prints.

A data set no model can be fitted on (nobody bought twice; a fit that does not converge)
still gets RFM, grades from historical value, stages from the purchase rhythm and actions;
the reason no model was fitted is kept in ``Analysis.notes`` and in summary.json.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from patron.engine.periods import DAYS_PER_UNIT
from patron.errors import InputError
from patron.value.config import Settings, load_settings
from patron.value.scoring import TIME_UNIT

if TYPE_CHECKING:
    import pyarrow as pa

    from patron.ingest import Transactions

__all__ = ["Analysis", "analyze", "fit_purchase_model", "MODELS", "CUSTOMER_COLUMNS"]

MODELS = {"bgnbd": "BetaGeo", "pnbd": "ParetoNBD", "mbgnbd": "ModifiedBetaGeo"}

CUSTOMER_COLUMNS = (
    "customer_id",
    "orders",
    "total_spend",
    "first_purchase",
    "last_purchase",
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "rfm_r",
    "rfm_f",
    "rfm_m",
    "rfm_segment",
    "p_alive",
    "expected_purchases",
    "expected_spend",
    "predicted_clv",
    "clv_low",
    "clv_high",
    "grade",
    "lifecycle_stage",
    "churn_risk",
    "next_best_action",
)


@dataclass
class Analysis:
    """Everything ``patron analyze`` found; :meth:`write` puts it on disk."""

    customers: pa.Table
    kpis: dict[str, float]
    forecast: list[dict[str, Any]]
    settings: Settings
    as_of: dt.date
    transactions: Transactions
    purchase_model: Any = None
    model_name: str | None = None
    spend_model: Any = None
    backtest: Any = None
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """What goes into summary.json: KPIs, models with errors, backtest, ingest."""
        return {
            "as_of": self.as_of.isoformat(),
            "time_unit": TIME_UNIT,
            "horizon": self.settings.horizon,
            "discount_rate": self.settings.discount_rate,
            "kpis": self.kpis,
            "counts": self.counts,
            "purchase_model": _model_dict(self.purchase_model, self.model_name),
            "spend_model": _model_dict(self.spend_model, "gamma_gamma"),
            "backtest": None if self.backtest is None else self.backtest.to_dict(),
            "forecast": self.forecast,
            "notes": self.notes,
            "ingest": self.transactions.report.to_dict(),
        }

    def write(self, out: str | Path, *, excel: bool = False) -> dict[str, Path]:
        """Write customers.csv/.parquet (.xlsx), summary.json, rejected.csv and report.html."""
        from patron.value.outputs import write_analysis

        return write_analysis(self, Path(out), excel=excel)


def _model_dict(model: Any, name: str | None) -> dict[str, Any] | None:
    if model is None:
        return None
    return {
        "name": name,
        "class": type(model).__name__,
        "params": model.params_,
        "standard_errors": model.standard_errors_,
        "confidence_intervals": {k: list(v) for k, v in model.confidence_intervals_.items()},
        "log_likelihood": model.log_likelihood_,
        "customers": model.n_customers_,
    }


@contextlib.contextmanager
def _no_step(_key: str) -> Iterator[None]:
    yield


def analyze(
    source: Any,
    *,
    customer: str | None = None,
    date: str | None = None,
    amount: str | None = None,
    order_id: str | None = None,
    sheet: str | int | None = None,
    as_of: str | dt.date | None = None,
    horizon: str | None = None,
    discount_rate: float | None = None,
    model: str | None = None,
    config: str | Path | None = None,
    satisfaction: dict[str, float] | None = None,
    step: Callable[[str], contextlib.AbstractContextManager] = _no_step,
) -> Analysis:
    """Score every customer of an order export.

    Parameters
    ----------
    source
        Anything :func:`patron.read_transactions` reads (a file path, a DataFrame, an Arrow
        or Ibis table) or a :class:`~patron.ingest.Transactions`.
    customer, date, amount, order_id, sheet
        Column names and sheet, when patron cannot recognise them on its own.
    as_of
        The analysis date; by default the date of the last transaction.
    horizon, discount_rate, model
        Override ``patron.toml``: the CLV horizon (``"12M"``), the yearly discount rate and
        the purchase model (``auto``, ``bgnbd``, ``pnbd``, ``mbgnbd``).
    config
        A ``patron.toml`` with grade, stage, risk and playbook rules.
    satisfaction
        Optional satisfaction score (any scale, higher is better) per customer id, used in
        the grades.
    step
        Called with a stage name around each stage (for progress display).
    """
    import pyarrow as pa

    from patron.engine import summarize
    from patron.value.sources import CleanParquet, open_transactions

    settings = load_settings(config, horizon=horizon, discount_rate=discount_rate, model=model)
    if settings.model not in ("auto", *MODELS):
        raise InputError(_bad_model(settings.model), column="model", value=settings.model)
    with step("read"):
        tx = open_transactions(
            source,
            customer=customer,
            date=date,
            amount=amount,
            order_id=order_id,
            sheet=sheet,
            as_of=as_of,
            count_customers=as_of is not None,  # else the summary counts them
        )
    where = tx.path if isinstance(tx, CleanParquet) else tx
    with step("summarize"):
        summary = summarize(where, period="D", time_unit=TIME_UNIT, as_of=as_of)
        as_of = dt.date.fromisoformat(summary.schema.metadata[b"patron.as_of"].decode())
        gaps = _last_gaps(summary)
        if isinstance(tx, CleanParquet) and not tx.report.customers:
            # Every row is on or before the last date: the summary has every customer.
            without = int(summary.schema.metadata[b"patron.customers_without_purchase"])
            tx.report = replace(tx.report, customers=summary.num_rows + without)

    analysis = Analysis(
        customers=pa.table({}),
        kpis={},
        forecast=[],
        settings=settings,
        as_of=as_of,
        transactions=tx,
    )
    from patron.value.scoring import score_customers

    score_customers(analysis, summary, gaps, satisfaction or {}, step)
    return analysis


def _bad_model(value: str) -> str:
    from patron.i18n import _

    return _("engine.bad_option", option="model", value=value, choices=", ".join(("auto", *MODELS)))


def _last_gaps(summary: pa.Table) -> np.ndarray:
    """Time between each customer's last two purchase days, in weeks (0 with one day)."""
    import pyarrow.compute as pc

    days = pc.days_between(summary["previous_purchase"], summary["last_purchase"])
    gaps = pc.fill_null(days, 0).to_numpy(zero_copy_only=False).astype(np.float64)
    return gaps / DAYS_PER_UNIT[TIME_UNIT]


def fit_purchase_model(
    name: str, summary: pa.Table, histories: tuple[list[np.ndarray], np.ndarray] | None = None
) -> Any:
    """Fit one purchase model on a summary; raises InputError / ConvergenceError.

    ``histories``: the summary's distinct (x, t_x, T) and each row's index among them
    (:func:`patron.models.inputs.distinct_rows`), when the caller has them already.
    """
    import patron.models as models

    model = getattr(models, MODELS[name])()
    if histories is None:
        return model.fit_summary(summary)
    columns, index = histories
    weights = np.bincount(index, minlength=len(columns[0])).astype(np.float64)
    return model.fit(*columns, weights=weights)
