"""The points ledger on SQLite and PostgreSQL: lots, first-to-expire allocation, expiry,
refund reversal under both policies, earn rules, adjustments, and the database's own
refusals (CHECK constraints, append-only triggers)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from tests.crm.loyalty_data import NOW, new_customer, new_order, set_program

from patron.crm.services import loyalty
from patron.crm.services.audit import list_events
from patron.crm.services.errors import Invalid, NotFound
from patron.crm.services.loyalty import jobs
from patron.crm.services.loyalty.rules import add_months
from patron.crm.tables import LoyaltyAccount, LoyaltyAllocation, LoyaltyEntry, LoyaltyLot

DAY = dt.timedelta(days=1)


def lots_of(session, customer_id):
    account = session.scalars(
        select(LoyaltyAccount).where(LoyaltyAccount.customer_id == customer_id)
    ).one()
    return list(
        session.scalars(
            select(LoyaltyLot).where(LoyaltyLot.account_id == account.id).order_by(LoyaltyLot.id)
        )
    )


def allocations_of(session, entry):
    rows = session.execute(
        select(LoyaltyAllocation.lot_id, LoyaltyAllocation.points)
        .where(LoyaltyAllocation.entry_id == entry.id)
        .order_by(LoyaltyAllocation.id)
    )
    return [tuple(row) for row in rows]


def balance(session, customer_id):
    return loyalty.points_view(session, customer_id)["balance"]


def test_redemption_takes_first_to_expire_lots_first_and_never_expiring_ones_last(session):
    cid = new_customer(session)
    set_program(session, expiry_months=None)
    forever = loyalty.earn(session, cid, 30, reason="no expiry", now=NOW)
    set_program(session, expiry_months=12)
    late = loyalty.earn(session, cid, 50, reason="later", now=NOW + 10 * DAY)
    early = loyalty.earn(session, cid, 100, reason="first", now=NOW + 5 * DAY)
    lots = {lot.entry_id: lot for lot in lots_of(session, cid)}
    assert lots[forever.id].expires_at is None
    assert lots[early.id].expires_at == add_months(NOW + 5 * DAY, 12)

    spent = loyalty.redeem(session, cid, 160, reason="gift", now=NOW + 20 * DAY)

    assert spent.points == -160 and spent.balance_after == 20
    assert allocations_of(session, spent) == [
        (lots[early.id].id, 100),
        (lots[late.id].id, 50),
        (lots[forever.id].id, 10),
    ]
    remaining = {lot.entry_id: lot.remaining for lot in lots_of(session, cid)}
    assert remaining == {early.id: 0, late.id: 0, forever.id: 20}
    assert loyalty.check_invariants(session) == []


def test_a_redemption_beyond_the_balance_is_refused_and_changes_nothing(session):
    cid = new_customer(session)
    loyalty.earn(session, cid, 100, reason="welcome", now=NOW)
    with pytest.raises(loyalty.InsufficientPoints) as refused:
        loyalty.redeem(session, cid, 101, now=NOW)
    assert refused.value.status == 409 and refused.value.code == "insufficient_points"
    assert "101" in refused.value.message and "100" in refused.value.message
    assert balance(session, cid) == 100
    with pytest.raises(loyalty.InsufficientPoints):
        loyalty.redeem(session, new_customer(session), 1, now=NOW)  # no account at all
    with pytest.raises(Invalid):
        loyalty.redeem(session, cid, 0, now=NOW)
    with pytest.raises(Invalid):
        loyalty.earn(session, cid, 1.5, reason="half", now=NOW)  # type: ignore[arg-type]
    with pytest.raises(Invalid):
        loyalty.earn(session, cid, 10, reason="  ", now=NOW)
    with pytest.raises(NotFound):
        loyalty.earn(session, 10**9, 10, reason="nobody", now=NOW)


def test_the_database_refuses_a_lot_below_zero_an_overdraft_and_a_rewritten_entry(session):
    cid = new_customer(session)
    entry = loyalty.earn(session, cid, 100, reason="welcome", now=NOW)
    session.commit()
    account_id = entry.account_id
    refusals = [
        (IntegrityError, "UPDATE loyalty_lots SET remaining = -1"),
        (IntegrityError, "UPDATE loyalty_lots SET remaining = points + 1"),
        (IntegrityError, f"UPDATE loyalty_accounts SET balance = -5 WHERE id = {account_id}"),
        (
            IntegrityError,
            "INSERT INTO loyalty_entries (account_id, kind, points, balance_after, shortfall, "
            "reason, source_type, actor_name, created_at) VALUES "
            f"({account_id}, 'redeem', -200, -100, 0, '', 'manual', '', '2026-01-01')",
        ),
        (
            IntegrityError,
            "INSERT INTO loyalty_entries (account_id, kind, points, balance_after, shortfall, "
            "reason, source_type, actor_name, created_at) VALUES "
            f"({account_id}, 'earn', -5, 95, 0, '', 'manual', '', '2026-01-01')",
        ),
        (DBAPIError, "UPDATE loyalty_entries SET points = 1000"),
        (DBAPIError, "UPDATE loyalty_entries SET reason = 'rewritten'"),
    ]
    for error, statement in refusals:
        with pytest.raises(error):
            with session.begin_nested():
                session.execute(text(statement))
    session.rollback()
    assert balance(session, cid) == 100
    assert loyalty.check_invariants(session) == []


def test_the_invariant_check_finds_a_balance_that_disagrees_with_the_ledger(session):
    cid = new_customer(session)
    entry = loyalty.earn(session, cid, 100, reason="welcome", now=NOW)
    assert loyalty.check_invariants(session) == []
    session.execute(
        text(f"UPDATE loyalty_accounts SET balance = 130 WHERE id = {entry.account_id}")
    )
    problems = loyalty.check_invariants(session)
    assert any("sum of entries 100" in p for p in problems)
    assert any("lots remaining 100" in p for p in problems)


def test_lots_expire_after_whole_calendar_months_once_each(session):
    cid = new_customer(session)
    set_program(session, expiry_months=1)
    january = dt.datetime(2026, 1, 31, 6, tzinfo=dt.UTC)
    loyalty.earn(session, cid, 100, reason="january", now=january)
    loyalty.earn(session, cid, 40, reason="february", now=january + 5 * DAY)
    assert lots_of(session, cid)[0].expires_at == dt.datetime(2026, 2, 28, 6, tzinfo=dt.UTC)

    before = jobs.expire_batch(session, now=dt.datetime(2026, 2, 28, 5, tzinfo=dt.UTC))
    assert before.counts["lots"] == 0 and balance(session, cid) == 140
    done = jobs.expire_batch(session, now=dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    assert done.counts == {"accounts": 1, "lots": 1, "points": 100}
    again = jobs.expire_batch(session, now=dt.datetime(2026, 3, 1, 1, tzinfo=dt.UTC))
    assert again.counts["lots"] == 0
    assert balance(session, cid) == 40
    expired = session.scalars(select(LoyaltyEntry).where(LoyaltyEntry.kind == "expire")).all()
    assert [(e.points, e.balance_after, e.source_type) for e in expired] == [(-100, 40, "job")]

    # A redemption after the second lot's expiry, before the job ran, expires it first.
    with pytest.raises(loyalty.InsufficientPoints) as refused:
        loyalty.redeem(session, cid, 10, now=dt.datetime(2026, 4, 1, tzinfo=dt.UTC))
    assert "40" in refused.value.message
    assert loyalty.check_invariants(session) == []


def test_a_refund_claws_back_down_to_zero_and_records_the_shortfall(session):
    cid = new_customer(session)
    order = new_order(session, cid, "200.00")
    earned = loyalty.earn_for_order(session, order, now=NOW)
    assert earned.points == 200
    loyalty.redeem(session, cid, 150, now=NOW + DAY)
    order.status = "refunded"

    reversal = loyalty.reverse_for_refund(session, order, now=NOW + 2 * DAY)

    assert (reversal.kind, reversal.points, reversal.shortfall) == ("reverse", -50, 150)
    assert reversal.balance_after == 0 and reversal.reverses_id == earned.id
    assert loyalty.reverse_for_refund(session, order, now=NOW + 3 * DAY).id == reversal.id
    events, _total = list_events(session, action="loyalty.reverse")
    assert events[0].after["shortfall"] == 150 and events[0].after["policy"] == "claw_back"
    assert loyalty.check_invariants(session) == []


def test_a_refund_may_leave_a_negative_balance_that_the_next_points_pay_off(session):
    cid = new_customer(session)
    set_program(session, refund_policy="allow_negative")
    order = new_order(session, cid, "200.00")
    loyalty.earn_for_order(session, order, now=NOW)
    loyalty.redeem(session, cid, 150, now=NOW + DAY)

    reversal = loyalty.reverse_for_refund(session, order, now=NOW + 2 * DAY)

    assert (reversal.points, reversal.shortfall, reversal.balance_after) == (-200, 0, -150)
    view = loyalty.points_view(session, cid)
    assert (view["balance"], view["debt"]) == (-150, 150)
    with pytest.raises(loyalty.InsufficientPoints):
        loyalty.redeem(session, cid, 1, now=NOW + 3 * DAY)
    with pytest.raises(loyalty.InsufficientPoints):
        loyalty.adjust(session, cid, -1, reason="fix", actor=None, now=NOW + 3 * DAY)
    loyalty.earn(session, cid, 100, reason="goodwill", now=NOW + 4 * DAY)
    assert loyalty.points_view(session, cid)["debt"] == 50
    assert [lot.remaining for lot in lots_of(session, cid)][-1] == 0
    loyalty.earn(session, cid, 100, reason="goodwill", now=NOW + 5 * DAY)
    view = loyalty.points_view(session, cid)
    assert (view["balance"], view["debt"], view["lots"][0]["remaining"]) == (50, 0, 50)
    events, _total = list_events(session, action="loyalty.reverse")
    assert events[0].after["debt"] == 150
    assert loyalty.check_invariants(session) == []


def test_a_refund_takes_the_orders_own_lot_before_older_ones(session):
    cid = new_customer(session)
    loyalty.earn(session, cid, 100, reason="old points", now=NOW - 30 * DAY)
    order = new_order(session, cid, "60.00")
    earned = loyalty.earn_for_order(session, order, now=NOW)
    reversal = loyalty.reverse_for_refund(session, order, now=NOW + DAY)
    own = session.scalar(select(LoyaltyLot).where(LoyaltyLot.entry_id == earned.id))
    assert allocations_of(session, reversal) == [(own.id, 60)]
    assert balance(session, cid) == 100


def test_orders_earn_by_the_rules_once(session):
    cid = new_customer(session, birthday=dt.date(1990, 7, 4))
    set_program(
        session,
        points_per_unit=Decimal(1),
        points_per_order=5,
        min_amount=Decimal(20),
        multipliers={"category": {"生鲜": 2}, "sku": {"TEA": 3}},
        started_on=dt.date(2026, 1, 1),
    )
    plain = new_order(session, cid, "99.90")
    assert loyalty.earn_for_order(session, plain, now=NOW).points == 99 + 5
    assert (
        loyalty.earn_for_order(session, plain, now=NOW).id
        == loyalty.earn_for_order(session, plain, now=NOW).id
    )
    lines = (("TEA", None, "1", "50"), ("APPLE", "生鲜", "2", "25"))  # weights 3 and 2
    mixed = new_order(session, cid, "100.00", lines=lines)
    assert loyalty.earn_for_order(session, mixed, now=NOW).points == 250 + 5
    july = new_order(session, cid, "100.00", at=dt.datetime(2026, 7, 10, 2, tzinfo=dt.UTC))
    assert loyalty.earn_for_order(session, july, now=NOW).points == 200 + 5  # birthday month
    assert loyalty.earn_for_order(session, new_order(session, cid, "19.99"), now=NOW) is None
    old = new_order(session, cid, "100", at=dt.datetime(2025, 12, 31, 12, tzinfo=dt.UTC))
    assert loyalty.earn_for_order(session, old, now=NOW) is None  # 2025-12-31 20:00 Shanghai
    assert loyalty.earn_for_order(session, new_order(session, cid, "-50"), now=NOW) is None
    pending = new_order(session, cid, "100", status="pending")
    assert loyalty.earn_for_order(session, pending, now=NOW) is None
    set_program(session, active=False)
    assert loyalty.earn_for_order(session, new_order(session, cid, "100"), now=NOW) is None


def test_points_are_dated_by_the_order_and_expire_from_it(session):
    cid = new_customer(session)
    placed = NOW - 400 * DAY
    order = new_order(session, cid, "80", at=placed)
    entry = loyalty.earn_for_order(session, order, now=NOW)
    lot = session.scalar(select(LoyaltyLot).where(LoyaltyLot.entry_id == entry.id))
    assert lot.earned_at == placed and lot.expires_at == add_months(placed, 12)
    assert jobs.expire_batch(session, now=NOW).counts["points"] == 80


def test_a_manager_adjusts_down_to_zero_at_most_and_every_adjustment_is_audited(session):
    cid = new_customer(session)
    loyalty.adjust(session, cid, 70, reason="migrated from the old card", actor=None, now=NOW)
    taken = loyalty.adjust(session, cid, -70, reason="duplicate", actor=None, now=NOW)
    assert taken.balance_after == 0 and taken.kind == "adjust"
    with pytest.raises(loyalty.InsufficientPoints) as refused:
        loyalty.adjust(session, cid, -1, reason="more", actor=None, now=NOW)
    assert refused.value.status == 409
    with pytest.raises(Invalid):
        loyalty.adjust(session, cid, 5, reason="", actor=None, now=NOW)
    with pytest.raises(Invalid):
        loyalty.adjust(session, cid, 0, reason="nothing", actor=None, now=NOW)
    events, total = list_events(session, action="loyalty.adjust")
    assert total == 2
    assert events[0].before == {"balance": 70} and events[0].after["balance"] == 0


def test_a_reward_is_redeemed_at_its_price(session):
    cid = new_customer(session)
    loyalty.earn(session, cid, 500, reason="welcome", now=NOW)
    reward = loyalty.save_reward(
        session, name="¥20 券", kind="coupon", points_cost="200", value="20", actor=None
    )
    entry = loyalty.redeem(session, cid, reward_id=reward.id, now=NOW)
    assert (entry.points, entry.reward_id, entry.source_type, entry.reason) == (
        -200,
        reward.id,
        "reward",
        "¥20 券",
    )
    with pytest.raises(Invalid):
        loyalty.redeem(session, cid, 100, reward_id=reward.id, now=NOW)
    loyalty.save_reward(
        session, reward_id=reward.id, name="¥20 券", points_cost=200, active=False, actor=None
    )
    with pytest.raises(Invalid):
        loyalty.redeem(session, cid, reward_id=reward.id, now=NOW)
    with pytest.raises(NotFound):
        loyalty.redeem(session, cid, reward_id=999999, now=NOW)


def test_the_programme_is_validated_field_by_field_and_changes_are_audited(session):
    program = loyalty.update_program(
        session,
        {
            "points_per_unit": "2",
            "expiry_months": "",
            "multipliers": "category:生鲜 = 2\nsku:TEA=3\n# comment",
            "earn_on_import": "on",
            "refund_policy": "allow_negative",
            "review_months": "3",
        },
        actor=None,
    )
    assert program.points_per_unit == 2 and program.expiry_months is None
    assert program.multipliers == {"category": {"生鲜": 2.0}, "sku": {"TEA": 3.0}}
    assert program.earn_on_import is True and program.review_months == 3
    events, _total = list_events(session, action="loyalty.program_update")
    assert events[0].after["refund_policy"] == "allow_negative"
    assert events[0].before["refund_policy"] == "claw_back"
    for field, value in (
        ("points_per_unit", "-1"),
        ("expiry_months", "0"),
        ("refund_policy", "forgive"),
        ("review_months", "2"),
        ("timezone", "Mars/Olympus"),
        ("multipliers", "生鲜 2"),
        ("nonsense", "1"),
        ("birthday_multiplier", "0.5"),
    ):
        with pytest.raises(Invalid) as refused:
            loyalty.update_program(session, {field: value}, actor=None)
        assert refused.value.field == field


def test_tiers_are_saved_in_rank_order_with_rising_thresholds(session):
    saved = loyalty.save_tiers(
        session,
        [
            {"code": "regular", "threshold": "0"},
            {
                "code": "gold",
                "name": "金卡",
                "threshold": "3000",
                "multiplier": "1.5",
                "benefits": "免运费\n生日礼",
            },
        ],
        actor=None,
    )
    assert [(t.code, t.rank, t.threshold) for t in saved] == [
        ("regular", 0, 0),
        ("gold", 1, 3000),
    ]
    with pytest.raises(Invalid) as refused:
        loyalty.save_tiers(
            session, [{"code": "a", "threshold": 0}, {"code": "b", "threshold": 0}], actor=None
        )
    assert refused.value.field == "tiers.1.threshold"
    with pytest.raises(Invalid) as refused:
        loyalty.save_tiers(session, [{"code": "a", "threshold": 10}], actor=None)
    assert refused.value.field == "tiers.0.threshold"


def test_the_360_summary_and_the_liability(session):
    cid = new_customer(session)
    set_program(session, point_value=Decimal("0.05"), expiry_months=1)
    loyalty.earn(session, cid, 300, reason="welcome", now=NOW - 10 * DAY)
    loyalty.earn(session, new_customer(session), 100, reason="welcome", now=NOW)
    summary = loyalty.account_summary(session, cid, now=NOW)
    assert summary["balance"] == 300 and summary["member"] is True
    assert summary["tier"]["code"] == "regular" and summary["next_tier"]["code"] == "silver"
    assert summary["expiring_soon"]["points"] == 300
    assert summary["value"] == Decimal("15.00")
    assert len(summary["history"]) == 1 and len(summary["lots"]) == 1
    stranger = loyalty.account_summary(session, new_customer(session), now=NOW)
    assert stranger["balance"] == 0 and stranger["member"] is False and stranger["lots"] == []

    owed = loyalty.liability(session, now=NOW)
    assert (owed["points"], owed["value"], owed["accounts"], owed["members"]) == (
        400,
        Decimal("20.00"),
        2,
        2,
    )
    assert owed["expiring_soon"] == 300 and owed["due"] == 0  # the other expires in 31 days


def test_merged_customers_keep_their_points_on_the_survivor(session):
    from patron.crm.services.identity import merge_customers

    # The survivor has no account: the merged record's account (its history) moves over.
    survivor, merged = new_customer(session), new_customer(session)
    loyalty.earn(session, merged, 120, reason="card", now=NOW)
    merge_customers(session, survivor, merged, rule="manual")
    assert loyalty.points_view(session, survivor)["balance"] == 120
    assert loyalty.points_view(session, merged)["balance"] == 120  # resolves to the survivor

    # Both have accounts: each lot moves with its own dates, through the ledger.
    other = new_customer(session)
    set_program(session, expiry_months=None)
    loyalty.earn(session, other, 30, reason="no expiry", now=NOW - 40 * DAY)
    set_program(session, expiry_months=12)
    loyalty.earn(session, other, 50, reason="dated", now=NOW - 20 * DAY)
    loyalty.redeem(session, other, 10, now=NOW - 10 * DAY)
    merge_customers(session, survivor, other, rule="manual")
    view = loyalty.points_view(session, survivor)
    assert view["balance"] == 120 + 70
    assert sorted((lot["remaining"], lot["expires_at"]) for lot in view["lots"]) == sorted(
        [
            (120, add_months(NOW, 12)),
            (40, add_months(NOW - 20 * DAY, 12)),
            (30, None),
        ],
        key=lambda pair: pair[0],
    )
    events, total = list_events(session, action="loyalty.merge")
    assert total == 2 and events[0].after["points"] == 70
    assert loyalty.check_invariants(session) == []
