"""NPS and CSAT against hand-computed figures, per grade, stage and month; satisfaction per
customer and its way into the grade composite of a scoring run. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest
from sqlalchemy import select
from tests.crm.customer_data import make_order, make_run

from patron.crm.services import customers as customer_service
from patron.crm.services import feedback
from patron.crm.services.identity import merge_customers
from patron.crm.services.scoring import run_scoring
from patron.crm.tables import FeedbackRecord, ScoreSnapshot, SurveyInvitation, SurveyResponse
from patron.crm.tables.base import utcnow

UTC = dt.UTC
JAN = dt.datetime(2025, 1, 15, 4, 0, tzinfo=UTC)


def answer(session, customer_id, kind, score, at=JAN, comment=""):
    """An answered invitation, written straight to the tables (the link flow is tested
    in test_surveys.py); ``at`` is when it was answered."""
    invitation = SurveyInvitation(
        customer_id=customer_id,
        kind=kind,
        token_hash=secrets.token_hex(32),
        expires_at=at + dt.timedelta(days=30),
        created_at=at - dt.timedelta(days=1),
        answered_at=at,
    )
    session.add(invitation)
    session.flush()
    session.add(
        SurveyResponse(
            invitation_id=invitation.id,
            customer_id=customer_id,
            kind=kind,
            score=score,
            comment=comment,
            language="zh-CN",
            topics=[],
            answered_at=at,
        )
    )
    session.flush()


def customer(session, name):
    return customer_service.create_customer(session, actor=None, name=name).id


# -- the arithmetic -----------------------------------------------------------------------------


def test_nps_is_promoters_share_minus_detractors_share():
    # 4 promoters (9-10), 3 passives (7-8), 3 detractors (0-6) of 10: 40% - 30% = +10.
    counts = {10: 2, 9: 2, 8: 2, 7: 1, 6: 1, 3: 1, 0: 1}
    summary = feedback.nps_summary(counts)
    assert summary == {
        "responses": 10,
        "promoters": 4,
        "passives": 3,
        "detractors": 3,
        "promoters_pct": 40.0,
        "detractors_pct": 30.0,
        "nps": pytest.approx(10.0),
    }
    assert feedback.nps_summary({10: 5})["nps"] == 100.0
    assert feedback.nps_summary({6: 1, 0: 3})["nps"] == -100.0
    assert feedback.nps_summary({7: 1, 8: 1})["nps"] == 0.0
    assert feedback.nps_summary({})["nps"] is None


def test_csat_is_the_share_of_fours_and_fives_with_the_mean():
    summary = feedback.csat_summary({5: 3, 4: 1, 3: 2, 2: 1, 1: 1})
    assert summary["responses"] == 8 and summary["satisfied"] == 4
    assert summary["csat"] == 50.0
    assert summary["mean"] == pytest.approx((15 + 4 + 6 + 2 + 1) / 8)  # 3.5
    assert feedback.csat_summary({})["csat"] is None and feedback.csat_summary({})["mean"] is None


# -- overall, per grade, per stage, per month ---------------------------------------------------


@pytest.fixture
def answered(session):
    """Answers of five customers: two gold, one silver, one regular, one never scored."""
    ids = {name: customer(session, name) for name in ("g1", "g2", "s1", "r1", "u1")}
    make_run(session, {ids["g1"]: {"grade": "silver"}}, as_of=dt.date(2024, 1, 1))  # older
    make_run(
        session,
        {
            ids["g1"]: {"grade": "gold", "lifecycle_stage": "mature"},
            ids["g2"]: {"grade": "gold", "lifecycle_stage": "at_risk"},
            ids["s1"]: {"grade": "silver", "lifecycle_stage": "mature"},
            ids["r1"]: {"grade": "regular", "lifecycle_stage": "at_risk"},
        },
    )
    feb_in_shanghai = dt.datetime(2025, 1, 31, 17, 0, tzinfo=UTC)  # 2025-02-01 01:00 +08:00
    for name, score, at in (
        ("g1", 10, dt.datetime(2025, 1, 10, tzinfo=UTC)),
        ("g1", 9, feb_in_shanghai),
        ("g2", 3, JAN),
        ("s1", 8, JAN),
        ("s1", 7, JAN),
        ("s1", 6, JAN),
        ("r1", 0, JAN),
        ("r1", 10, dt.datetime(2025, 4, 2, tzinfo=UTC)),
        ("u1", 9, JAN),
    ):
        answer(session, ids[name], "nps", score, at)
    for name, score in (("g1", 5), ("g1", 4), ("s1", 3), ("r1", 1), ("r1", 2), ("u1", 5)):
        answer(session, ids[name], "csat", score)
    session.commit()
    return ids


def rows_by(rows, key="label"):
    return {row[key]: row for row in rows}


def test_overall_figures_match_the_hand_computed_ones(session, answered):
    metrics = feedback.survey_metrics(session)
    nps, csat = metrics["overall"]["nps"], metrics["overall"]["csat"]
    # NPS: 9 answers, promoters 10, 9, 10, 9; detractors 3, 6, 0 -> (4 - 3) / 9.
    assert (nps["responses"], nps["promoters"], nps["passives"], nps["detractors"]) == (9, 4, 2, 3)
    assert nps["nps"] == pytest.approx(100 / 9)
    # CSAT: 5, 4, 3, 1, 2, 5 -> three of six satisfied, mean 20 / 6.
    assert csat["responses"] == 6 and csat["csat"] == 50.0
    assert csat["mean"] == pytest.approx(20 / 6)


def test_per_grade_and_stage_from_the_latest_run_with_the_unscored_last(session, answered):
    metrics = feedback.survey_metrics(session)
    assert metrics["run_id"] == feedback.latest_run_id(session)
    grades = rows_by(metrics["by_grade"])
    assert [row["label"] for row in metrics["by_grade"]] == ["gold", "silver", "regular", None]
    assert grades["gold"]["nps"]["nps"] == pytest.approx(100 / 3)  # 10, 9, 3
    assert grades["silver"]["nps"]["nps"] == pytest.approx(-100 / 3)  # 8, 7, 6
    assert grades["regular"]["nps"]["nps"] == 0.0  # 0, 10
    assert grades[None]["nps"]["nps"] == 100.0  # 9, from the unscored customer
    assert (grades["gold"]["csat"]["csat"], grades["gold"]["csat"]["mean"]) == (100.0, 4.5)
    assert (grades["silver"]["csat"]["csat"], grades["silver"]["csat"]["mean"]) == (0.0, 3.0)
    assert (grades["regular"]["csat"]["csat"], grades["regular"]["csat"]["mean"]) == (0.0, 1.5)
    stages = rows_by(metrics["by_stage"])
    assert stages["mature"]["nps"]["nps"] == pytest.approx(20.0)  # 10, 9, 8, 7, 6
    assert stages["at_risk"]["nps"]["nps"] == pytest.approx(-100 / 3)  # 3, 0, 10
    assert stages["new"]["nps"]["responses"] == 0 and stages["new"]["nps"]["nps"] is None
    assert stages["mature"]["csat"]["csat"] == pytest.approx(200 / 3)  # 5, 4, 3
    assert metrics["by_stage"][-1]["label"] is None


def test_per_month_in_the_shop_s_time_zone_with_empty_months(session, answered):
    months = feedback.survey_metrics(session)["by_month"]
    assert [m["month"] for m in months] == ["2025-01", "2025-02", "2025-03", "2025-04"]
    january, february, march, april = months
    # January (Shanghai): 10, 3, 8, 7, 6, 0, 9 -> (2 - 3) / 7.
    assert january["nps"]["responses"] == 7
    assert january["nps"]["nps"] == pytest.approx(-100 / 7)
    assert january["csat"]["responses"] == 6
    assert (february["nps"]["responses"], february["nps"]["nps"]) == (1, 100.0)
    assert march["nps"]["responses"] == 0 and march["nps"]["nps"] is None
    assert (april["nps"]["responses"], april["nps"]["nps"]) == (1, 100.0)
    # In UTC the answer at 17:00 on 31 January belongs to January.
    utc = feedback.survey_metrics(session, timezone="UTC")["by_month"]
    assert [m["month"] for m in utc][:2] == ["2025-01", "2025-02"]
    assert utc[0]["nps"]["responses"] == 8


def test_a_window_limits_every_figure(session, answered):
    since = dt.datetime(2025, 1, 31, 16, 0, tzinfo=UTC)
    metrics = feedback.survey_metrics(session, since=since)
    assert metrics["overall"]["nps"]["responses"] == 2
    assert metrics["overall"]["csat"]["responses"] == 0
    until = feedback.survey_metrics(session, until=dt.datetime(2025, 1, 12, tzinfo=UTC))
    assert until["overall"]["nps"]["responses"] == 1


def test_a_merged_customer_s_answers_count_under_the_survivor_s_grade(session):
    gold = customer_service.create_customer(session, actor=None, name="金", phone="13800000011")
    twin = customer_service.create_customer(session, actor=None, name="金", phone="13800000012")
    answer(session, twin.id, "nps", 0)
    merge_customers(session, gold.id, twin.id, rule="manual")
    make_run(session, {gold.id: {"grade": "gold"}})
    session.commit()
    grades = rows_by(feedback.survey_metrics(session)["by_grade"])
    assert grades["gold"]["nps"]["detractors"] == 1 and None not in grades


def test_no_answers_no_run_gives_empty_figures(session):
    metrics = feedback.survey_metrics(session)
    assert metrics["run_id"] is None and metrics["by_month"] == []
    assert metrics["overall"]["nps"]["nps"] is None
    assert [row["label"] for row in metrics["by_grade"]] == ["gold", "silver", "regular"]


# -- satisfaction per customer ----------------------------------------------------------------


def record(session, customer_id, sentiment_score, at):
    session.add(
        FeedbackRecord(
            customer_id=customer_id,
            channel="phone",
            kind="complaint",
            text="…",
            language="zh-CN",
            sentiment="negative" if sentiment_score < 0 else "positive",
            sentiment_score=sentiment_score,
            topics=[],
            occurred_at=at,
        )
    )
    session.flush()


def test_satisfaction_is_the_weighted_mean_of_answers_and_feedback(session):
    now = utcnow()
    a, b, c = customer(session, "a"), customer(session, "b"), customer(session, "c")
    survivor = customer_service.create_customer(session, actor=None, name="d", phone="13800000021")
    merged = customer_service.create_customer(session, actor=None, name="d", phone="13800000022")
    answer(session, a, "nps", 10, now)  # 1.0
    answer(session, a, "csat", 2, now)  # (2 - 1) / 4 = 0.25
    record(session, a, -0.5, now)  # (-0.5 + 1) / 2 = 0.25, weight 1/2
    answer(session, b, "csat", 5, now)  # 1.0
    answer(session, b, "nps", 0, now - dt.timedelta(days=400))  # a year ago: left out
    record(session, c, 0.6, now - dt.timedelta(days=10))  # 0.8
    answer(session, merged.id, "nps", 5, now)  # 0.5, for the survivor
    merge_customers(session, survivor.id, merged.id, rule="manual")
    session.commit()
    found = feedback.satisfaction_by_customer(session)
    assert found.keys() == {str(a), str(b), str(c), str(survivor.id)}
    assert found[str(a)] == pytest.approx((1.0 + 0.25 + 0.5 * 0.25) / 2.5)  # 0.55
    assert found[str(b)] == pytest.approx(1.0)
    assert found[str(c)] == pytest.approx(0.8)
    assert found[str(survivor.id)] == pytest.approx(0.5)
    panel = feedback.customer_feedback(session, a)
    assert panel["satisfaction"] == pytest.approx(0.55)
    assert panel["nps"]["score"] == 10 and panel["csat"]["score"] == 2
    assert (panel["responses_total"], panel["records_total"]) == (2, 1)
    assert feedback.customer_feedback(session, merged.id)["customer_id"] == survivor.id
    assert feedback.customer_feedback(session, merged.id)["nps"]["score"] == 5


def test_the_360_panel_counts_links_awaiting_an_answer(session):
    a = customer(session, "a")
    feedback.create_invitations(session, kind="nps", customer_id=a, actor=None)
    new = feedback.create_invitations(session, kind="csat", customer_id=a, actor=None)
    feedback.answer_survey(session, new.created[0].token, score=5)
    panel = feedback.customer_feedback(session, a)
    assert panel["pending_invitations"] == 1 and panel["csat"]["score"] == 5
    assert panel["nps"] is None and panel["satisfaction"] == 1.0


# -- satisfaction in the grade ----------------------------------------------------------------


def test_satisfaction_reaches_the_grade_composite_of_a_scoring_run(session):
    """Ten customers with the same orders tie on every other ingredient; without
    satisfaction the stable order makes the first one gold. The last one, the only
    promoter, must be gold instead: the run passed the answers to the grades."""
    ids = [customer(session, f"c{i}") for i in range(10)]
    start = dt.datetime(2024, 1, 5, 3, 0, tzinfo=UTC)
    for i in ids:
        for k, days in enumerate((0, 40, 95, 160, 230)):
            make_order(session, i, f"{i}-{k}", at=start + dt.timedelta(days=days), amount="88.00")
    answer(session, ids[-1], "nps", 10, utcnow())
    answer(session, ids[0], "csat", 1, utcnow())
    session.commit()
    run = run_scoring(session, model="bgnbd", as_of="2024-12-31")
    session.commit()
    assert run.status == "done", run.message
    grades = dict(
        session.execute(
            select(ScoreSnapshot.customer_id, ScoreSnapshot.grade).where(
                ScoreSnapshot.run_id == run.id
            )
        ).all()
    )
    assert grades[ids[-1]] == "gold"
    assert grades[ids[0]] != "gold"
    assert sum(g == "gold" for g in grades.values()) == 1
