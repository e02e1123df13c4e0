"""Membership tiers and the daily job, on SQLite and PostgreSQL.

Tiers go up at once and down only at a review after the grace period; ``patron jobs run``
expires lots, gives birthday bonuses once a year and reviews tiers once a period, and a
second run changes nothing.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import delete, func, select
from tests.crm.loyalty_data import new_customer, new_order, set_program
from typer.testing import CliRunner

from patron.cli import app
from patron.crm.commands.jobs import run_jobs
from patron.crm.db import session_scope
from patron.crm.services import loyalty
from patron.crm.services.audit import list_events
from patron.crm.services.errors import Invalid
from patron.crm.tables import LoyaltyEntry, LoyaltyJobRun
from patron.i18n import set_language

DAY = dt.timedelta(days=1)
T0 = dt.datetime(2025, 1, 15, 4, tzinfo=dt.UTC)


def tier_of(session, customer_id, now):
    return loyalty.account_summary(session, customer_id, now=now)["tier"]["code"]


def test_an_earn_that_qualifies_upgrades_at_once(session):
    cid = new_customer(session)
    first = new_order(session, cid, "1500", at=T0)
    loyalty.earn_for_order(session, first, now=T0)
    assert tier_of(session, cid, T0) == "regular"
    second = new_order(session, cid, "600", at=T0 + DAY)
    loyalty.earn_for_order(session, second, now=T0 + DAY)
    assert tier_of(session, cid, T0 + DAY) == "silver"
    # Silver multiplies the next order's points by 1.2.
    third = new_order(session, cid, "100", at=T0 + 2 * DAY)
    assert loyalty.earn_for_order(session, third, now=T0 + 2 * DAY).points == 120
    events, _total = list_events(session, action="loyalty.tier_change")
    assert events[0].after["tier"] == "silver" and events[0].after["why"] == "upgrade"
    assert events[0].before["tier"] == "regular"


def test_points_basis_upgrades_on_points_earned_in_twelve_months(session):
    set_program(session, tier_basis="points")
    loyalty.save_tiers(
        session,
        [{"code": "regular", "threshold": 0}, {"code": "gold", "threshold": 1000}],
        actor=None,
    )
    cid = new_customer(session)
    loyalty.earn(session, cid, 900, reason="a", now=T0)
    loyalty.adjust(session, cid, 500, reason="not earned", actor=None, now=T0)
    assert tier_of(session, cid, T0) == "regular"  # adjustments do not qualify
    loyalty.earn(session, cid, 100, reason="b", now=T0 + DAY)
    assert tier_of(session, cid, T0 + DAY) == "gold"


def test_a_downgrade_waits_for_a_review_after_the_grace_period(session):
    set_program(session, tier_grace_days=45, review_months=1)
    cid = new_customer(session)
    loyalty.earn_for_order(session, new_order(session, cid, "2500", at=T0), now=T0)
    assert tier_of(session, cid, T0) == "silver"

    def review(when):
        batch = loyalty_jobs().review_batch(session, now=when)
        return batch.counts

    # A year and a month later the spend has left the 12-month window.
    first = dt.datetime(2026, 2, 1, 1, tzinfo=dt.UTC)
    assert review(first)["grace"] == 1
    assert tier_of(session, cid, first) == "silver"
    assert review(first + DAY) == {"accounts": 0, "up": 0, "down": 0, "grace": 0}  # same period
    second = dt.datetime(2026, 3, 1, 1, tzinfo=dt.UTC)  # 28 days on: still in grace
    assert review(second)["grace"] == 1 and tier_of(session, cid, second) == "silver"
    third = dt.datetime(2026, 4, 1, 1, tzinfo=dt.UTC)
    assert review(third)["down"] == 1
    assert tier_of(session, cid, third) == "regular"
    events, _total = list_events(session, action="loyalty.tier_change")
    assert events[0].after == {"tier": "regular", "why": "review", "qualification": "0"}


def test_qualifying_again_during_the_grace_keeps_the_tier(session):
    set_program(session, tier_grace_days=20)
    cid = new_customer(session)
    loyalty.earn_for_order(session, new_order(session, cid, "2500", at=T0), now=T0)
    feb = dt.datetime(2026, 2, 1, 1, tzinfo=dt.UTC)
    loyalty_jobs().review_batch(session, now=feb)
    assert loyalty.account_summary(session, cid, now=feb)["grace_since"] == feb
    loyalty.earn_for_order(session, new_order(session, cid, "2100", at=feb + DAY), now=feb + DAY)
    assert loyalty.account_summary(session, cid, now=feb + DAY)["grace_since"] is None
    mar = dt.datetime(2026, 3, 1, 1, tzinfo=dt.UTC)
    assert loyalty_jobs().review_batch(session, now=mar).counts["down"] == 0
    assert tier_of(session, cid, mar) == "silver"


def test_the_review_enrols_customers_whose_spend_reaches_a_tier(session):
    cid = new_customer(session)
    new_order(session, cid, "6000", at=T0)  # imported, earning off: no account yet
    assert loyalty.account_summary(session, cid, now=T0)["member"] is False
    assert loyalty_jobs().enroll_qualified(session, now=T0 + DAY) == 1
    loyalty_jobs().review_batch(session, now=T0 + DAY)
    assert tier_of(session, cid, T0 + DAY) == "gold"


def loyalty_jobs():
    from patron.crm.services.loyalty import jobs

    return jobs


def test_the_daily_job_is_safe_to_run_twice(engine):
    with session_scope(engine) as session:
        set_program(session, expiry_months=1, birthday_bonus=88)
        born_in_march = new_customer(session, birthday=dt.date(1990, 3, 20))
        born_in_may = new_customer(session, birthday=dt.date(1991, 5, 2))
        for customer_id in (born_in_march, born_in_may):
            loyalty.earn(session, customer_id, 100, reason="welcome", now=T0)
    march = dt.datetime(2025, 3, 3, tzinfo=dt.UTC)

    first = run_jobs(engine, now=march)
    again = run_jobs(engine, now=march + dt.timedelta(hours=5))

    assert first["expire"]["points"] == 200 and first["expire"]["lots"] == 2
    assert first["birthday"] == {"period": "2025-03", "skipped": False, "accounts": 1, "points": 88}
    assert first["tier_review"]["accounts"] == 2
    assert all(again[job]["skipped"] for job in ("expire", "birthday", "tier_review"))
    next_day = run_jobs(engine, now=march + DAY)
    assert next_day["expire"]["lots"] == 0 and next_day["birthday"]["skipped"]
    with session_scope(engine) as session:
        assert loyalty.points_view(session, born_in_march)["balance"] == 88
        assert loyalty.points_view(session, born_in_may)["balance"] == 0
        assert session.scalar(select(func.count()).select_from(LoyaltyJobRun)) == 4
        # Even with the month's record gone, a member gets the bonus once a year.
        session.execute(delete(LoyaltyJobRun).where(LoyaltyJobRun.job == "birthday"))
    rerun = run_jobs(engine, now=dt.datetime(2025, 3, 20, tzinfo=dt.UTC))
    assert rerun["birthday"]["skipped"] is False and rerun["birthday"]["accounts"] == 0
    with session_scope(engine) as session:
        bonuses = session.scalar(
            select(func.count()).where(LoyaltyEntry.dedupe_key.like("birthday:%"))
        )
        assert bonuses == 1
        assert loyalty.check_invariants(session) == []


def test_a_step_interrupted_half_way_finishes_on_the_next_run(engine):
    with session_scope(engine) as session:
        set_program(session, expiry_months=1)
        ids = [new_customer(session) for _ in range(3)]
        for customer_id in ids:
            loyalty.earn(session, customer_id, 10, reason="x", now=T0)
    later = T0 + 60 * DAY
    with session_scope(engine) as session:
        jobs = loyalty_jobs()
        period = jobs.job_period(loyalty.get_program(session), "expire", later)
        assert jobs.start_job(session, "expire", period) is not None
        jobs.expire_batch(session, now=later, limit=1)  # one account, then "crashed"
    result = run_jobs(engine, now=later)
    assert result["expire"]["skipped"] is False and result["expire"]["lots"] == 2
    with session_scope(engine) as session:
        assert loyalty.liability(session, now=later)["points"] == 0


@pytest.fixture
def english():
    set_language("en")
    yield
    set_language(None)


def test_patron_jobs_run_prints_each_step(db_url, engine, english):
    with session_scope(engine) as session:
        set_program(session, expiry_months=1)
        loyalty.earn(session, new_customer(session), 25, reason="x", now=T0)
    runner = CliRunner()
    args = ["jobs", "run", "--as-of", "2025-06-01", "--database-url", db_url]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "1 lots of 1 members expired, 25 points" in result.output
    assert "Tier review (2025-06)" in result.output
    second = runner.invoke(app, args)
    assert "already done for 2025-06-01, skipped" in second.output
    bad = runner.invoke(app, ["jobs", "run", "--as-of", "June", "--database-url", db_url])
    assert bad.exit_code != 0 and isinstance(bad.exception, Invalid)
