"""Customers over the API: create, change, search, the 360, touchpoints, masking, bad input."""

import pytest

from patron.crm.db import session_scope
from patron.crm.tables import CustomerMerge

BASE = "/api/v1/customers"


def _create(client, headers, **values):
    response = client.post(BASE, json=values, headers=headers)
    assert response.status_code == 201, response.json()
    return response.json()


def test_create_then_read_the_360(client, users):
    staff = users.headers("staff")
    created = _create(
        client,
        staff,
        name="张三丰",
        phone="+86 138-0013-8000",
        email="Zhang@Example.com",
        birthday="1990-05-17",
        gender="male",
        region="上海",
        tags=["vip", "wechat"],
        consents={"sms": True, "email": False},
        external_ids={"shop": "C001"},
    )
    assert created["name"] == "张三丰"
    assert created["birthday"] == "1990-05-17"
    assert sorted(created["tags"]) == ["vip", "wechat"]
    assert created["consents"] == {"email": False, "sms": True}
    assert "phone_norm" not in created

    view = client.get(f"{BASE}/{created['id']}", headers=staff)
    assert view.status_code == 200
    body = view.json()
    assert body["customer"]["id"] == created["id"]
    assert body["customer"]["phone"] == "+86 138-0013-8000"
    assert body["external_ids"] == [{"source": "shop", "external_id": "C001"}]
    assert body["orders"] == [] and body["orders_total"] == 0
    assert body["score"] is None and body["score_history"] == []


def test_patch_changes_only_what_is_sent(client, users):
    staff = users.headers("staff")
    created = _create(client, staff, name="李四", region="北京", tags=["a"])
    response = client.patch(
        f"{BASE}/{created['id']}", json={"region": "杭州", "tags": ["b", "c"]}, headers=staff
    )
    assert response.status_code == 200
    body = response.json()
    assert body["region"] == "杭州"
    assert body["name"] == "李四"
    assert sorted(body["tags"]) == ["b", "c"]
    cleared = client.patch(f"{BASE}/{created['id']}", json={"region": None}, headers=staff)
    assert cleared.json()["region"] is None


def test_search_by_name_phone_and_email_with_paging(client, users):
    staff = users.headers("staff")
    _create(client, staff, name="王小明", phone="13900001111")
    _create(client, staff, name="王大明", email="daming@example.com")
    _create(client, staff, name="赵六")
    everyone = client.get(BASE, headers=staff).json()
    assert everyone["total"] == 3 and len(everyone["items"]) == 3
    by_name = client.get(BASE, params={"q": "明"}, headers=staff).json()
    assert {c["name"] for c in by_name["items"]} == {"王小明", "王大明"}
    by_phone = client.get(BASE, params={"q": "13900001111"}, headers=staff).json()
    assert [c["name"] for c in by_phone["items"]] == ["王小明"]
    by_email = client.get(BASE, params={"q": "daming@example.com"}, headers=staff).json()
    assert [c["name"] for c in by_email["items"]] == ["王大明"]
    page = client.get(BASE, params={"limit": 2, "offset": 2, "sort": "name"}, headers=staff)
    assert page.json()["total"] == 3 and len(page.json()["items"]) == 1


def test_filter_by_tag_and_owner(client, users):
    staff = users.headers("staff")
    owner = users.id("staff")
    _create(client, staff, name="A", tags=["vip"], owner_id=owner)
    _create(client, staff, name="B", tags=["new"])
    assert [
        c["name"] for c in client.get(BASE, params={"tag": "vip"}, headers=staff).json()["items"]
    ] == ["A"]
    owned = client.get(BASE, params={"owner": owner}, headers=staff).json()
    assert [c["name"] for c in owned["items"]] == ["A"]


def test_a_touchpoint_shows_on_the_timeline(client, users):
    staff = users.headers("staff")
    customer = _create(client, staff, name="钱七")
    response = client.post(
        f"{BASE}/{customer['id']}/touchpoints",
        json={
            "channel": "wechat",
            "kind": "message",
            "note": "问了会员积分",
            "occurred_at": "2024-03-05T09:30:00+08:00",
        },
        headers=staff,
    )
    assert response.status_code == 201
    touchpoint = response.json()
    assert touchpoint["channel"] == "wechat"
    assert touchpoint["staff_id"] == users.id("staff")
    assert touchpoint["occurred_at"].startswith("2024-03-05T01:30:00")
    view = client.get(f"{BASE}/{customer['id']}", headers=staff).json()
    assert [t["note"] for t in view["touchpoints"]] == ["问了会员积分"]
    assert view["timeline"][0]["type"] == "touchpoint"
    assert view["timeline"][0]["note"] == "问了会员积分"


def test_analysts_see_personal_data_masked(client, users):
    staff, analyst = users.headers("staff"), users.headers("analyst")
    customer = _create(client, staff, name="张三丰", phone="13812345678", email="alice@example.com")
    listed = client.get(BASE, headers=analyst).json()["items"][0]
    assert listed["phone"] == "138****5678"
    assert listed["email"] == "a***@example.com"
    assert listed["name"] == "张**"
    view = client.get(f"{BASE}/{customer['id']}", headers=analyst).json()["customer"]
    assert (view["phone"], view["email"], view["name"]) == (
        "138****5678",
        "a***@example.com",
        "张**",
    )
    # The search keys are never handed out, masked or not.
    assert "13812345678" not in client.get(f"{BASE}/{customer['id']}", headers=analyst).text
    unmasked = client.get(BASE, headers=staff).json()["items"][0]
    assert unmasked["phone"] == "13812345678"


