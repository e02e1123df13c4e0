"""Scoring runs on the database's orders, on SQLite and PostgreSQL: the same scores as
``patron analyze`` on the file, history kept, migration between runs, failures stored."""

import datetime as dt

import numpy as np
import pytest
from sqlalchemy import func, select, text
from tests.cli.test_cli import run as run_patron

import patron
from patron.crm.services.errors import Invalid, NotFound
from patron.crm.services.imports import import_file
from patron.crm.services.scoring import (
    distribution,
    get_run,
    list_runs,
    migration,
    run_scoring,
)
from patron.crm.tables import (
    AuditEvent,
    Customer,
    CustomerExternalId,
    Order,
    ScoreSnapshot,
    ScoringRun,
)


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory):
    return patron.datasets.demo_shop(
        tmp_path_factory.mktemp("demo") / "shop.csv", customers=300, seed=1
    )


@pytest.fixture
def imported(session, demo_file):
    """The demo export imported and committed."""
    import_file(session, demo_file)
    session.commit()
    return demo_file


def snapshots(session, run_id):
    query = (
        select(CustomerExternalId.external_id, ScoreSnapshot)
        .join(ScoreSnapshot, ScoreSnapshot.customer_id == CustomerExternalId.customer_id)
        .where(ScoreSnapshot.run_id == run_id)
    )
    return dict(session.execute(query).all())


def test_a_run_gives_every_customer_the_scores_analyze_gives_the_file(session, imported):
    analysis = patron.analyze(imported, model="bgnbd")
    run = run_scoring(session, model="bgnbd")
    session.commit()
    assert run.status == "done" and run.finished_at is not None
    assert run.as_of == analysis.as_of
    assert (
        run.customers
        == analysis.customers.num_rows
        == session.scalar(select(func.count()).select_from(ScoreSnapshot))
    )
    assert run.model == "bgnbd"
    assert run.params["purchase_model"]["params"].keys() == {"r", "alpha", "a", "b"}
    assert run.kpis["customers"] == run.customers
    stored = snapshots(session, run.id)
    expected = analysis.customers.to_pylist()
    assert set(stored) == {row["customer_id"] for row in expected}
    for row in expected:
        snap = stored[row["customer_id"]]
        assert snap.orders == row["orders"]
        assert float(snap.total_spend) == pytest.approx(row["total_spend"], abs=0.005)
        assert snap.last_purchase == row["last_purchase"]
        assert snap.T == pytest.approx(row["T"])
        assert snap.predicted_clv == pytest.approx(row["predicted_clv"], rel=1e-9)
        assert snap.p_alive == pytest.approx(row["p_alive"], rel=1e-9)
        assert (snap.grade, snap.lifecycle_stage, snap.churn_risk) == (
            row["grade"],
            row["lifecycle_stage"],
            row["churn_risk"],
        )
        assert snap.grade_reason == row["grade_reason"]
    (event,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "scoring.run"))
    assert (event.object_id, event.after["status"]) == (str(run.id), "done")


def test_the_automatic_model_choice_keeps_its_backtest(session, imported):
    run = run_scoring(session)
    assert run.status == "done"
    assert run.model in ("bgnbd", "pnbd", "mbgnbd")
    assert run.backtest["chosen"] == run.model
    assert set(run.backtest["metrics"]) >= {run.model}


