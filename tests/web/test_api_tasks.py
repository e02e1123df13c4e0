"""Follow-up tasks over the API, on SQLite and PostgreSQL: the inbox filters, opening by
hand, closing only with a note, reassigning (managers), role checks and masking."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from patron.crm.db import session_scope
from patron.crm.services import customers
from patron.crm.services import tasks as task_service
from patron.crm.tables import AuditEvent

BASE = "/api/v1/tasks"


@pytest.fixture
def shop(engine, users):
    """A customer owned by ``staff`` with a detractor task, one overdue complaint."""
    staff_id = users.id("staff")
    users.create("staff2", "staff")
    with session_scope(engine) as session:
        li = customers.create_customer(
            session, actor=None, name="李娜", phone="13812345678", owner_id=staff_id
        )
        detractor = task_service.open_task(
            session,
            customer_id=li.id,
            kind="detractor",
            detail="NPS 3，请拨 13812345678",
            source_type="survey_response",
            source_id=1,
        )
        late = task_service.open_task(
            session,
            customer_id=li.id,
            kind="complaint",
            due_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=3),
        )
    return {"customer": li.id, "detractor": detractor.id, "late": late.id}


def test_the_inbox_lists_mine_overdue_and_by_kind(client, users, shop):
    staff = users.headers("staff")
    mine = client.get(BASE, params={"mine": "true"}, headers=staff)
    assert mine.status_code == 200
    body = mine.json()
    assert body["total"] == 2
    assert [t["id"] for t in body["items"]] == [shop["late"], shop["detractor"]]
    late = body["items"][0]
    assert late["overdue"] is True and late["kind"] == "complaint"
    assert late["customer_name"] == "李娜" and late["owner_name"] == "staff"
    assert body["items"][1]["overdue"] is False
    assert body["items"][1]["detail"] == "NPS 3，请拨 13812345678"

    overdue = client.get(BASE, params={"overdue": "true"}, headers=staff).json()
    assert [t["id"] for t in overdue["items"]] == [shop["late"]]
    by_kind = client.get(BASE, params={"kind": "detractor"}, headers=staff).json()
    assert [t["id"] for t in by_kind["items"]] == [shop["detractor"]]
    other = client.get(BASE, params={"mine": "true"}, headers=users.headers("staff2")).json()
    assert other == {"items": [], "total": 0}
    by_owner = client.get(BASE, params={"owner": users.id("staff")}, headers=staff).json()
    assert by_owner["total"] == 2
    assert client.get(BASE, params={"status": "closed"}, headers=staff).json()["total"] == 0
    bad = client.get(BASE, params={"kind": "birthday"}, headers=staff)
    assert bad.status_code == 422
    one = client.get(f"{BASE}/{shop['detractor']}", headers=staff)
    assert one.status_code == 200 and one.json()["source_type"] == "survey_response"
    assert client.get(f"{BASE}/999999", headers=staff).status_code == 404


def test_closing_needs_a_note_and_happens_once(client, users, shop, engine):
    staff = users.headers("staff")
    url = f"{BASE}/{shop['detractor']}/close"
    for body in ({"resolution": "   "}, {"resolution": ""}):
        refused = client.post(url, json=body, headers=staff)
        assert refused.status_code == 422
        assert refused.json()["field"] == "resolution"
        assert "note" in refused.json()["message"]
    assert client.post(url, json={}, headers=staff).status_code == 422
    closed = client.post(url, json={"resolution": "已回电，补发优惠券"}, headers=staff)
    assert closed.status_code == 200
    body = closed.json()
    assert body["status"] == "closed" and body["resolution"] == "已回电，补发优惠券"
    assert body["closed_by_id"] == users.id("staff") and body["overdue"] is False
    again = client.post(url, json={"resolution": "again"}, headers=staff)
    assert again.status_code == 409
    with session_scope(engine) as session:
        actions = session.scalars(
            select(AuditEvent.action).where(
                AuditEvent.object_type == "task",
                AuditEvent.object_id == str(shop["detractor"]),
            )
        ).all()
    assert sorted(actions) == ["task.close", "task.open"]
    listed = client.get(BASE, params={"status": "closed"}, headers=staff).json()
    assert [t["id"] for t in listed["items"]] == [shop["detractor"]]


def test_a_chinese_reader_gets_the_refusal_in_chinese(client, users, shop):
    refused = client.post(
        f"{BASE}/{shop['detractor']}/close",
        json={"resolution": " "},
        headers={**users.headers("staff"), "Accept-Language": "zh-CN"},
    )
    assert refused.status_code == 422
    assert refused.json()["message"] == "关闭任务必须填写处理结果说明。"


def test_staff_open_tasks_by_hand(client, users, shop):
    staff = users.headers("staff2")
    created = client.post(
        BASE,
        json={"customer_id": shop["customer"], "title": "邀请参加新品试用", "detail": "周五前"},
        headers=staff,
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["kind"] == "manual" and body["status"] == "open"
    assert body["owner_id"] == users.id("staff")  # the customer's owner
    due = dt.datetime.fromisoformat(body["due_at"])
    assert dt.timedelta(hours=71) < due - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=72)
    # Giving it to someone else is a manager's call.
    refused = client.post(
        BASE,
        json={"customer_id": shop["customer"], "owner_id": users.id("manager")},
        headers=staff,
    )
    assert refused.status_code == 403
    given = client.post(
        BASE,
        json={
            "customer_id": shop["customer"],
            "owner_id": users.id("staff2"),
            "due_at": "2030-01-02T09:00:00+08:00",
        },
        headers=users.headers("manager"),
    )
    assert given.status_code == 201
    assert given.json()["due_at"].startswith("2030-01-02T01:00:00")
    naive = client.post(
        BASE,
        json={"customer_id": shop["customer"], "due_at": "2030-01-02T09:00:00"},
        headers=staff,
    )
    assert naive.status_code == 422
    unknown = client.post(BASE, json={"customer_id": 999999}, headers=staff)
    assert unknown.status_code == 404
    extra = client.post(BASE, json={"customer_id": shop["customer"], "x": 1}, headers=staff)
    assert extra.status_code == 422


def test_managers_reassign_and_close_anyones_task(client, users, shop):
    url = f"{BASE}/{shop['late']}"
    staff2 = users.id("staff2")
    refused = client.patch(url, json={"owner_id": staff2}, headers=users.headers("staff"))
    assert refused.status_code == 403
    moved = client.patch(url, json={"owner_id": staff2}, headers=users.headers("manager"))
    assert moved.status_code == 200 and moved.json()["owner_id"] == staff2
    # The former owner may no longer close it; the new one may.
    not_yours = client.post(
        f"{url}/close", json={"resolution": "x"}, headers=users.headers("staff")
    )
    assert not_yours.status_code == 403
    bad_owner = client.patch(url, json={"owner_id": 999999}, headers=users.headers("manager"))
    assert bad_owner.status_code == 422 and bad_owner.json()["field"] == "owner_id"
    done = client.post(
        f"{url}/close", json={"resolution": "经理处理"}, headers=users.headers("manager")
    )
    assert done.status_code == 200
    closed = client.patch(url, json={"owner_id": staff2}, headers=users.headers("manager"))
    assert closed.status_code == 409


def test_analysts_read_masked_and_write_nothing(client, users, shop):
    analyst = users.headers("analyst")
    body = client.get(BASE, headers=analyst).json()
    assert body["total"] == 2
    assert {t["customer_name"] for t in body["items"]} == {"李*"}
    assert "13812345678" not in str(body) and "138****5678" in str(body)
    assert (
        client.post(BASE, json={"customer_id": shop["customer"]}, headers=analyst).status_code
        == 403
    )
    close = client.post(f"{BASE}/{shop['late']}/close", json={"resolution": "x"}, headers=analyst)
    assert close.status_code == 403
    patch = client.patch(
        f"{BASE}/{shop['late']}", json={"owner_id": users.id("staff")}, headers=analyst
    )
    assert patch.status_code == 403
    assert client.get(BASE).status_code == 401
