"""Customers: create, update, look up, search and the 360, on SQLite and PostgreSQL."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from sqlalchemy import select
from tests.crm.customer_data import T0, QueryCounter, make_order, make_run, make_user

from patron.crm.services import customers, identity, touchpoints
from patron.crm.services.errors import Conflict, Invalid, NotFound
from patron.crm.tables import AuditEvent, Customer, CustomerConsent, CustomerTag


def events(session, action):
    query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    return list(session.scalars(query))


# --- create -------------------------------------------------------------------------------


def test_create_normalises_contacts_and_stores_everything_with_an_audit_event(session):
    actor = make_user(session, "lin")
    owner = make_user(session, "wang", role="manager")
    c = customers.create_customer(
        session,
        actor=actor,
        name=" 张三 ",
        phone="+86 138-0013-8000",
        email=" Zhang.San@Example.COM ",
        birthday="1990-05-01",
        gender="Female",
        region="上海",
        language="zh",
        owner_id=owner.id,
        tags=["vip", " vip ", "", "b2b"],
        consents={"sms": True, "email": False, "wechat": None},
        external_ids={"tmall": "tb_001"},
    )
    session.commit()
    assert (c.name, c.phone, c.phone_norm) == ("张三", "+86 138-0013-8000", "13800138000")
    assert c.email_norm == "zhang.san@example.com"
    assert c.birthday == dt.date(1990, 5, 1)
    assert (c.gender, c.language, c.owner_id) == ("female", "zh-CN", owner.id)
    tags = session.scalars(select(CustomerTag.tag).where(CustomerTag.customer_id == c.id))
    assert sorted(tags) == ["b2b", "vip"]
    consents = session.execute(
        select(CustomerConsent.channel, CustomerConsent.granted).where(
            CustomerConsent.customer_id == c.id
        )
    ).all()
    assert sorted(consents) == [("email", False), ("sms", True)]
    (event,) = events(session, "customer.create")
    assert (event.actor_name, event.object_type, event.object_id) == ("lin", "customer", str(c.id))
    assert event.after["phone"] == "+86 138-0013-8000"
    assert event.after["birthday"] == "1990-05-01"
    assert event.after["tags"] == ["vip", "b2b"]
    assert event.after["external_ids"] == {"tmall": "tb_001"}
    assert event.before is None


def test_a_phone_or_email_already_taken_is_a_conflict_naming_the_customer(session):
    first = customers.create_customer(
        session, actor=None, name="A", phone="13800138000", email="a@example.com"
    )
    with pytest.raises(Conflict) as taken:
        customers.create_customer(session, actor=None, name="B", phone="0086 138 0013 8000")
    assert taken.value.existing_id == first.id
    assert taken.value.field == "phone"
    assert str(first.id) in taken.value.message
    with pytest.raises(Conflict) as taken:
        customers.create_customer(session, actor=None, name="B", email="A@EXAMPLE.com")
    assert (taken.value.field, taken.value.existing_id) == ("email", first.id)
    third = customers.create_customer(session, actor=None, name="C", external_ids={"tmall": "x1"})
    with pytest.raises(Conflict) as taken:
        customers.create_customer(session, actor=None, name="D", external_ids={"tmall": "x1"})
    assert (taken.value.field, taken.value.existing_id) == ("external_ids", third.id)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("phone", "n/a"),
        ("email", "not-an-email"),
        ("gender", "unknown"),
        ("birthday", "1990-13-01"),
        ("birthday", dt.date.today() + dt.timedelta(days=2)),
        ("language", "fr"),
        ("owner_id", 999_999),
        ("name", "x" * 129),
        ("consents", {"fax": True}),
        ("consents", {"sms": "yes"}),
        ("tags", [3]),
        ("external_ids", {"tmall": ""}),
    ],
)
def test_unusable_values_are_refused_naming_the_field(session, field, value):
    with pytest.raises(Invalid) as refused:
        customers.create_customer(session, actor=None, **{field: value})
    assert refused.value.field == field
    assert refused.value.message
    assert session.scalar(select(Customer.id)) is None


# --- update and get -----------------------------------------------------------------------


def test_update_writes_and_audits_only_what_changed(session):
    actor = make_user(session)
    c = customers.create_customer(
        session, actor=actor, name="Li Na", phone="13800138000", tags=["a"], consents={"sms": True}
    )
    changed = customers.update_customer(
        session,
        c.id,
        {
            "name": "Li Na",
            "phone": "+86 139 0000 0000",
            "region": "北京",
            "tags": ["b", "a"],
            "consents": {"sms": True, "email": True},
        },
        actor=actor,
    )
    session.commit()
    assert changed.id == c.id
    assert (c.phone_norm, c.region) == ("13900000000", "北京")
    (event,) = events(session, "customer.update")
    assert event.before == {
        "phone": "13800138000",
        "region": None,
        "tags": ["a"],
        "consents": {"email": None},
    }
    assert event.after == {
        "phone": "+86 139 0000 0000",
        "region": "北京",
        "tags": ["b", "a"],
        "consents": {"email": True},
    }
    tags = session.scalars(select(CustomerTag.tag).where(CustomerTag.customer_id == c.id))
    assert sorted(tags) == ["a", "b"]


def test_an_update_that_changes_nothing_is_not_audited(session):
    c = customers.create_customer(session, actor=None, name="Li", phone="13800138000")
    customers.update_customer(
        session, c.id, {"name": "Li", "phone": "138 0013 8000 ", "tags": []}, actor=None
    )
    # The phone is as entered: a new spelling is a change, but not a conflict with itself.
    assert [e.after for e in events(session, "customer.update")] == [{"phone": "138 0013 8000"}]
    customers.update_customer(session, c.id, {"phone": "138 0013 8000"}, actor=None)
    assert len(events(session, "customer.update")) == 1


def test_update_refuses_unknown_fields_taken_contacts_and_clears_consents(session):
    a = customers.create_customer(session, actor=None, name="A", phone="13800138000")
    b = customers.create_customer(
        session, actor=None, name="B", email="b@example.com", consents={"sms": True}
    )
    with pytest.raises(Invalid) as refused:
        customers.update_customer(session, b.id, {"merged_into_id": a.id}, actor=None)
    assert refused.value.field == "merged_into_id"
    with pytest.raises(Conflict) as taken:
        customers.update_customer(session, b.id, {"phone": "+8613800138000"}, actor=None)
    assert taken.value.existing_id == a.id
    customers.update_customer(session, b.id, {"consents": {"sms": None}, "email": ""}, actor=None)
    session.commit()
    assert (
        session.scalar(select(CustomerConsent).where(CustomerConsent.customer_id == b.id)) is None
    )
    assert (b.email, b.email_norm) == (None, None)


def test_get_customer_resolves_a_merged_id_to_its_survivor(session):
    a = customers.create_customer(session, actor=None, name="A")
    b = customers.create_customer(session, actor=None, name="B")
    identity.merge_customers(session, a.id, b.id, rule="manual")
    assert customers.get_customer(session, b.id).id == a.id
    with pytest.raises(NotFound):
        customers.get_customer(session, 987_654)


# --- search -------------------------------------------------------------------------------


@pytest.fixture
def people(session):
    made = {}
    for name, phone, email in [
        ("张三", "13800138000", "zhang@example.com"),
        ("张三丰", "13800139999", None),
        ("Li Na", "13912345678", "li.na@example.com"),
        ("Anna Li", None, "anna@example.org"),
        ("100% Juice", None, None),
    ]:
        made[name] = customers.create_customer(
            session, actor=None, name=name, phone=phone, email=email
        )
    session.commit()
    return made


def names(items):
    return [item["name"] for item in items]


def test_search_by_phone_prefix_in_any_spelling(session, people):
    items, total = customers.search_customers(session, q="+86 138 0013", sort="name")
    assert (names(items), total) == (["张三", "张三丰"], 2)
    items, total = customers.search_customers(session, q="139-1234", sort="name")
    assert names(items) == ["Li Na"]


def test_search_by_email_name_id_and_external_id(session, people):
    assert names(customers.search_customers(session, q="LI.NA@")[0]) == ["Li Na"]
    assert names(customers.search_customers(session, q="张三", sort="name")[0]) == [
        "张三",
        "张三丰",
    ]
    target = people["Anna Li"]
    assert names(customers.search_customers(session, q=str(target.id))[0]) == ["Anna Li"]
    assert names(customers.search_customers(session, q=f"#{target.id}")[0]) == ["Anna Li"]
    customers.update_customer(session, target.id, {"name": "Anna Li"}, actor=None)
    c = customers.create_customer(
        session, actor=None, name="Wu", external_ids={"pos": "M-0042", "tmall": "tb9"}
    )
    assert names(customers.search_customers(session, q="M-0042")[0]) == ["Wu"]
    assert names(customers.search_customers(session, q="tb9")[0]) == ["Wu"]
    assert customers.search_customers(session, q="M-004")[1] == 0  # external ids are exact
    assert c.id


def test_search_matches_inside_names_only_when_prefixes_leave_room(session, people):
    # "li" starts "Li Na" (the capitalised spelling) and sits inside "Anna Li".
    items, total = customers.search_customers(session, q="li", sort="name")
    assert (names(items), total) == (["Anna Li", "Li Na"], 2)
    items, total = customers.search_customers(session, q="li", sort="name", limit=1)
    assert (names(items), total) == (["Li Na"], 1)
    # Digits never trigger the substring scan.
    assert customers.search_customers(session, q="0013")[1] == 0


def test_search_treats_like_wildcards_as_text(session, people):
    assert names(customers.search_customers(session, q="100%")[0]) == ["100% Juice"]
    assert customers.search_customers(session, q="%")[1] == 1
    assert customers.search_customers(session, q="_")[1] == 0


def test_search_excludes_merged_customers(session, people):
    identity.merge_customers(session, people["张三"].id, people["张三丰"].id, rule="manual")
    items, total = customers.search_customers(session, q="张")
    assert (names(items), total) == (["张三"], 1)
    assert customers.search_customers(session)[1] == 4


def test_filters_and_sorts_use_the_latest_finished_run(session, people):
    ids = {name: c.id for name, c in people.items()}
    make_run(session, {ids["张三"]: {"grade": "gold", "predicted_clv": 50.0}})
    make_run(
        session,
        {
            ids["张三"]: {"grade": "gold", "predicted_clv": 900.0, "churn_risk": "high"},
            ids["Li Na"]: {"grade": "silver", "predicted_clv": 300.0},
            ids["Anna Li"]: {"grade": "gold", "predicted_clv": None, "p_alive": float("inf")},
        },
    )
    make_run(session, {ids["Li Na"]: {"grade": "gold"}}, status="failed")
    make_run(session, {ids["Li Na"]: {"grade": "gold"}}, status="running")

    items, total = customers.search_customers(session)
    assert total == 5
    assert names(items)[:2] == ["张三", "Li Na"]  # highest CLV first
    assert items[0]["predicted_clv"] == 900.0 and items[0]["churn_risk"] == "high"
    assert set(names(items)[2:]) == {"Anna Li", "张三丰", "100% Juice"}  # unscored last
    anna = next(i for i in items if i["name"] == "Anna Li")
    assert anna["grade"] == "gold" and anna["predicted_clv"] is None
    assert anna["p_alive"] is None  # JSON has no infinity
    assert next(i for i in items if i["name"] == "张三丰")["grade"] is None

    items, total = customers.search_customers(session, grade="gold", sort="predicted_clv")
    assert (names(items), total) == (["张三", "Anna Li"], 2)
    assert customers.search_customers(session, risk="high")[1] == 1
    assert customers.search_customers(session, stage="mature", grade="silver")[1] == 1
    assert customers.search_customers(session, stage="churned")[1] == 0


def test_score_filters_find_nothing_before_any_run(session, people):
    assert customers.search_customers(session, grade="gold") == ([], 0)
    items, total = customers.search_customers(session)
    assert total == 5 and all(item["grade"] is None for item in items)


def test_tag_owner_sort_and_pages(session, people):
    owner = make_user(session, "wang")
    customers.update_customer(session, people["Li Na"].id, {"tags": ["vip"]}, actor=None)
    customers.update_customer(
        session, people["张三"].id, {"tags": ["vip", "b2b"], "owner_id": owner.id}, actor=None
    )
    items, total = customers.search_customers(session, tag="vip", sort="name")
    assert (names(items), total) == (["Li Na", "张三"], 2)
    assert items[1]["tags"] == ["b2b", "vip"]
    assert names(customers.search_customers(session, owner_id=owner.id)[0]) == ["张三"]
    everyone = names(customers.search_customers(session, sort="name", limit=50)[0])
    assert everyone == sorted(everyone)
    page, total = customers.search_customers(session, sort="name", limit=2, offset=2)
    assert (names(page), total) == (everyone[2:4], 5)
    assert customers.search_customers(session, sort="name", offset=99) == ([], 5)
    newest = customers.search_customers(session, sort="-created_at", limit=1)[0]
    assert newest[0]["id"] == max(c.id for c in people.values())


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"sort": "phone"}, "sort"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"offset": -1}, "offset"),
    ],
)
def test_search_refuses_a_bad_sort_or_page(session, options, field):
    with pytest.raises(Invalid) as refused:
        customers.search_customers(session, **options)
    assert refused.value.field == field


# --- the 360 ------------------------------------------------------------------------------


def test_the_360_holds_everything_in_json_friendly_types(session):
    staff = make_user(session, "lin", display_name="林")
    c = customers.create_customer(
        session,
        actor=staff,
        name="张三",
        phone="13800138000",
        owner_id=staff.id,
        tags=["vip"],
        consents={"sms": True},
        external_ids={"tmall": "tb1"},
    )
    other = customers.create_customer(session, actor=None, name="张三 (old)")
    make_order(session, other.id, "SO0", at=T0 - dt.timedelta(days=30), amount="5.00")
    identity.merge_customers(session, c.id, other.id, rule="manual", actor=staff)
    make_order(
        session,
        c.id,
        "SO1",
        at=T0,
        amount="1234.50",
        lines=[("A1", "茶叶", "2", "600.00"), ("B2", "Cup", "1", "34.50")],
    )
    make_order(session, c.id, "SO2", at=T0 + dt.timedelta(days=2), amount="-34.50")
    touchpoints.record_touchpoint(
        session,
        c.id,
        channel="phone",
        kind="call",
        note="回访",
        occurred_at=T0 + dt.timedelta(days=1),
        actor=staff,
    )
    old_run = make_run(session, {c.id: {"grade": "silver", "predicted_clv": 100.0}})
    run = make_run(session, {c.id: {"grade": "gold", "predicted_clv": 800.0}})
    session.commit()

    d = customers.customer_360(session, other.id)  # the merged id shows the survivor
    assert d["customer"]["id"] == c.id and d["customer"]["owner_name"] == "林"
    assert "phone_norm" not in d["customer"]
    assert d["external_ids"] == [{"source": "tmall", "external_id": "tb1"}]
    assert (d["tags"], d["consents"]) == (["vip"], {"sms": True})
    assert [o["order_no"] for o in d["orders"]] == ["SO2", "SO1", "SO0"]
    assert d["orders_total"] == 3 and d["orders_amount"] == Decimal("1205.00")
    assert d["orders"][1]["amount"] == Decimal("1234.50")
    assert [(ln["name"], ln["quantity"]) for ln in d["orders"][1]["lines"]] == [
        ("茶叶", Decimal("2")),
        ("Cup", Decimal("1")),
    ]
    assert d["touchpoints"][0]["staff_name"] == "林" and d["touchpoints_total"] == 1
    assert d["score"]["run_id"] == run.id and d["score"]["grade"] == "gold"
    assert d["score"]["scored_at"] == T0
    assert [h["run_id"] for h in d["score_history"]] == [old_run.id, run.id]
    assert [h["predicted_clv"] for h in d["score_history"]] == [100.0, 800.0]
    assert [(m["survivor_id"], m["merged_id"]) for m in d["merges"]] == [(c.id, other.id)]
    assert [(t["type"], t.get("order_no")) for t in d["timeline"]] == [
        ("order", "SO2"),
        ("touchpoint", None),
        ("order", "SO1"),
        ("order", "SO0"),
    ]
    assert d["orders"][0]["ordered_at"].tzinfo is not None
    json.dumps(d, default=lambda v: str(v) if isinstance(v, Decimal | dt.date) else None)

    limited = customers.customer_360(session, c.id, orders_limit=1, touchpoints_limit=0)
    assert len(limited["orders"]) == 1 and limited["orders_total"] == 3
    assert limited["touchpoints"] == [] and limited["touchpoints_total"] == 1


def test_the_360_of_a_customer_never_scored_or_contacted(session):
    c = customers.create_customer(session, actor=None, name="新客")
    make_run(session, {})
    d = customers.customer_360(session, c.id)
    assert d["score"] is None and d["score_history"] == []
    assert d["orders"] == [] and d["orders_total"] == 0 and d["orders_amount"] == 0
    assert d["timeline"] == [] and d["merges"] == []


def test_the_360_takes_the_same_number_of_queries_for_any_history(session, engine):
    c = customers.create_customer(session, actor=None, name="A")
    make_run(session, {c.id: {}})

    def queries():
        with QueryCounter(engine) as counter:
            customers.customer_360(session, c.id)
        return counter.count

    make_order(session, c.id, "SO0", lines=[("a", "a", "1", "1.00")])
    touchpoints.record_touchpoint(session, c.id, channel="web", kind="note", actor=None)
    session.flush()
    few = queries()
    for i in range(1, 30):
        make_order(session, c.id, f"SO{i}", lines=[("a", "a", "1", "1.00")] * 3)
        touchpoints.record_touchpoint(session, c.id, channel="web", kind="note", actor=None)
    session.flush()
    assert queries() == few
    assert few <= 10


def test_the_360_of_an_unknown_customer_is_not_found(session):
    with pytest.raises(NotFound):
        customers.customer_360(session, 424_242)


def test_many_matches_page_through_scored_then_unscored_in_one_order(session, people, monkeypatch):
    ids = {name: c.id for name, c in people.items()}
    make_run(
        session,
        {
            ids["张三"]: {"predicted_clv": 10.0, "last_purchase": dt.date(2024, 1, 5)},
            ids["Li Na"]: {"predicted_clv": 30.0, "last_purchase": None},
            ids["Anna Li"]: {"predicted_clv": None, "last_purchase": dt.date(2024, 1, 1)},
        },
    )
    orders = {}
    for sort in ("-predicted_clv", "predicted_clv", "last_purchase", "-last_purchase"):
        expected = [i["id"] for i in customers.search_customers(session, sort=sort)[0]]
        assert len(expected) == 5
        # Beyond the exact count, pages walk the scores in order, then the unscored.
        monkeypatch.setattr("patron.crm.services.customer_search.COUNT_EXACT_UP_TO", 1)
        pages = []
        for offset in range(0, 6, 2):
            items, total = customers.search_customers(session, sort=sort, limit=2, offset=offset)
            assert total >= 2  # PostgreSQL estimates beyond the exact bound
            pages += [i["id"] for i in items]
        monkeypatch.undo()
        assert pages == expected, sort
        orders[sort] = expected
    unscored = sorted([ids["张三丰"], ids["100% Juice"]])
    assert orders["-predicted_clv"] == [
        ids["Li Na"],
        ids["张三"],
        *sorted([ids["Anna Li"], *unscored]),
    ]
    assert orders["predicted_clv"] == [
        ids["张三"],
        ids["Li Na"],
        *sorted([ids["Anna Li"], *unscored]),
    ]
    assert orders["-last_purchase"] == [
        ids["张三"],
        ids["Anna Li"],
        *sorted([ids["Li Na"], *unscored]),
    ]
    assert orders["last_purchase"] == [
        ids["Anna Li"],
        ids["张三"],
        *sorted([ids["Li Na"], *unscored]),
    ]


def test_a_broad_substring_match_is_still_counted_and_paged(session, people, monkeypatch):
    # "n" starts no name or email, and sits inside two names.
    assert customers.search_customers(session, q="n", sort="name") == (
        customers.search_customers(session, q="N", sort="name")
    )
    items, total = customers.search_customers(session, q="n", sort="name")
    assert (names(items), total) == (["Anna Li", "Li Na"], 2)
    monkeypatch.setattr("patron.crm.services.customer_search.COUNT_EXACT_UP_TO", 1)
    items, total = customers.search_customers(session, q="n", sort="name", limit=1, offset=1)
    assert names(items) == ["Li Na"] and total >= 2