def test_history_is_kept_and_migration_adds_up(session, imported):
    first = run_scoring(session, model="bgnbd", as_of="2025-06-30")
    second = run_scoring(session, model="bgnbd")
    session.commit()
    assert first.as_of == dt.date(2025, 6, 30) and second.as_of > first.as_of
    runs, total = list_runs(session)
    assert total == 2 and [r.id for r in runs] == [second.id, first.id]
    for by in ("grade", "lifecycle_stage"):
        m = migration(session, first.id, second.id, by=by)
        counts = np.array(m["counts"])
        assert counts.sum() == second.customers  # nobody left between the runs
        column = getattr(ScoreSnapshot, by)
        later = dict(
            session.execute(
                select(column, func.count())
                .where(ScoreSnapshot.run_id == second.id)
                .group_by(column)
            ).all()
        )
        # Each column of the matrix adds up to the later run's count of that label.
        for j, label in enumerate(m["cols"]):
            assert counts[:, j].sum() == later.get(label, 0)
        assert sum(map(sum, m["value"])) == pytest.approx(
            session.scalar(
                select(func.sum(ScoreSnapshot.predicted_clv)).where(
                    ScoreSnapshot.run_id == second.id
                )
            )
        )
        assert (m["from_run"]["id"], m["to_run"]["id"]) == (first.id, second.id)
    # Customers who first bought after 2025-06-30 are new since the first run.
    m = migration(session, first.id, second.id, by="grade")
    assert m["rows"][-1] is None
    assert sum(m["counts"][-1]) == second.customers - first.customers > 0
    grades = distribution(session, second.id, by="grade")
    assert [g["label"] for g in grades] == ["gold", "silver", "regular"]
    assert sum(g["customers"] for g in grades) == second.customers


def test_merged_customers_and_cancelled_orders_are_not_scored(session, imported):
    from patron.crm.services.identity import merge_customers

    a, b = session.scalars(select(Customer.id).order_by(Customer.id).limit(2)).all()
    merge_customers(session, a, b, rule="manual")
    cancelled = session.scalars(select(Order).where(Order.customer_id == a)).first()
    before = run_scoring(session, model="bgnbd")
    cancelled.status = "cancelled"
    session.flush()
    after = run_scoring(session, model="bgnbd")
    session.commit()
    scored = set(
        session.scalars(select(ScoreSnapshot.customer_id).where(ScoreSnapshot.run_id == after.id))
    )
    assert a in scored and b not in scored
    orders = dict(
        session.execute(
            select(ScoreSnapshot.run_id, ScoreSnapshot.orders).where(ScoreSnapshot.customer_id == a)
        ).all()
    )
    assert orders[after.id] == orders[before.id] - 1


def test_a_run_without_orders_is_stored_as_failed(session):
    run = run_scoring(session)
    session.commit()
    assert run.status == "failed" and "patron import" in run.message
    assert get_run(session, run.id).status == "failed"
    assert session.scalar(select(func.count()).select_from(ScoreSnapshot)) == 0
    (event,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "scoring.run"))
    assert event.after["status"] == "failed"


def test_bad_options_and_unknown_runs_are_refused(session, imported):
    run = run_scoring(session, model="bgnbd")
    failed = run_scoring(session, model="weibull")
    assert failed.status == "failed" and "weibull" in failed.message
    with pytest.raises(Invalid):
        run_scoring(session, as_of="yesterday")
    with pytest.raises(Invalid):
        migration(session, run.id, run.id, by="rfm_segment")
    with pytest.raises(NotFound):
        migration(session, run.id, 10_000)
    with pytest.raises(NotFound):
        get_run(session, 10_000)
    assert session.scalar(select(func.count()).select_from(ScoringRun)) == 2


def test_patron_score_prints_the_run_or_why_it_failed(db_url, demo_file):
    empty = run_patron("score", "--database-url", db_url)
    assert empty.returncode == 2
    assert "no orders" in empty.stderr
    assert run_patron("import", demo_file, "--database-url", db_url).returncode == 0
    result = run_patron("score", "--model", "bgnbd", "--database-url", db_url, lang="zh")
    assert result.returncode == 0, result.stderr
    assert "位客户评分" in result.stdout and "黄金" in result.stdout and "流失" in result.stdout


def test_a_run_analyses_its_snapshots_on_postgresql(session, imported):
    # Without statistics for the new run the next search reads every snapshot.
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite plans without statistics from ANALYZE")
    count = text("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'score_snapshots'")
    before = session.scalar(count)
    run_scoring(session, model="bgnbd")
    session.commit()
    session.execute(text("SELECT pg_stat_clear_snapshot()"))
    assert session.scalar(count) == before + 1
