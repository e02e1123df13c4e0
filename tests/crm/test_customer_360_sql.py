"""The 360 in one PostgreSQL statement holds exactly what the portable path builds."""

import datetime as dt
from decimal import Decimal

import pytest
from tests.crm.customer_data import T0, QueryCounter, make_order, make_run, make_user

from patron.crm.services import customer_360, customers, identity, touchpoints
from patron.crm.services.errors import NotFound
from patron.crm.tables import Customer


@pytest.fixture
def history(session):
    """A customer with everything a 360 shows, and a second record merged into it."""
    staff = make_user(session, "lin", display_name="林")
    plain = make_user(session, "wang")  # no display name: the username stands in
    c = customers.create_customer(
        session,
        actor=staff,
        name="张三",
        phone="13800138000",
        email="zhang@example.com",
        birthday="1990-05-17",
        gender="male",
        owner_id=staff.id,
        tags=["vip", "new"],
        consents={"sms": True, "email": False},
        external_ids={"tmall": "tb1", "pos": "P7"},
    )
    other = customers.create_customer(session, actor=None, name="张三 (old)")
    make_order(session, other.id, "SO0", at=T0 - dt.timedelta(days=30), amount="5.00")
    identity.merge_customers(session, c.id, other.id, rule="manual", actor=staff)
    make_order(
        session,
        c.id,
        "SO1",
        at=T0 + dt.timedelta(microseconds=120_000),
        amount="1234.50",
        lines=[("A1", "茶叶", "2", "600.00"), ("B2", "Cup", "1.5", "34.50")],
    )
    make_order(session, c.id, "SO2", at=T0 + dt.timedelta(days=2), amount="-34.50")
    for who, note, days in ((staff, "回访", 1), (plain, "", 3), (None, "system", 4)):
        touchpoints.record_touchpoint(
            session,
            c.id,
            channel="phone",
            kind="call",
            note=note,
            occurred_at=T0 + dt.timedelta(days=days),
            actor=who,
        )
    make_run(session, {c.id: {"grade": "silver", "predicted_clv": 100.0, "p_alive": None}})
    make_run(session, {c.id: {}}, status="failed")  # never shown
    make_run(
        session,
        {c.id: {"grade": "gold", "predicted_clv": 800.25, "clv_low": float("nan"), "T": 12.0}},
    )
    session.commit()
    return c, other


def _portable(session, customer_id, **limits):
    return customer_360.build(session, customers.get_customer(session, customer_id), **limits)


@pytest.mark.parametrize("limits", [{}, {"orders_limit": 1, "touchpoints_limit": 0}])
def test_the_statement_and_the_portable_path_build_the_same_360(session, engine, history, limits):
    if engine.dialect.name != "postgresql":
        pytest.skip("the one-statement 360 is PostgreSQL's")
    c, other = history
    for customer_id in (c.id, other.id):  # the merged id shows the survivor in both
        portable = _portable(session, customer_id, **limits)
        fast = customer_360.build_on_postgresql(session, customer_id, **limits)
        assert fast == portable
        # The same types too (Decimal scale, aware datetimes, floats), so the API's JSON
        # is the same text.
        assert repr(fast) == repr(portable)
    full = customer_360.build_on_postgresql(session, c.id)
    assert full["customer"]["owner_name"] == "林"
    assert [t["staff_name"] for t in full["touchpoints"]] == [None, "wang", "林"]
    assert full["orders_amount"] == Decimal("1205.00") and str(full["orders_amount"]) == "1205.00"
    assert full["score"]["grade"] == "gold" and full["score"]["clv_low"] is None
    assert full["score"]["T"] == 12.0 and isinstance(full["score"]["T"], float)
    assert [h["grade"] for h in full["score_history"]] == ["silver", "gold"]
    assert full["orders"][1]["ordered_at"].microsecond == 120_000


def test_the_360_on_postgresql_is_one_query(session, engine, history):
    c, _other = history
    with QueryCounter(engine) as counter:
        record = customers.customer_360(session, c.id)
    assert record["customer"]["id"] == c.id
    if engine.dialect.name == "postgresql":
        assert counter.count == 1
    else:
        assert counter.count > 1  # the portable path: one query per kind of thing


def test_a_customer_with_nothing_but_a_name(session, engine):
    c = customers.create_customer(session, actor=None, name="新客")
    session.commit()
    record = customers.customer_360(session, c.id)
    assert record["orders"] == [] and record["orders_total"] == 0
    assert str(record["orders_amount"]) == "0.00"
    assert record["score"] is None and record["score_history"] == []
    assert (record["tags"], record["consents"], record["external_ids"]) == ([], {}, [])
    assert record == _portable(session, c.id)


def test_unknown_and_impossible_ids_are_not_found(session, history):
    for customer_id in (424_242, 0, -1, 2**63):
        with pytest.raises(NotFound):
            customers.customer_360(session, customer_id)


def test_a_merge_cycle_made_by_hand_stops_where_get_customer_stops(session, engine):
    a = customers.create_customer(session, actor=None, name="A")
    b = customers.create_customer(session, actor=None, name="B")
    session.flush()
    session.get(Customer, a.id).merged_into_id = b.id
    session.get(Customer, b.id).merged_into_id = a.id
    session.commit()
    expected = customers.get_customer(session, a.id).id
    assert customers.customer_360(session, a.id)["customer"]["id"] == expected


def test_unflushed_changes_are_seen(session, engine):
    c = customers.create_customer(session, actor=None, name="A")
    session.commit()
    c.region = "上海"  # not flushed yet
    assert customers.customer_360(session, c.id)["customer"]["region"] == "上海"
