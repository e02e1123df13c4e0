"""Imported orders earn points when the programme says so, once, and refunds in a later
export take them back; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from tests.crm.loyalty_data import set_program

from patron.crm.services import loyalty
from patron.crm.services.imports import import_file
from patron.crm.tables import Customer, CustomerExternalId, LoyaltyEntry

HEADER = "订单编号,会员ID,下单时间,实付金额,订单状态\n"
ROWS = [
    "SO1,M001,2026-03-01 10:00,128.50,已完成\n",
    "SO2,M001,2026-03-02 11:00,60.00,已完成\n",
    "SO3,M002,2026-03-03 12:00,300.00,已完成\n",
    "SO4,M002,2026-03-04 13:00,45.00,待付款\n",
]
NOW = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)


def write(path, rows):
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    return path


def balances(session):
    rows = session.execute(
        select(CustomerExternalId.external_id, Customer.id).join(
            Customer, Customer.id == CustomerExternalId.customer_id
        )
    ).all()
    return {ext: loyalty.points_view(session, cid)["balance"] for ext, cid in rows}


def entry_count(session):
    return session.scalar(select(func.count()).select_from(LoyaltyEntry))


def test_imports_earn_nothing_unless_the_programme_says_so(session, tmp_path):
    batch = import_file(session, write(tmp_path / "shop.csv", ROWS), source="shop").batch
    assert batch.inserted == 4 and "loyalty" not in (batch.report or {})
    assert entry_count(session) == 0


def test_imported_purchases_earn_once_and_refunds_take_back(session, tmp_path):
    set_program(session, earn_on_import=True)
    first = import_file(session, write(tmp_path / "march.csv", ROWS), source="shop").batch
    session.commit()  # each import is a transaction of its own
    assert first.report["loyalty"] == {
        "earned": 3,
        "points": 128 + 60 + 300,
        "reversed": 0,
        "unmatched": 0,
    }
    assert balances(session) == {"M001": 188, "M002": 300}
    entries = session.scalars(select(LoyaltyEntry).order_by(LoyaltyEntry.id)).all()
    assert {e.source_type for e in entries} == {"import"} and entries[0].source_id == "SO1"

    # The next export repeats March, SO3 now refunded and SO4 paid, plus a new order.
    later = [
        ROWS[0],
        ROWS[1],
        ROWS[2].replace("已完成", "已退款"),
        ROWS[3].replace("待付款", "已完成"),
    ]
    later.append("SO5,M001,2026-03-09 09:00,10.00,已完成\n")
    second = import_file(session, write(tmp_path / "april.csv", later), source="shop").batch
    session.commit()
    assert second.report["loyalty"] == {
        "earned": 2,
        "points": 45 + 10,
        "reversed": 1,
        "unmatched": 0,
    }
    assert balances(session) == {"M001": 198, "M002": 45}
    reversal = session.scalars(select(LoyaltyEntry).where(LoyaltyEntry.kind == "reverse")).one()
    assert reversal.points == -300 and reversal.shortfall == 0

    again = import_file(session, write(tmp_path / "april-again.csv", later), source="shop")
    assert again.already_imported  # the same bytes: the first import's batch
    more = [*later, "SO6,M003,2026-03-09 10:00,20.00,已完成\n"]
    third = import_file(session, write(tmp_path / "may.csv", more), source="shop").batch
    assert third.report["loyalty"] == {"earned": 1, "points": 20, "reversed": 0, "unmatched": 0}
    assert balances(session) == {"M001": 198, "M002": 45, "M003": 20}
    assert loyalty.check_invariants(session) == []


def test_refund_rows_of_their_own_take_back_their_share(session, tmp_path):
    # As the demo shop (and many exports) write them: a row of its own, negative amount,
    # the original's number plus a suffix.
    set_program(session, earn_on_import=True)
    import_file(session, write(tmp_path / "march.csv", ROWS), source="shop")
    session.commit()
    refunds = [
        *ROWS,
        "SO3-R,M002,2026-03-05 09:00,-150.00,已退款\n",  # half of SO3's 300 points
        "SO1-R1,M001,2026-03-05 10:00,-64.25,已退款\n",  # half of 128.50: 64 points
        "SO1-R2,M001,2026-03-06 10:00,-100.00,已退款\n",  # more than is left: 64 left
        "XX9-R,M001,2026-03-06 11:00,-5.00,已退款\n",  # no such order: nothing taken
    ]
    batch = import_file(session, write(tmp_path / "refunds.csv", refunds), source="shop").batch
    session.commit()
    assert batch.report["loyalty"] == {"earned": 0, "points": 0, "reversed": 3, "unmatched": 1}
    assert balances(session) == {"M001": 188 - 128, "M002": 300 - 150}
    taken = session.scalars(
        select(LoyaltyEntry.points).where(LoyaltyEntry.kind == "reverse").order_by(LoyaltyEntry.id)
    ).all()
    assert taken == [-64, -64, -150]  # customer by customer, in time order
    # A later export that also marks SO3 itself refunded takes back only what is left.
    later = [*refunds, "SO7,M002,2026-03-08 09:00,1.00,已完成\n"]
    later[2] = later[2].replace("已完成", "已退款")
    third = import_file(session, write(tmp_path / "april.csv", later), source="shop").batch
    session.commit()
    assert third.report["loyalty"]["reversed"] == 1
    assert balances(session) == {"M001": 60, "M002": 1}
    assert loyalty.check_invariants(session) == []
