"""Identity resolution and merges, on SQLite and PostgreSQL."""

import datetime as dt

import pytest
from sqlalchemy import select
from tests.crm.customer_data import T0, make_order, make_user

from patron.crm.services import customers, identity, touchpoints
from patron.crm.services.errors import Conflict, Invalid, NotFound
from patron.crm.tables import (
    AuditEvent,
    Customer,
    CustomerConsent,
    CustomerExternalId,
    CustomerMerge,
    CustomerTag,
    Order,
    Touchpoint,
)


def add(session, **values):
    customer = Customer(**values)
    session.add(customer)
    session.flush()
    return customer


def test_find_match_uses_the_normalised_phone_then_the_email(session):
    by_phone = add(session, name="A", phone="138 0013 8000", phone_norm="13800138000")
    by_email = add(session, name="B", email="B@x.com", email_norm="b@x.com")
    assert identity.find_match(session, phone="+86 13800138000") is by_phone
    assert identity.find_match(session, email=" b@X.COM") is by_email
    # Both keys name someone: the phone decides, unless email is configured first.
    assert identity.find_match(session, phone="13800138000", email="b@x.com") is by_phone
    found = identity.find_match(
        session, phone="13800138000", email="b@x.com", match_on=("email", "phone")
    )
    assert found is by_email
    assert identity.find_match(session, phone="13800138000", match_on=("email",)) is None
    assert identity.find_match(session, phone="n/a", email="nobody") is None
    match = identity.match_customer(session, phone="0086 138-0013-8000")
    assert (match.customer, match.rule, match.key) == (by_phone, "phone", "13800138000")


def test_the_match_setting_comes_from_the_environment(session, monkeypatch):
    add(session, name="A", phone="13800138000", phone_norm="13800138000")
    monkeypatch.setenv("PATRON_MATCH_ON", "email")
    assert identity.match_on_setting() == ("email",)
    assert identity.find_match(session, phone="13800138000") is None
    monkeypatch.setenv("PATRON_MATCH_ON", "none")
    assert identity.match_on_setting() == ()
    monkeypatch.setenv("PATRON_MATCH_ON", "phone, wechat")
    with pytest.raises(Invalid) as refused:
        identity.match_on_setting()
    assert "wechat" in refused.value.message
    monkeypatch.delenv("PATRON_MATCH_ON")
    assert identity.match_on_setting() == ("phone", "email")


def test_find_match_ignores_merged_customers_and_prefers_the_oldest(session):
    old = add(session, name="old", phone_norm="13800138000")
    new = add(session, name="new", phone_norm="13800138000")
    assert identity.find_match(session, phone="13800138000") is old
    identity.merge_customers(session, new.id, old.id, rule="phone", key="13800138000")
    assert identity.find_match(session, phone="13800138000") is new


@pytest.fixture
def pair(session):
    staff = make_user(session, "lin")
    survivor = customers.create_customer(
        session,
        actor=None,
        name="张三",
        phone="13800138000",
        tags=["vip"],
        consents={"sms": True, "email": True},
        external_ids={"tmall": "tb1"},
    )
    merged = customers.create_customer(
        session,
        actor=None,
        name="张三 POS",
        email="zs@example.com",
        birthday="1990-01-02",
        region="上海",
        tags=["vip", "pos"],
        consents={"sms": False, "wechat": True},
        external_ids={"pos": "P9"},
    )
    # The survivor's email consent is older than the merged record's SMS refusal.
    for row in session.scalars(select(CustomerConsent)):
        row.updated_at = T0 if row.customer_id == survivor.id else T0 + dt.timedelta(days=1)
    make_order(session, merged.id, "SO1")
    make_order(session, survivor.id, "SO2")
    touchpoints.record_touchpoint(session, merged.id, channel="store", kind="visit", actor=staff)
    session.commit()
    return staff, survivor, merged


