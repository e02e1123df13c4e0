"""Scoring runs: the analyze pipeline on the database's orders, kept as dated snapshots.

A run reads every order of every customer that has not been merged away (returns are
negative amounts; cancelled orders were never purchases and are left out), hands them to
:func:`patron.analyze` -- the same models, grades and stages as ``patron analyze`` on a
file -- and stores one :class:`~patron.crm.tables.ScoreSnapshot` per customer. Runs are
never overwritten, so the history of a customer's grade and the grade and stage migration
between two runs are plain queries (:func:`migration`).

Orders leave the database as ``COPY ... TO STDOUT`` on PostgreSQL and enter analyze as a
clean Parquet file, analyze's fast path; snapshots go back in with ``COPY``. Times are
turned back into the shop's wall-clock time first, so a purchase at 23:30 in Shanghai
falls on the day the shop saw it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, text

from patron.crm.services import bulk, feedback, tasks
from patron.crm.services.errors import Invalid, NotFound
from patron.crm.services.imports import DEFAULT_TIMEZONE
from patron.crm.tables import ScoringRun
from patron.crm.tables.scores import SNAPSHOT_COLUMNS
from patron.errors import ConvergenceError, InputError
from patron.i18n import _

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlalchemy.orm import Session

    from patron.crm.tables import User
    from patron.value.analyze import Analysis

__all__ = ["MIGRATION_BY", "run_scoring", "get_run", "list_runs", "migration", "distribution"]

MIGRATION_BY = ("grade", "lifecycle_stage")


def run_scoring(
    session: Session,
    *,
    actor: User | None = None,
    as_of: str | dt.date | None = None,
    model: str = "auto",
    horizon: str = "12M",
    progress: Callable[[str, int, int | None], None] | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    config: str | Path | None = None,
) -> ScoringRun:
    """Score every customer from the database's orders; never commits.

    Parameters
    ----------
    as_of
        The analysis date; default the day of the last order.
    model, horizon, config
        As for :func:`patron.analyze` (``auto`` picks the purchase model by backtest).
    progress
        Called as ``progress(step, done, total)``; steps ``load`` (orders out of the
        database), analyze's ``read``, ``summarize``, ``fit``, ``score``, ``segment``, and
        ``store`` (snapshots in).
    timezone
        The shop's zone, in which purchase days are counted.

    Returns
    -------
    ScoringRun
        ``status`` is ``done``, or ``failed`` with the reason in ``message`` when the data
        cannot be scored (no orders, a bad option): a failed run is kept too, so the
        manager who pressed the button sees why.
    """
    progress = progress or (lambda _step, _done, _total: None)
    as_of_date = _as_of(as_of)
    run = ScoringRun(
        status="running",
        as_of=as_of_date,
        model=model,
        actor_id=actor.id if actor is not None else None,
    )
    session.add(run)
    session.flush()
    with tempfile.TemporaryDirectory(prefix="patron-score-") as work:
        progress("load", 0, None)
        count = _export_orders(session, Path(work), timezone)
        progress("load", count, count)
        try:
            if count == 0:
                raise Invalid(_("scoring.no_orders"))
            analysis = _analyze(
                Path(work) / "orders.parquet",
                as_of,
                model,
                horizon,
                config,
                progress,
                satisfaction=feedback.satisfaction_by_customer(session),
            )
        except (InputError, ConvergenceError) as error:
            run.status, run.message = "failed", str(error)
            run.finished_at = dt.datetime.now(dt.UTC)
            session.flush()
            _audit(session, run, actor)
            return run
    progress("store", 0, analysis.customers.num_rows)
    stored = _store_snapshots(session, run.id, analysis.customers)
    progress("store", stored, stored)
    summary = analysis.summary()
    run.status = "done"
    run.as_of = analysis.as_of
    run.model = analysis.model_name or model
    run.customers = stored
    run.kpis = _json(analysis.kpis)
    run.params = _json(
        {
            "purchase_model": summary["purchase_model"],
            "spend_model": summary["spend_model"],
            "horizon": summary["horizon"],
            "discount_rate": summary["discount_rate"],
            "time_unit": summary["time_unit"],
            "grades": list(analysis.settings.grades.names),
            "counts": summary["counts"],
            "forecast": summary["forecast"],
            "notes": summary["notes"],
            "timezone": timezone,
        }
    )
    run.backtest = _json(_backtest_headline(summary["backtest"]))
    run.message = " ".join(analysis.notes)
    run.finished_at = dt.datetime.now(dt.UTC)
    session.flush()
    tasks.open_for_scoring_run(session, run, actor=actor)
    _audit(session, run, actor)
    return run


def _as_of(as_of: str | dt.date | None) -> dt.date | None:
    if as_of is None or isinstance(as_of, dt.date):
        return as_of
    try:
        return dt.date.fromisoformat(str(as_of))
    except ValueError:
        raise Invalid(_("scoring.bad_as_of", value=as_of), field="as_of") from None


def _export_orders(session: Session, work: Path, timezone: str) -> int:
    """The orders analyze reads, as a clean Parquet file ``work/orders.parquet``."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    where = (
        "o.status <> 'cancelled' AND o.customer_id NOT IN "
        "(SELECT id FROM customers WHERE merged_into_id IS NOT NULL)"
    )
    if bulk.dialect(session) == "postgresql":
        query = (
            "SELECT o.customer_id::text, o.ordered_at AT TIME ZONE :tz, o.amount::float8 "
            f"FROM orders AS o WHERE {where}"
        )
        parameters = {"tz": timezone}
    else:
        query = (
            "SELECT CAST(o.customer_id AS TEXT), o.ordered_at, CAST(o.amount AS REAL) "
            f"FROM orders AS o WHERE {where}"
        )
        parameters = {}
    schema = pa.schema(
        [("customer_id", pa.string()), ("ts", pa.timestamp("us")), ("amount", pa.float64())]
    )
    table = bulk.fetch_table(
        session, query, schema, parameters=parameters, path=str(work / "orders.csv")
    )
    if bulk.dialect(session) != "postgresql" and table.num_rows:
        utc = pc.assume_timezone(table["ts"], "UTC")
        local = pc.local_timestamp(pc.cast(utc, pa.timestamp("us", timezone)))
        table = table.set_column(1, "ts", local)
    pq.write_table(table, work / "orders.parquet")
    (work / "orders.csv").unlink(missing_ok=True)
    return table.num_rows


