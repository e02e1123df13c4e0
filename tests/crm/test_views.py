"""Masking customer data for analysts, and the export rows, on SQLite and PostgreSQL."""

import copy
import datetime as dt
from decimal import Decimal

import pytest
from tests.crm.customer_data import T0, make_order, make_run, make_user

from patron.crm.services import customers, identity, touchpoints, views
from patron.crm.services.errors import Invalid

ROW = {
    "id": 7,
    "name": "张三丰",
    "phone": "+86 138 1234 5678",
    "email": "alice@example.com",
    "birthday": dt.date(1990, 5, 1),
    "region": "上海",
    "grade": "gold",
    "predicted_clv": 812.5,
}


def test_a_list_row_is_masked_for_analysts_and_left_alone_for_staff():
    original = copy.deepcopy(ROW)
    masked = views.customer_view(ROW, mask=True)
    assert masked == {
        **ROW,
        "name": "张**",
        "phone": "138****5678",
        "email": "a***@example.com",
        "birthday": None,
    }
    assert ROW == original  # the caller's dict is never changed
    assert views.customer_view(ROW, mask=False) is ROW
    assert views.customer_view({"id": 1, "name": "", "phone": None}, mask=True) == {
        "id": 1,
        "name": "",
        "phone": None,
    }


def test_mask_text_hides_numbers_and_addresses_in_notes():
    note = "客户来电 138-1234-5678，邮箱 li.na@example.com，订单号 SO12，身份证 110101199003071234"
    masked = views.mask_text(note)
    assert "1234-5678" not in masked and "138****5678" in masked
    assert "l***@example.com" in masked and "li.na" not in masked
    assert "SO12" in masked  # short codes are not personal
    assert "19900307" not in masked


@pytest.fixture
def full_360(session):
    staff = make_user(session, "lin")
    c = customers.create_customer(
        session,
        actor=staff,
        name="Grace Li",
        phone="13812345678",
        email="grace@example.com",
        birthday="1990-05-01",
    )
    other = customers.create_customer(session, actor=None, name="G L", phone="13912345678")
    identity.merge_customers(session, c.id, other.id, rule="phone", key="13912345678")
    make_order(session, c.id, "SO1", lines=[("A1", "Green Tea", "1", "9.90")])
    touchpoints.record_touchpoint(
        session,
        c.id,
        channel="phone",
        kind="call",
        note="call back on 13912345678",
        occurred_at=T0 + dt.timedelta(hours=1),
        actor=staff,
    )
    make_run(session, {c.id: {}})
    session.commit()
    return customers.customer_360(session, c.id)


def test_the_360_is_masked_everywhere_it_holds_personal_data(session, full_360):
    original = copy.deepcopy(full_360)
    masked = views.customer_view(full_360, mask=True)
    assert full_360 == original
    person = masked["customer"]
    assert (person["name"], person["phone"], person["email"], person["birthday"]) == (
        "G*** Li",
        "138****5678",
        "g***@example.com",
        None,
    )
    assert masked["touchpoints"][0]["note"] == "call back on 139****5678"
    notes = [t["note"] for t in masked["timeline"] if t["type"] == "touchpoint"]
    assert notes == ["call back on 139****5678"]
    assert masked["merges"][0]["key"] == "139****5678"
    # What is not personal stays: products, money, scores, staff.
    order = next(t for t in masked["timeline"] if t["type"] == "order")
    assert order["lines"][0]["name"] == "Green Tea"
    assert masked["orders"][0]["amount"] == Decimal("100.00")
    assert masked["score"] == full_360["score"]
    assert masked["touchpoints"][0]["staff_name"] == "lin"
    text = repr(masked)
    for secret in ("13812345678", "13912345678", "grace@", "Grace", "date(1990"):
        assert secret not in text
    assert views.customer_view(full_360, mask=False) is full_360


def test_merge_view_masks_emails_and_phones_by_rule():
    merge = {"id": 1, "rule": "email", "key": "bob@example.com"}
    assert views.merge_view(merge, mask=True)["key"] == "b***@example.com"
    assert views.merge_view(merge, mask=False) is merge
    assert views.merge_view({"rule": "manual", "key": ""}, mask=True) == {
        "rule": "manual",
        "key": "",
    }


@pytest.fixture
def shop(session):
    made = []
    for i, (name, clv) in enumerate([("张三", 500.0), ("李四", 900.0), ("王五", None)]):
        c = customers.create_customer(
            session,
            actor=None,
            name=name,
            phone=f"1380013800{i}",
            email=f"u{i}@example.com",
            tags=["vip", "b2b"] if i == 0 else [],
        )
        made.append((c, clv))
    make_run(
        session,
        {c.id: {"predicted_clv": clv, "grade": "gold"} for c, clv in made if clv is not None},
    )
    session.commit()
    return [c for c, _ in made]


def test_export_rows_hold_profile_and_scores_masked_as_the_user_sees(session, shop):
    rows = list(views.export_rows(session, mask=True))
    assert [r["id"] for r in rows] == [shop[1].id, shop[0].id, shop[2].id]
    assert all(list(r) == list(views.EXPORT_FIELDS) for r in rows)
    first = rows[1]
    assert (first["name"], first["phone"], first["email"]) == (
        "张*",
        "138****8000",
        "u***@example.com",
    )
    assert first["tags"] == "b2b; vip"
    assert first["predicted_clv"] == 500.0 and first["total_spend"] == Decimal("100.00")
    assert first["grade"] == "gold" and first["last_purchase"] == dt.date(2024, 3, 1)
    assert rows[2]["grade"] is None and rows[2]["tags"] == ""

    plain = list(views.export_rows(session, mask=False, grade="gold", sort="name"))
    assert [r["name"] for r in plain] == sorted(["张三", "李四"])
    assert plain[0]["phone"].startswith("1380013800")


def test_export_streams_in_chunks_and_refuses_a_bad_sort(session, shop):
    for i in range(4):
        customers.create_customer(session, actor=None, name=f"extra {i}")
    rows = list(views.export_rows(session, mask=False, sort="name", chunk=2))
    assert len(rows) == 7 and len({r["id"] for r in rows}) == 7
    with pytest.raises(Invalid):
        list(views.export_rows(session, mask=False, sort="phone"))