def test_merge_moves_everything_to_the_survivor(session, pair):
    staff, survivor, merged = pair
    merge = identity.merge_customers(
        session, survivor.id, merged.id, rule="email", key="zs@example.com", actor=staff
    )
    session.commit()
    session.expire_all()

    assert (merge.survivor_id, merge.merged_id, merge.rule) == (survivor.id, merged.id, "email")
    assert merge.actor_id == staff.id
    assert session.get(Customer, merged.id).merged_into_id == survivor.id
    orders = session.scalars(select(Order.order_no).where(Order.customer_id == survivor.id))
    assert sorted(orders) == ["SO1", "SO2"]
    assert session.scalar(select(Touchpoint.customer_id)) == survivor.id
    ids = session.execute(select(CustomerExternalId.source, CustomerExternalId.customer_id)).all()
    assert sorted(ids) == [("pos", survivor.id), ("tmall", survivor.id)]
    tags = session.execute(select(CustomerTag.customer_id, CustomerTag.tag)).all()
    assert sorted(tags) == [(survivor.id, "pos"), (survivor.id, "vip")]
    consents = session.execute(
        select(CustomerConsent.customer_id, CustomerConsent.channel, CustomerConsent.granted)
    ).all()
    assert sorted(consents) == [
        (survivor.id, "email", True),
        (survivor.id, "sms", False),  # the newer answer wins
        (survivor.id, "wechat", True),
    ]
    s = session.get(Customer, survivor.id)
    assert (s.name, s.phone_norm) == ("张三", "13800138000")  # the survivor's own values stay
    assert (s.email, s.email_norm, s.region) == ("zs@example.com", "zs@example.com", "上海")
    assert s.birthday == dt.date(1990, 1, 2)

    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "customer.merge")).one()
    assert (event.object_id, event.actor_name) == (str(survivor.id), "lin")
    assert event.before["email"] is None and event.after["email"] == "zs@example.com"
    assert event.after["moved"]["orders"] == 1
    assert event.after["moved"]["touchpoints"] == 1
    assert event.after["merged_id"] == merged.id and event.after["merge_id"] == merge.id


def test_merge_moves_feedback_and_survey_answers_to_the_survivor(session, pair):
    from patron.crm.services.feedback import answers, invitations, records
    from patron.crm.tables import FeedbackRecord, SurveyInvitation, SurveyResponse

    staff, survivor, merged = pair
    records.record_feedback(
        session, merged.id, channel="phone", kind="praise", text="送货很快", actor=staff
    )
    made = invitations.create_invitations(session, kind="nps", customer_id=merged.id, actor=staff)
    answers.answer_survey(session, made.created[0].token, score=9, comment="不错")
    session.commit()
    identity.merge_customers(session, survivor.id, merged.id, rule="manual", actor=staff)
    session.commit()
    for table in (FeedbackRecord, SurveyInvitation, SurveyResponse):
        assert set(session.scalars(select(table.customer_id))) == {survivor.id}
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "customer.merge")).one()
    assert event.after["moved"]["feedback_records"] == 1
    assert event.after["moved"]["survey_responses"] == 1


def test_an_earlier_merge_points_at_the_new_survivor(session):
    a, b, c = (add(session, name=n) for n in "abc")
    identity.merge_customers(session, b.id, c.id, rule="manual")
    identity.merge_customers(session, a.id, b.id, rule="manual")
    session.commit()
    session.expire_all()
    assert session.get(Customer, c.id).merged_into_id == a.id
    assert customers.get_customer(session, c.id).id == a.id


def test_merge_refusals(session):
    a, b, c = (add(session, name=n) for n in "abc")
    with pytest.raises(Invalid) as refused:
        identity.merge_customers(session, a.id, a.id, rule="manual")
    assert refused.value.code == "merge_self"
    with pytest.raises(Invalid) as refused:
        identity.merge_customers(session, a.id, b.id, rule="name")
    assert refused.value.field == "rule"
    with pytest.raises(NotFound):
        identity.merge_customers(session, a.id, 999_999, rule="manual")
    identity.merge_customers(session, a.id, b.id, rule="manual")
    with pytest.raises(Conflict) as refused:
        identity.merge_customers(session, c.id, b.id, rule="manual")  # b is gone already
    assert refused.value.field == "merged_id"
    with pytest.raises(Conflict) as refused:
        identity.merge_customers(session, b.id, c.id, rule="manual")  # into a merged one
    assert refused.value.field == "survivor_id"
    assert session.scalar(select(CustomerMerge.id).where(CustomerMerge.merged_id == c.id)) is None


def test_list_merges_newest_first_with_a_total_and_a_customer_filter(session):
    a, b, c, d = (add(session, name=n) for n in "abcd")
    first = identity.merge_customers(session, a.id, b.id, rule="phone", key="13800138000")
    second = identity.merge_customers(session, c.id, d.id, rule="manual")
    merges, total = identity.list_merges(session)
    assert ([m.id for m in merges], total) == ([second.id, first.id], 2)
    merges, total = identity.list_merges(session, limit=1, offset=1)
    assert ([m.id for m in merges], total) == ([first.id], 2)
    merges, total = identity.list_merges(session, customer_id=d.id)
    assert ([m.id for m in merges], total) == ([second.id], 1)
