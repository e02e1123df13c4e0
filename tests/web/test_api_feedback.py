"""/api/v1/feedback and /api/v1/surveys on SQLite and PostgreSQL: roles, masking, filters,
the CSV upload, invitations whose link is shown once, answers and metrics."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from tests.crm.customer_data import make_run

from patron.crm.db import session_scope
from patron.crm.services import customers as customer_service
from patron.crm.services import feedback
from patron.crm.services.feedback import signing
from patron.crm.tables import FeedbackRecord, SurveyInvitation, Task

FEEDBACK = "/api/v1/feedback"
SURVEYS = "/api/v1/surveys"


@pytest.fixture(autouse=True)
def _no_env_secret(monkeypatch):
    monkeypatch.delenv(signing.SECRET_ENV, raising=False)
    monkeypatch.delenv("PATRON_PUBLIC_URL", raising=False)


def seed(engine, **owners):
    with session_scope(engine) as session:
        li = customer_service.create_customer(
            session, actor=None, name="李娜", phone="13812345678", **owners
        )
        grace = customer_service.create_customer(session, actor=None, name="Grace Li")
        return li.id, grace.id


def test_staff_record_feedback_and_everyone_reads_it_analysts_masked(client, users, engine):
    li, _grace = seed(engine, owner_id=users.id("staff"))
    body = {
        "customer_id": li,
        "channel": "wechat",
        "type": "complaint",
        "text": "快递太慢了，客服也不回复，请打 13812345678",
        "occurred_at": "2025-03-01T10:00:00+08:00",
    }
    created = client.post(FEEDBACK, json=body, headers=users.headers("staff"))
    assert created.status_code == 201, created.json()
    item = created.json()
    assert item["sentiment"] == "negative" and "delivery" in item["topics"]
    assert item["type"] == "complaint" and item["source"] == "staff"
    assert item["occurred_at"].startswith("2025-03-01T02:00:00")
    assert item["task_id"] is not None
    with session_scope(engine) as session:
        task = session.get(Task, item["task_id"])
        assert task.kind == "complaint" and task.owner_id == users.id("staff")
    for role in ("admin", "manager", "staff"):
        listed = client.get(FEEDBACK, headers=users.headers(role)).json()
        assert listed["total"] == 1
        assert listed["items"][0]["customer_name"] == "李娜"
        assert "13812345678" in listed["items"][0]["text"]
    masked = client.get(f"{FEEDBACK}/{item['id']}", headers=users.headers("analyst"))
    assert masked.status_code == 200
    assert masked.json()["customer_name"] == "李*"
    assert "13812345678" not in masked.json()["text"] and "138****5678" in masked.json()["text"]
    refused = client.post(FEEDBACK, json=body, headers=users.headers("analyst"))
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    assert client.get(FEEDBACK).status_code == 401


def test_the_list_filters_and_bad_input_is_a_422(client, users, engine):
    li, grace = seed(engine)
    staff = users.headers("staff")
    for customer, channel, kind, text in (
        (li, "phone", "praise", "服务很好，谢谢"),
        (grace, "email", "question", "Is the price going up?"),
    ):
        response = client.post(
            FEEDBACK,
            json={"customer_id": customer, "channel": channel, "type": kind, "text": text},
            headers=staff,
        )
        assert response.status_code == 201
    assert client.get(FEEDBACK, params={"type": "praise"}, headers=staff).json()["total"] == 1
    assert client.get(FEEDBACK, params={"topic": "price"}, headers=staff).json()["total"] == 1
    assert client.get(FEEDBACK, params={"customer_id": grace}, headers=staff).json()["total"] == 1
    page = client.get(FEEDBACK, params={"sentiment": "positive"}, headers=staff).json()
    assert [i["customer_id"] for i in page["items"]] == [li]
    for params in ({"type": "rant"}, {"topic": "a b"}, {"limit": 0}, {"since": "soon"}):
        assert client.get(FEEDBACK, params=params, headers=staff).status_code == 422
    for body in (
        {"customer_id": li, "channel": "fax", "type": "praise", "text": "x"},
        {"customer_id": li, "channel": "phone", "type": "praise", "text": "   "},
        {"customer_id": li, "channel": "phone", "type": "praise", "text": "x", "extra": 1},
        {"customer_id": "1", "channel": "phone", "type": "praise", "text": "x"},
        {"customer_id": li, "channel": "phone", "type": "praise", "text": "x\x00"},
        {
            "customer_id": li,
            "channel": "phone",
            "type": "praise",
            "text": "x",
            "occurred_at": "2025-01-01T10:00:00",
        },
    ):
        response = client.post(FEEDBACK, json=body, headers=staff)
        assert response.status_code == 422, body
        assert response.json()["code"] == "invalid"
    missing = client.post(
        FEEDBACK,
        json={"customer_id": 10**12, "channel": "phone", "type": "praise", "text": "x"},
        headers=staff,
    )
    assert missing.status_code == 404
    assert client.get(f"{FEEDBACK}/999999", headers=staff).status_code == 404


def test_a_csv_upload_imports_and_reports_rejected_rows(client, users, engine):
    li, _grace = seed(engine)
    data = (
        "客户编号,渠道,类型,内容\n"
        f"{li},电话,投诉,东西坏了，太失望了\n"
        f"{li},传真,投诉,???\n"
        "13999999999,电话,表扬,好\n"
    ).encode("gb18030")
    files = {"file": ("反馈.csv", data, "text/csv")}
    response = client.post(f"{FEEDBACK}/import", files=files, headers=users.headers("staff"))
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["filename"], body["rows"], body["imported"], body["duplicates"]) == (
        "反馈.csv",
        3,
        1,
        0,
    )
    assert [(r["line"], r["column"]) for r in body["rejected"]] == [
        (3, "channel"),
        (4, "customer_id"),
    ]
    assert body["rejected"][0]["value"] == "传真"
    again = client.post(f"{FEEDBACK}/import", files=files, headers=users.headers("manager"))
    assert again.json()["duplicates"] == 1 and again.json()["imported"] == 0
    bad = client.post(
        f"{FEEDBACK}/import",
        files={"file": ("x.csv", b"a,b\n1,2\n", "text/csv")},
        headers=users.headers("staff"),
    )
    assert bad.status_code == 422 and "x.csv" in bad.json()["message"]
    refused = client.post(f"{FEEDBACK}/import", files=files, headers=users.headers("analyst"))
    assert refused.status_code == 403
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(FeedbackRecord)) == 1


def test_an_invitation_link_is_returned_once_and_answers_through_the_public_page(
    client, users, engine
):
    li, _grace = seed(engine, owner_id=users.id("staff"))
    staff = users.headers("staff")
    created = client.post(SURVEYS, json={"kind": "nps", "customer_id": li}, headers=staff)
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["created"] == 1 and body["skipped"] == 0
    [link] = body["invitations"]
    assert link["url"].startswith("http://testserver/s/")
    token = link["url"].rsplit("/", 1)[1]
    shown = client.get(f"{SURVEYS}/{link['id']}", headers=staff).json()
    assert shown["status"] == "pending" and token not in str(shown)
    listed = client.get(SURVEYS, headers=staff).json()
    assert listed["total"] == 1 and token not in str(listed)
    answered = client.post(f"/s/{token}", data={"score": "3", "comment": "送货太慢"})
    assert answered.status_code == 200
    got = client.get(f"{SURVEYS}/{link['id']}", headers=users.headers("analyst")).json()
    assert got["status"] == "answered" and got["response"]["score"] == 3
    responses = client.get(f"{SURVEYS}/responses", params={"detractors": True}, headers=staff)
    assert responses.json()["total"] == 1 and responses.json()["items"][0]["comment"] == "送货太慢"
    with session_scope(engine) as session:
        [task] = session.scalars(select(Task)).all()
        assert task.kind == "detractor" and task.owner_id == users.id("staff")


def test_a_public_url_setting_makes_the_links(client, users, engine, monkeypatch):
    li, _grace = seed(engine)
    monkeypatch.setenv("PATRON_PUBLIC_URL", "https://shop.example.com/patron/")
    body = client.post(
        SURVEYS, json={"kind": "csat", "customer_id": li}, headers=users.headers("staff")
    ).json()
    assert body["invitations"][0]["url"].startswith("https://shop.example.com/patron/s/")


def test_a_segment_is_invited_and_roles_are_checked(client, users, engine):
    li, grace = seed(engine)
    with session_scope(engine) as session:
        make_run(session, {li: {"grade": "gold"}, grace: {"grade": "silver"}})
    segment = {"kind": "csat", "grade": "gold", "expires_in_days": 7}
    created = client.post(SURVEYS, json=segment, headers=users.headers("manager"))
    assert created.status_code == 201
    assert [i["customer_id"] for i in created.json()["invitations"]] == [li]
    expires = dt.datetime.fromisoformat(created.json()["invitations"][0]["expires_at"])
    assert (
        dt.timedelta(days=6, hours=23) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(days=7)
    )
    again = client.post(SURVEYS, json=segment, headers=users.headers("staff")).json()
    assert again["created"] == 0 and again["skipped"] == 1
    assert client.post(SURVEYS, json=segment, headers=users.headers("analyst")).status_code == 403
    for body in (
        {"kind": "nps"},
        {"kind": "nps", "customer_id": li, "grade": "gold"},
        {"kind": "ces", "customer_id": li},
        {"kind": "nps", "customer_id": li, "expires_in_days": 400},
        {"kind": "nps", "grade": "platinum"},
    ):
        response = client.post(SURVEYS, json=body, headers=users.headers("staff"))
        assert response.status_code == 422, body
    assert (
        client.get(SURVEYS, params={"status": "lost"}, headers=users.headers("staff")).status_code
        == 422
    )
    pending = client.get(SURVEYS, params={"status": "pending"}, headers=users.headers("analyst"))
    assert pending.json()["total"] == 1
    assert pending.json()["items"][0]["customer_name"] == "李*"
    assert client.get(f"{SURVEYS}/123456", headers=users.headers("staff")).status_code == 404


def test_metrics_over_the_api(client, users, engine):
    li, grace = seed(engine)
    with session_scope(engine) as session:
        make_run(session, {li: {"grade": "gold"}, grace: {"grade": "silver"}})
        links = [
            feedback.create_invitations(session, kind="nps", customer_id=c, actor=None)
            .created[0]
            .token
            for c in (li, grace, li)
        ]
    for token, score in zip(links, ("10", "4", "9"), strict=True):
        assert client.post(f"/s/{token}", data={"score": score}).status_code == 200
    metrics = client.get(f"{SURVEYS}/metrics", headers=users.headers("analyst"))
    assert metrics.status_code == 200
    body = metrics.json()
    assert body["overall"]["nps"]["responses"] == 3
    assert body["overall"]["nps"]["nps"] == pytest.approx(100 / 3)  # 2 promoters, 1 detractor
    grades = {row["label"]: row for row in body["by_grade"]}
    assert grades["gold"]["nps"]["nps"] == 100.0 and grades["silver"]["nps"]["nps"] == -100.0
    assert len(body["by_month"]) == 1
    assert client.get(f"{SURVEYS}/metrics").status_code == 401
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(SurveyInvitation)) == 3