def _analyze(path, as_of, model, horizon, config, progress, *, satisfaction=None) -> Analysis:
    from patron.value.analyze import analyze

    @contextlib.contextmanager
    def step(key: str):
        progress(key, 0, None)
        yield
        progress(key, 1, 1)

    return analyze(
        path,
        as_of=as_of,
        model=model,
        horizon=horizon,
        config=config,
        satisfaction=satisfaction,
        step=step,
    )


def _store_snapshots(session: Session, run_id: int, customers: pa.Table) -> int:
    """One snapshot row per customer of the analysis, in one bulk load."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = customers.num_rows
    columns: dict[str, Any] = {
        "run_id": pa.array([run_id] * n, pa.int64()),
        "customer_id": pc.cast(customers["customer_id"], pa.int64()),
    }
    for name in SNAPSHOT_COLUMNS:
        column = customers[name]
        if pa.types.is_dictionary(column.type):
            column = pc.cast(column, pa.string())
        elif pa.types.is_timestamp(column.type):
            column = pc.cast(column, pa.date32())
        elif pa.types.is_floating(column.type):
            column = pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column)
        if name == "total_spend":
            column = pc.round(pc.cast(column, pa.float64()), 2)
        columns["t" if name == "T" else name] = column
    rows = pa.table(columns)
    dialect = bulk.dialect(session)
    stored = bulk.load_rows(session, "score_snapshots", bulk.db_values(rows, dialect))
    if dialect == "postgresql":
        # The planner must know the new run at once: with no statistics for it, the next
        # search joins snapshots by reading all of them (hundreds of milliseconds) until
        # autovacuum analyses the table, a minute later -- or never, where it is off. A
        # sample of the table costs a second or two of a run over a million customers.
        session.execute(text("ANALYZE score_snapshots"))
    return stored


def _backtest_headline(backtest: dict[str, Any] | None) -> dict[str, Any]:
    """What a page shows of the backtest: the choice and each model's error."""
    if not backtest:
        return {}
    keys = ("calibration_end", "observation_end", "time_unit", "holdout_length", "customers")
    return {
        **{k: backtest.get(k) for k in keys},
        "chosen": backtest.get("chosen"),
        "models": backtest.get("models"),
        "metrics": backtest.get("metrics"),
        "failures": backtest.get("failures"),
    }


