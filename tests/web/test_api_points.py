"""/api/v1/customers/{id}/points on SQLite and PostgreSQL: the balance, earn, redeem, adjust,
and the Idempotency-Key rules (missing 400, repeat replays, other body 422, running 409)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter

import pytest
from sqlalchemy import func, select, text
from tests.crm.loyalty_data import set_program

from patron.crm.db import session_factory, session_scope
from patron.crm.services import customers, idempotency
from patron.crm.tables import (
    IdempotencyKey,
    LoyaltyAccount,
    LoyaltyAllocation,
    LoyaltyEntry,
    LoyaltyLot,
)


@pytest.fixture
def customer_id(engine):
    with session_scope(engine) as session:
        return customers.create_customer(session, actor=None, name="王芳").id


def post(client, users, who, path, body, key=None):
    headers = users.headers(who)
    if key is not False:
        headers["Idempotency-Key"] = key or str(uuid.uuid4())
    return client.post(f"/api/v1/customers/{path}", json=body, headers=headers)


def entries(engine):
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(LoyaltyEntry))


def test_earn_redeem_and_read_the_balance(client, users, customer_id):
    earned = post(
        client, users, "staff", f"{customer_id}/points/earn", {"points": 300, "reason": "开业礼"}
    )
    assert earned.status_code == 201, earned.text
    assert earned.json()["balance"] == 300
    assert earned.json()["entry"]["kind"] == "earn" and earned.json()["entry"]["actor"] == "staff"
    spent = post(
        client, users, "staff", f"{customer_id}/points/redeem", {"points": 120, "reason": "券"}
    )
    assert spent.status_code == 201 and spent.json()["balance"] == 180

    view = client.get(f"/api/v1/customers/{customer_id}/points", headers=users.headers("analyst"))
    assert view.status_code == 200
    body = view.json()
    assert body["balance"] == 180
    assert [lot["remaining"] for lot in body["lots"]] == [180]
    assert [(e["kind"], e["points"]) for e in body["history"]] == [("redeem", -120), ("earn", 300)]
    assert body["tier"]["code"] == "regular"


def test_a_redemption_beyond_the_balance_is_409_with_a_clear_message(client, users, customer_id):
    post(client, users, "staff", f"{customer_id}/points/earn", {"points": 50, "reason": "x"})
    refused = post(client, users, "staff", f"{customer_id}/points/redeem", {"points": 80})
    assert refused.status_code == 409
    assert refused.json() == {
        "code": "insufficient_points",
        "message": "Cannot redeem 80 points: the balance is 50.",
        "field": "points",
    }
    zh = client.post(
        f"/api/v1/customers/{customer_id}/points/redeem",
        json={"points": 80},
        headers={**users.headers("staff"), "Idempotency-Key": "zh-1", "Accept-Language": "zh-CN"},
    )
    assert zh.json()["message"] == "无法兑换 80 积分：当前余额为 50。"


def test_a_write_without_an_idempotency_key_is_400_and_does_nothing(
    client, users, customer_id, engine
):
    for path in ("earn", "redeem", "adjust"):
        who = "manager" if path == "adjust" else "staff"
        answer = post(
            client,
            users,
            who,
            f"{customer_id}/points/{path}",
            {"points": 5, "reason": "x"},
            key=False,
        )
        assert answer.status_code == 400, path
        assert answer.json()["code"] == "idempotency_key_missing"
        assert "Idempotency-Key" in answer.json()["message"]
    too_long = post(
        client,
        users,
        "staff",
        f"{customer_id}/points/earn",
        {"points": 5, "reason": "x"},
        key="k" * 256,
    )
    assert too_long.status_code == 400 and too_long.json()["code"] == "idempotency_key_invalid"
    assert entries(engine) == 0


def test_a_repeat_returns_the_first_answer_and_earns_once(client, users, customer_id, engine):
    body = {"points": 100, "reason": "补偿"}
    first = post(client, users, "staff", f"{customer_id}/points/earn", body, key="order-42")
    again = post(client, users, "staff", f"{customer_id}/points/earn", body, key='"order-42"')
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert entries(engine) == 1
    # Another user's same key is another request.
    other = post(client, users, "manager", f"{customer_id}/points/earn", body, key="order-42")
    assert other.status_code == 201 and other.json()["balance"] == 200


def test_the_same_key_with_a_different_request_is_422(client, users, customer_id, engine):
    post(
        client,
        users,
        "staff",
        f"{customer_id}/points/earn",
        {"points": 100, "reason": "a"},
        key="k1",
    )
    changed = post(
        client,
        users,
        "staff",
        f"{customer_id}/points/earn",
        {"points": 101, "reason": "a"},
        key="k1",
    )
    assert changed.status_code == 422 and changed.json()["code"] == "idempotency_key_reused"
    elsewhere = post(
        client,
        users,
        "staff",
        f"{customer_id}/points/redeem",
        {"points": 100, "reason": "a"},
        key="k1",
    )
    assert elsewhere.status_code == 422
    assert entries(engine) == 1


def test_a_refusal_is_the_answer_a_repeat_gets(client, users, customer_id, engine):
    refused = post(client, users, "staff", f"{customer_id}/points/redeem", {"points": 10}, key="r1")
    assert refused.status_code == 409
    post(client, users, "staff", f"{customer_id}/points/earn", {"points": 50, "reason": "x"})
    again = post(client, users, "staff", f"{customer_id}/points/redeem", {"points": 10}, key="r1")
    assert again.status_code == 409 and again.headers["Idempotent-Replayed"] == "true"
    fresh = post(client, users, "staff", f"{customer_id}/points/redeem", {"points": 10}, key="r2")
    assert fresh.status_code == 201 and fresh.json()["balance"] == 40
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(IdempotencyKey)) == 3


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_the_same_key_while_the_first_request_runs_is_409(client, users, customer_id, engine):
    # The first request holds its key's advisory lock until it commits; hold it here.
    user_id = users.id("staff")
    holder = session_factory(engine)()
    try:
        holder.execute(
            text("SELECT pg_advisory_xact_lock(:c, :k)"),
            {"c": idempotency.LOCK_CLASS, "k": idempotency.lock_id(user_id, "slow-1")},
        )
        busy = post(
            client,
            users,
            "staff",
            f"{customer_id}/points/earn",
            {"points": 5, "reason": "x"},
            key="slow-1",
        )
        assert busy.status_code == 409 and busy.json()["code"] == "idempotency_key_in_use"
        other = post(
            client,
            users,
            "staff",
            f"{customer_id}/points/earn",
            {"points": 5, "reason": "x"},
            key="slow-2",
        )
        assert other.status_code == 201
    finally:
        holder.rollback()
        holder.close()
    done = post(
        client,
        users,
        "staff",
        f"{customer_id}/points/earn",
        {"points": 5, "reason": "x"},
        key="slow-1",
    )
    assert done.status_code == 201 and done.json()["balance"] == 10


def test_only_managers_adjust_and_only_down_to_zero(client, users, customer_id):
    body = {"points": 40, "reason": "old card"}
    assert post(client, users, "staff", f"{customer_id}/points/adjust", body).status_code == 403
    assert post(client, users, "analyst", f"{customer_id}/points/earn", body).status_code == 403
    added = post(client, users, "manager", f"{customer_id}/points/adjust", body)
    assert added.status_code == 201 and added.json()["entry"]["kind"] == "adjust"
    below = post(
        client, users, "manager", f"{customer_id}/points/adjust", {"points": -41, "reason": "x"}
    )
    assert below.status_code == 409 and below.json()["code"] == "insufficient_points"
    to_zero = post(
        client, users, "manager", f"{customer_id}/points/adjust", {"points": -40, "reason": "dup"}
    )
    assert to_zero.status_code == 201 and to_zero.json()["balance"] == 0


def test_bad_input_is_422_and_unknown_customers_404(client, users, customer_id):
    for body in (
        {"points": 0, "reason": "x"},
        {"points": 1.5, "reason": "x"},
        {"points": "5", "reason": "x"},
        {"points": 5},
        {"points": 5, "reason": "x", "extra": 1},
    ):
        answer = post(client, users, "staff", f"{customer_id}/points/earn", body)
        assert answer.status_code == 422, body
    missing = post(client, users, "staff", "999999/points/earn", {"points": 5, "reason": "x"})
    assert missing.status_code == 404
    assert (
        client.get("/api/v1/customers/999999/points", headers=users.headers("staff")).status_code
        == 404
    )
    assert client.get(f"/api/v1/customers/{customer_id}/points").status_code == 401


def _normalised(engine, customer_id, prefix, answers):
    """The answers and the customer's rows, ids replaced by their order of creation."""
    with session_scope(engine) as session:
        account = session.scalars(
            select(LoyaltyAccount).where(LoyaltyAccount.customer_id == customer_id)
        ).one()
        entries = list(
            session.scalars(
                select(LoyaltyEntry)
                .where(LoyaltyEntry.account_id == account.id)
                .order_by(LoyaltyEntry.id)
            )
        )
        lots = list(
            session.scalars(
                select(LoyaltyLot)
                .where(LoyaltyLot.account_id == account.id)
                .order_by(LoyaltyLot.id)
            )
        )
        entry_no = {entry.id: n for n, entry in enumerate(entries)}
        lot_no = {lot.id: n for n, lot in enumerate(lots)}
        allocations = sorted(
            (entry_no[a.entry_id], lot_no[a.lot_id], a.points)
            for a in session.scalars(
                select(LoyaltyAllocation).where(LoyaltyAllocation.entry_id.in_(list(entry_no)))
            )
        )
        remembered = [
            (row.key.removeprefix(prefix), row.status_code, row.response)
            for row in session.scalars(
                select(IdempotencyKey).where(IdempotencyKey.key.startswith(prefix))
            )
        ]

    def body(value):
        if "entry" in value:
            return {**value, "entry": {**value["entry"], "id": entry_no[value["entry"]["id"]]}}
        return value

    def lot_ref(value):  # an expiry names its lot
        return None if value is None else lot_no[int(value.rsplit(":", 1)[-1])]

    return {
        "answers": [(status, body(value), replayed) for status, value, replayed in answers],
        "remembered": sorted((key, status, body(value)) for key, status, value in remembered),
        "account": (account.balance, account.debt, account.tier_id, account.updated_at),
        "entries": [
            (
                e.kind,
                e.points,
                e.balance_after,
                e.shortfall,
                e.reason,
                e.source_type,
                lot_ref(e.source_id) if e.kind == "expire" else e.source_id,
                e.order_id,
                e.reward_id,
                e.reverses_id,
                lot_ref(e.dedupe_key) if e.kind == "expire" else e.dedupe_key,
                e.actor_id,
                e.actor_name,
                e.created_at,
            )
            for e in entries
        ],
        "lots": [
            (entry_no[lot.entry_id], lot.points, lot.remaining, lot.earned_at, lot.expires_at)
            for lot in lots
        ],
        "allocations": allocations,
    }