def test_a_taken_phone_is_a_conflict(client, users):
    staff = users.headers("staff")
    first = _create(client, staff, name="A", phone="13800138000")
    response = client.post(BASE, json={"name": "B", "phone": "+86 138 0013 8000"}, headers=staff)
    assert response.status_code == 409
    assert set(response.json()) == {"code", "message", "field"}
    assert str(first["id"]) in response.json()["message"]


def test_unknown_ids_are_404(client, users):
    staff = users.headers("staff")
    for method, path, extra in [
        ("get", f"{BASE}/424242", {}),
        ("patch", f"{BASE}/424242", {"json": {"name": "x"}}),
        ("post", f"{BASE}/424242/touchpoints", {"json": {"channel": "phone", "kind": "call"}}),
    ]:
        response = client.request(method, path, headers=staff, **extra)
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("method", "path", "request_args", "field"),
    [
        (
            "post",
            BASE,
            {"content": b"{oops", "headers": {"Content-Type": "application/json"}},
            None,
        ),
        ("post", BASE, {"json": ["not", "an", "object"]}, None),
        ("post", BASE, {"json": {"name": 12}}, "name"),
        ("post", BASE, {"json": {"name": "x" * 129}}, "name"),
        ("post", BASE, {"json": {"phone": "1" * 33}}, "phone"),
        ("post", BASE, {"json": {"birthday": "1990-02-30"}}, "birthday"),
        ("post", BASE, {"json": {"birthday": 19900101}}, "birthday"),
        ("post", BASE, {"json": {"gender": "robot"}}, "gender"),
        ("post", BASE, {"json": {"tags": "vip"}}, "tags"),
        ("post", BASE, {"json": {"tags": ["x" * 65]}}, "tags.0"),
        ("post", BASE, {"json": {"consents": {"fax": True}}}, "consents.fax"),
        ("post", BASE, {"json": {"consents": {"sms": "yes"}}}, "consents.sms"),
        ("post", BASE, {"json": {"owner_id": "1"}}, "owner_id"),
        ("post", BASE, {"json": {"owner_id": 2**70}}, "owner_id"),
        ("post", BASE, {"json": {"name": "nul\u0000"}}, "name"),
        ("post", BASE, {"json": {"unknown": 1}}, "unknown"),
        ("post", BASE, {"json": {"email": "not an email"}}, "email"),
        ("patch", f"{BASE}/1", {"json": {"birthday": "tomorrow"}}, "birthday"),
        ("get", f"{BASE}/abc", {}, "customer_id"),
        ("get", f"{BASE}/0", {}, "customer_id"),
        ("get", f"{BASE}/99999999999999999999", {}, "customer_id"),
        ("get", BASE, {"params": {"limit": 201}}, "limit"),
        ("get", BASE, {"params": {"offset": -1}}, "offset"),
        ("get", BASE, {"params": {"sort": "phone"}}, "sort"),
        ("get", BASE, {"params": {"q": "x" * 129}}, "q"),
        ("get", BASE, {"params": {"q": "a\u0000b"}}, "q"),
        ("get", BASE, {"params": {"owner": "me"}}, "owner"),
        ("post", f"{BASE}/1/touchpoints", {"json": {"channel": "fax", "kind": "call"}}, "channel"),
        ("post", f"{BASE}/1/touchpoints", {"json": {"channel": "phone"}}, "kind"),
        (
            "post",
            f"{BASE}/1/touchpoints",
            {"json": {"channel": "phone", "kind": "call", "occurred_at": "2024-03-05T09:30:00"}},
            "occurred_at",
        ),
        (
            "post",
            f"{BASE}/1/touchpoints",
            {"json": {"channel": "phone", "kind": "call", "occurred_at": "5 March"}},
            "occurred_at",
        ),
        (
            "post",
            f"{BASE}/1/touchpoints",
            {"json": {"channel": "phone", "kind": "call", "note": "x" * 4001}},
            "note",
        ),
    ],
)
def test_bad_input_is_422_never_500(client, users, method, path, request_args, field):
    headers = {**users.headers("staff"), **request_args.pop("headers", {})}
    response = client.request(method, path, headers=headers, **request_args)
    assert response.status_code == 422, response.text
    body = response.json()
    assert set(body) == {"code", "message", "field"}
    assert body["code"] in ("invalid", "invalid_input")
    assert body["field"] == field
    assert body["message"]


def test_validation_messages_in_chinese(client, users):
    staff = {**users.headers("staff"), "Accept-Language": "zh-CN"}
    response = client.post(BASE, json={"name": "x" * 200}, headers=staff)
    assert response.json()["message"] == "name 太长（最多 128 个字符）。"


def test_merges_are_listed_and_masked_for_analysts(client, users, engine):
    staff = users.headers("staff")
    a = _create(client, staff, name="A", phone="13812345678")
    b = _create(client, staff, name="B")
    from patron.crm.services import identity

    with session_scope(engine) as session:
        identity.merge_customers(session, a["id"], b["id"], rule="phone", key="13812345678")
    listed = client.get("/api/v1/merges", headers=staff).json()
    assert listed["total"] == 1
    assert listed["items"][0]["survivor_id"] == a["id"]
    assert listed["items"][0]["key"] == "13812345678"
    masked = client.get("/api/v1/merges", headers=users.headers("analyst")).json()
    assert masked["items"][0]["key"] == "138****5678"
    # The merged id now answers with the survivor.
    view = client.get(f"{BASE}/{b['id']}", headers=staff).json()
    assert view["customer"]["id"] == a["id"]
    with session_scope(engine) as session:
        assert session.query(CustomerMerge).count() == 1