def _json(values: Any) -> Any:
    """JSON-safe (numpy scalars, dates, NaN as null), as the JSON columns need."""
    import math

    def plain(value: Any) -> Any:
        if hasattr(value, "item"):
            return value.item()
        if hasattr(value, "isoformat"):
            return value.isoformat()
        raise TypeError(f"cannot store {type(value).__name__} as JSON")

    def finite(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {str(k): finite(v) for k, v in value.items()}
        if isinstance(value, list):
            return [finite(v) for v in value]
        return value

    return finite(json.loads(json.dumps(values, default=plain, allow_nan=True)))


def _audit(session: Session, run: ScoringRun, actor: User | None) -> None:
    from patron.crm.services import audit

    audit.record(
        session,
        actor=actor,
        action="scoring.run",
        object_type="scoring_run",
        object_id=run.id,
        after={
            "status": run.status,
            "customers": run.customers,
            "model": run.model,
            "as_of": run.as_of.isoformat() if run.as_of else None,
            "message": run.message[:500],
        },
    )


def get_run(session: Session, run_id: int) -> ScoringRun:
    """The scoring run ``run_id``; :class:`NotFound` when there is none."""
    run = session.get(ScoringRun, run_id)
    if run is None:
        raise NotFound(_("scoring.not_found", id=run_id), field="run_id")
    return run


def list_runs(
    session: Session, *, limit: int = 20, offset: int = 0
) -> tuple[list[ScoringRun], int]:
    """Scoring runs, newest first, and how many there are in all."""
    total = session.scalar(select(func.count()).select_from(ScoringRun)) or 0
    page = (
        select(ScoringRun)
        .order_by(ScoringRun.id.desc())
        .limit(max(limit, 0))
        .offset(max(offset, 0))
    )
    return list(session.scalars(page)), int(total)


def migration(
    session: Session, from_run_id: int, to_run_id: int, *, by: str = "grade"
) -> dict[str, Any]:
    """How customers moved between two runs: a from x to matrix of grade or stage.

    Returns
    -------
    dict
        ``rows`` (the labels in the earlier run) and ``cols`` (in the later run), in the
        grades' configured order or the stages' lifecycle order, with ``None`` for a
        customer absent from that run (new since, or merged away); ``counts[i][j]``
        customers went from ``rows[i]`` to ``cols[j]``, and ``value[i][j]`` is their
        predicted CLV in the later run; ``from_run``, ``to_run`` describe the runs and
        ``by`` the column compared.

    Raises
    ------
    Invalid
        ``by`` is not ``grade`` or ``lifecycle_stage``.
    NotFound
        Either run does not exist.
    """
    if by not in MIGRATION_BY:
        raise Invalid(
            _("scoring.bad_migration_by", value=by, allowed=", ".join(MIGRATION_BY)), field="by"
        )
    runs = [get_run(session, from_run_id), get_run(session, to_run_id)]
    query = text(
        f"SELECT f.{by}, t.{by}, count(*), coalesce(sum(t.predicted_clv), 0) "
        "FROM score_snapshots AS t LEFT JOIN score_snapshots AS f "
        "ON f.run_id = :from_run AND f.customer_id = t.customer_id "
        f"WHERE t.run_id = :to_run GROUP BY f.{by}, t.{by} "
        f"UNION ALL SELECT f.{by}, NULL, count(*), 0 FROM score_snapshots AS f "
        "WHERE f.run_id = :from_run AND NOT EXISTS (SELECT 1 FROM score_snapshots AS t "
        f"WHERE t.run_id = :to_run AND t.customer_id = f.customer_id) GROUP BY f.{by}"
    )
    cells = session.execute(query, {"from_run": from_run_id, "to_run": to_run_id}).all()
    rows = _labels(by, runs[0], {c[0] for c in cells})
    cols = _labels(by, runs[1], {c[1] for c in cells})
    counts = [[0] * len(cols) for _ in rows]
    value = [[0.0] * len(cols) for _ in rows]
    for source, target, count, clv in cells:
        i, j = rows.index(source), cols.index(target)
        counts[i][j] += int(count)
        value[i][j] += float(clv or 0.0)
    return {
        "by": by,
        "rows": rows,
        "cols": cols,
        "counts": counts,
        "value": value,
        "from_run": _run_dict(runs[0]),
        "to_run": _run_dict(runs[1]),
    }


def distribution(session: Session, run_id: int, *, by: str = "grade") -> list[dict[str, Any]]:
    """Customers and their predicted CLV per grade (or stage) of one run, in label order.

    Each item: ``{"label", "customers", "predicted_clv"}``; labels without customers are
    listed with 0, so charts of two runs line up.
    """
    if by not in MIGRATION_BY:
        raise Invalid(
            _("scoring.bad_migration_by", value=by, allowed=", ".join(MIGRATION_BY)), field="by"
        )
    run = get_run(session, run_id)
    cells = session.execute(
        text(
            f"SELECT {by}, count(*), coalesce(sum(predicted_clv), 0) FROM score_snapshots "
            f"WHERE run_id = :run GROUP BY {by}"
        ),
        {"run": run_id},
    ).all()
    found = {label: (int(n), float(clv or 0.0)) for label, n, clv in cells}
    return [
        {
            "label": label,
            "customers": found.get(label, (0, 0.0))[0],
            "predicted_clv": found.get(label, (0, 0.0))[1],
        }
        for label in _labels(by, run, set(found))
    ]


def _labels(by: str, run: ScoringRun, seen: set) -> list[str | None]:
    """The run's grades (configured order) or the stages, other labels seen, then None.

    ``None`` is listed only when some customer is absent from one of the runs.
    """
    if by == "grade":
        known = list((run.params or {}).get("grades") or ())
        if not known:
            from patron.value.config import GRADE_CODES

            known = list(GRADE_CODES)
    else:
        from patron.value.lifecycle import STAGES

        known = list(STAGES)
    extra = sorted(label for label in seen if label is not None and label not in known)
    return [*known, *extra, *([None] if None in seen else [])]


def _run_dict(run: ScoringRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status,
        "as_of": run.as_of.isoformat() if run.as_of else None,
        "customers": run.customers,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }
