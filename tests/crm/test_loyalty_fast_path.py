"""The one-round-trip earn and redemption on PostgreSQL (:mod:`.loyalty.fast_path`).

Wherever the case is not the common one the function must write nothing and say so
(``None``), so that the Python path does the write; the web tests
(tests/web/test_api_points.py) show that where it does write, it writes and answers
exactly as the Python path does.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from tests.crm.loyalty_data import NOW, new_customer, new_order, set_program

from patron.crm.db import session_scope
from patron.crm.services import idempotency, loyalty, users
from patron.crm.services.loyalty import fast_path
from patron.crm.tables import (
    IdempotencyKey,
    LoyaltyAccount,
    LoyaltyAllocation,
    LoyaltyEntry,
    LoyaltyLot,
    Order,
)

pytestmark = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)

DAY = dt.timedelta(days=1)
_keys = iter(range(10**9))


@pytest.fixture
def staff(engine) -> tuple[int, str]:
    with session_scope(engine) as session:
        user, _password = users.create_user(
            session, username="clerk", role="staff", password="correct horse battery"
        )
        return user.id, user.username


def write(engine, staff, kind, customer_id, points, *, reason="x", now=NOW, key=None):
    """One write through the function, in autocommit; its answer or None."""
    key = key or f"k{next(_keys)}"
    request = fast_path.PointsWrite(
        kind=kind,
        user_id=staff[0],
        actor_name=staff[1],
        key=key,
        fingerprint=idempotency.fingerprint("POST", f"/{kind}", {"points": points, "r": reason}),
        customer_id=customer_id,
        points=points,
        reason=reason,
        now=now,
        created_at=now.isoformat(),
    )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        return fast_path.write(connection, request)


def counts(engine) -> tuple[int, ...]:
    with session_scope(engine) as session:
        return tuple(
            session.scalar(select(func.count()).select_from(table))
            for table in (LoyaltyEntry, LoyaltyLot, LoyaltyAllocation, IdempotencyKey)
        )


def funded(engine, points: int, **program) -> int:
    with session_scope(engine) as session:
        if program:
            set_program(session, **program)
        customer_id = new_customer(session)
        loyalty.earn(session, customer_id, points, reason="funding", now=NOW)
    return customer_id


def test_the_common_case_writes_and_answers(engine, staff):
    customer_id = funded(engine, 100)
    earned = write(engine, staff, "earn", customer_id, 40, reason="gift")
    assert earned.status_code == 201 and not earned.replayed
    assert earned.body["balance"] == 140 and earned.body["entry"]["actor"] == "clerk"
    spent = write(engine, staff, "redeem", customer_id, 120)
    assert spent.status_code == 201 and spent.body["entry"]["points"] == -120
    refused = write(engine, staff, "redeem", customer_id, 1000)
    assert refused.status_code == 409 and refused.body["code"] == "insufficient_points"
    with session_scope(engine) as session:
        assert loyalty.points_view(session, customer_id)["balance"] == 20
        assert loyalty.check_invariants(session) == []


def test_uncommon_cases_write_nothing_and_leave_them_to_the_python_path(engine, staff):
    from patron.crm.services.identity import merge_customers

    with session_scope(engine) as session:
        no_account = new_customer(session)
        survivor, merged = new_customer(session), new_customer(session)
        loyalty.earn(session, survivor, 50, reason="x", now=NOW)
        merge_customers(session, survivor, merged, rule="manual")
    due = funded(engine, 100)
    with session_scope(engine) as session:  # a refund under allow_negative leaves a debt
        set_program(session, refund_policy="allow_negative")
        owing = new_customer(session)
        order = new_order(session, owing, "100.00")
        loyalty.earn_for_order(session, order, now=NOW)
        loyalty.redeem(session, owing, 100, now=NOW)
        order = session.get(Order, order.id)
        order.status = "refunded"
        loyalty.reverse_for_refund(session, order, now=NOW)
        assert session.scalar(select(LoyaltyAccount.debt).where(
            LoyaltyAccount.customer_id == owing
        )) > 0  # fmt: skip
    before = counts(engine)
    later = NOW + 400 * DAY
    assert write(engine, staff, "earn", no_account, 5) is None
    assert write(engine, staff, "redeem", no_account, 5) is None
    assert write(engine, staff, "earn", merged, 5) is None
    assert write(engine, staff, "redeem", merged, 5) is None
    assert write(engine, staff, "earn", 10**12, 5) is None  # no such customer
    assert write(engine, staff, "earn", owing, 5) is None
    assert write(engine, staff, "redeem", owing, 5) is None
    assert write(engine, staff, "redeem", due, 5, now=later) is None  # its lot is due
    assert write(engine, staff, "earn", due, 5, reason="") is None  # the checks refuse
    assert write(engine, staff, "redeem", due, 0) is None
    with session_scope(engine) as session:
        set_program(session, tier_basis="points")
    assert write(engine, staff, "earn", due, 5) is None  # an earn may upgrade the tier
    assert counts(engine) == before
    # A key already answered is answered again, whatever the case.
    with session_scope(engine) as session:
        set_program(session, tier_basis="spend")
    first = write(engine, staff, "earn", due, 5, key="again")
    with session_scope(engine) as session:
        set_program(session, tier_basis="points")
    again = write(engine, staff, "earn", due, 5, key="again")
    assert again.replayed and (again.status_code, again.body) == (first.status_code, first.body)
    with pytest.raises(idempotency.KeyReused):
        write(engine, staff, "earn", due, 6, key="again")


def test_a_key_held_by_a_running_request_is_409(engine, staff):
    from sqlalchemy import text

    customer_id = funded(engine, 100)
    with session_scope(engine) as holder:
        holder.execute(
            text("SELECT pg_advisory_xact_lock(:c, :k)"),
            {"c": idempotency.LOCK_CLASS, "k": idempotency.lock_id(staff[0], "busy")},
        )
        with pytest.raises(idempotency.KeyInUse):
            write(engine, staff, "earn", customer_id, 5, key="busy")
    assert write(engine, staff, "earn", customer_id, 5, key="busy").status_code == 201


def test_redemptions_take_lots_first_to_expire_first(engine, staff):
    with session_scope(engine) as session:
        customer_id = new_customer(session)
        set_program(session, expiry_months=None)
        loyalty.earn(session, customer_id, 30, reason="forever", now=NOW - 40 * DAY)
        set_program(session, expiry_months=12)
        loyalty.earn(session, customer_id, 50, reason="later", now=NOW - 10 * DAY)
        loyalty.earn(session, customer_id, 20, reason="sooner", now=NOW - 20 * DAY)
    spent = write(engine, staff, "redeem", customer_id, 85)
    with session_scope(engine) as session:
        taken = session.execute(
            select(LoyaltyLot.points, LoyaltyAllocation.points)
            .join(LoyaltyAllocation, LoyaltyAllocation.lot_id == LoyaltyLot.id)
            .where(LoyaltyAllocation.entry_id == spent.body["entry"]["id"])
            .order_by(LoyaltyAllocation.id)
        ).all()
        assert [tuple(row) for row in taken] == [(20, 20), (50, 50), (30, 15)]
        assert loyalty.check_invariants(session) == []
