"""Recording and listing touchpoints, on SQLite and PostgreSQL."""

import datetime as dt

import pytest
from sqlalchemy import select
from tests.crm.customer_data import T0, make_user

from patron.crm.services import customers, identity, touchpoints
from patron.crm.services.errors import Invalid, NotFound
from patron.crm.tables import AuditEvent, Touchpoint

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture
def customer(session):
    return customers.create_customer(session, actor=None, name="张三")


def test_record_stores_the_contact_its_staff_and_an_audit_event(session, customer):
    staff = make_user(session, "lin")
    before = dt.datetime.now(dt.UTC)
    tp = touchpoints.record_touchpoint(
        session, customer.id, channel="wechat", kind="message", note="  问了会员积分 ", actor=staff
    )
    session.commit()
    session.expire_all()
    tp = session.get(Touchpoint, tp.id)
    assert (tp.customer_id, tp.channel, tp.kind, tp.note) == (
        customer.id,
        "wechat",
        "message",
        "问了会员积分",
    )
    assert tp.staff_id == staff.id
    assert before <= tp.occurred_at <= dt.datetime.now(dt.UTC)
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "touchpoint.create")
    ).one()
    assert (event.object_type, event.object_id, event.actor_name) == (
        "touchpoint",
        str(tp.id),
        "lin",
    )
    assert event.after["customer_id"] == customer.id and event.after["note"] == "问了会员积分"


def test_times_in_any_zone_are_stored_in_utc(session, customer):
    local = dt.datetime(2024, 3, 5, 9, 30, tzinfo=SHANGHAI)
    a = touchpoints.record_touchpoint(
        session, customer.id, channel="store", kind="visit", occurred_at=local, actor=None
    )
    b = touchpoints.record_touchpoint(
        session,
        customer.id,
        channel="phone",
        kind="call",
        occurred_at="2024-03-05T09:30:00+08:00",
        actor=None,
    )
    session.commit()
    session.expire_all()
    expected = dt.datetime(2024, 3, 5, 1, 30, tzinfo=dt.UTC)
    assert session.get(Touchpoint, a.id).occurred_at == expected
    assert session.get(Touchpoint, b.id).occurred_at == expected
    assert b.staff_id is None


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"channel": "fax"}, "channel"),
        ({"kind": "gossip"}, "kind"),
        ({"note": "x" * 4001}, "note"),
        ({"occurred_at": dt.datetime(2024, 3, 5, 9, 30)}, "occurred_at"),
        ({"occurred_at": "2024-03-05 09:30"}, "occurred_at"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"occurred_at": dt.datetime.now(dt.UTC) + dt.timedelta(days=3)}, "occurred_at"),
    ],
)
def test_unusable_contacts_are_refused(session, customer, options, field):
    values = {"channel": "phone", "kind": "call", **options}
    with pytest.raises(Invalid) as refused:
        touchpoints.record_touchpoint(session, customer.id, actor=None, **values)
    assert refused.value.field == field
    assert session.scalar(select(Touchpoint.id)) is None


def test_a_merged_id_records_on_the_survivor_and_an_unknown_one_is_not_found(session, customer):
    other = customers.create_customer(session, actor=None, name="old")
    identity.merge_customers(session, customer.id, other.id, rule="manual")
    tp = touchpoints.record_touchpoint(session, other.id, channel="web", kind="note", actor=None)
    assert tp.customer_id == customer.id
    with pytest.raises(NotFound):
        touchpoints.record_touchpoint(session, 999_999, channel="web", kind="note", actor=None)
    with pytest.raises(NotFound):
        touchpoints.list_touchpoints(session, 999_999)


def test_list_is_newest_first_with_a_total(session, customer):
    for days in (0, 2, 1):
        touchpoints.record_touchpoint(
            session,
            customer.id,
            channel="phone",
            kind="call",
            note=f"day {days}",
            occurred_at=T0 + dt.timedelta(days=days),
            actor=None,
        )
    items, total = touchpoints.list_touchpoints(session, customer.id)
    assert ([t.note for t in items], total) == (["day 2", "day 1", "day 0"], 3)
    items, total = touchpoints.list_touchpoints(session, customer.id, limit=1, offset=1)
    assert ([t.note for t in items], total) == (["day 1"], 3)