T0 = dt.datetime(2026, 1, 31, 9, 30, 5, 123400, tzinfo=dt.UTC)


def _script(client, users, engine, customer_id, prefix, clock):
    """Earns and redemptions that meet every answer: a first earn (no account yet), lots
    that expire on different days and never, a redemption over several lots, refusals (in
    English and Chinese, with thousands separators), replays, a reused key, a lot due."""
    answers = []

    def send(kind, body, key, *, lang="en"):
        answer = client.post(
            f"/api/v1/customers/{customer_id}/points/{kind}",
            json=body,
            headers={
                **users.headers("staff"),
                "Idempotency-Key": prefix + key,
                "Accept-Language": lang,
            },
        )
        answers.append(
            (answer.status_code, answer.json(), answer.headers.get("Idempotent-Replayed"))
        )

    clock[0] = T0
    send("earn", {"points": 15000, "reason": "开业礼"}, "e1")  # opens the account
    clock[0] = T0 + dt.timedelta(days=1, microseconds=-123400)  # a time without microseconds
    send("earn", {"points": 2000, "reason": "  spaced  "}, "e2")
    with session_scope(engine) as session:
        set_program(session, expiry_months=None)
    send("earn", {"points": 70, "reason": "forever"}, "e3")
    with session_scope(engine) as session:
        set_program(session, expiry_months=12)
    clock[0] = T0 + dt.timedelta(days=2)
    send("redeem", {"points": 16000}, "r1")  # all of the first lot, part of the second
    send("redeem", {"points": 5000, "reason": "too much"}, "r2")
    send("earn", {"points": 2000, "reason": "  spaced  "}, "e2")  # replayed
    send("redeem", {"points": 5000, "reason": "too much"}, "r2")  # replayed refusal
    send("earn", {"points": 2001, "reason": "  spaced  "}, "e2")  # 422
    send("redeem", {"points": 2000}, "r3", lang="zh-CN")
    send("redeem", {"points": 1070, "reason": "all"}, "r4")  # to zero, the lot forever last
    send("earn", {"points": 30, "reason": "late"}, "e4")
    clock[0] = T0 + dt.timedelta(days=400)
    send("redeem", {"points": 5}, "r5")  # the lot is due: expired, then refused
    send("earn", {"points": 9, "reason": "after"}, "e5")
    send("redeem", {"points": 9}, "r6")
    return answers


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_the_one_round_trip_path_answers_and_writes_as_the_python_path_does(
    client, users, engine, monkeypatch
):
    from patron.crm.services.loyalty import fast_path
    from patron.crm.services.loyalty import points as points_service
    from patron.web.api import points as points_api

    clock = [T0]
    monkeypatch.setattr(points_api, "utcnow", lambda: clock[0])
    monkeypatch.setattr(points_service, "utcnow", lambda: clock[0])
    taken = Counter()
    real = fast_path.write_async

    async def counted(connection, request):
        answer = await real(connection, request)
        taken["fast" if answer is not None else "python"] += 1
        return answer

    monkeypatch.setattr(fast_path, "write_async", counted)
    pool = client.app.state.points_pool
    assert pool is not None, "no pool for the one-round-trip path"
    seen = {}
    try:
        for path in ("fast", "python"):
            client.app.state.points_pool = pool if path == "fast" else None
            with session_scope(engine) as session:
                customer_id = customers.create_customer(session, actor=None, name=path).id
            prefix = f"{path}-"
            answers = _script(client, users, engine, customer_id, prefix, clock)
            seen[path] = _normalised(engine, customer_id, prefix, answers)
    finally:
        client.app.state.points_pool = pool
    # The fast path answered all but the first earn (no account yet) and the two
    # redemptions that met a lot past its expiry (the refusal rolled its expiry back); the
    # 422 it raised; the Python run never asked it.
    assert taken == {"fast": 10, "python": 3}
    fast, python = seen["fast"], seen["python"]
    for part in python:
        assert fast[part] == python[part], part
    assert [status for status, _body, _replayed in python["answers"]] == [
        201, 201, 201, 201, 409, 201, 409, 422, 409, 201, 201, 409, 201, 201
    ]  # fmt: skip
    assert python["answers"][1][1]["entry"]["created_at"] == "2026-02-01T09:30:05Z"
    assert python["answers"][0][1]["entry"]["created_at"] == "2026-01-31T09:30:05.123400Z"
    assert python["answers"][4][1]["message"] == "Cannot redeem 5,000 points: the balance is 1,070."
    assert python["answers"][8][1]["message"] == "无法兑换 2,000 积分：当前余额为 1,070。"
