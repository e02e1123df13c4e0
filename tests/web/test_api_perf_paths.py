"""The fast paths of the busy endpoints answer exactly what the plain paths answer.

A hot bearer token costs no query, yet a revocation in this process counts at once and one
elsewhere within the memory's few seconds; the 360 and the search over the API hold the
same JSON on both databases, whichever way they were read.
"""

import datetime as dt

import pytest
from sqlalchemy import text
from tests.crm.customer_data import T0, QueryCounter, make_order, make_run

from patron.crm.db import session_factory, session_scope
from patron.crm.services import (
    auth,
    customer_360,
    customer_search,
    customer_search_sql,
    customers,
    identity,
    permissions,
    token_cache,
    touchpoints,
    users,
    views,
)
from patron.crm.tables import User
from patron.web.schemas import Customer360

BASE = "/api/v1/customers"


@pytest.fixture
def clock(monkeypatch):
    """The token memory's clock, moved by hand."""
    now = [1000.0]
    monkeypatch.setattr(token_cache, "_now", lambda: now[0])
    token_cache.forget_all()
    return now


@pytest.fixture
def db(engine):
    """A session for the service-level tests (tables are emptied between tests)."""
    with session_factory(engine)() as session:
        yield session


def _token(engine, name="alice", role="staff"):
    with session_scope(engine) as session:
        user, _ = users.create_user(session, username=name, role=role, password="x" * 12)
        token, row = auth.create_api_token(session, user)
        return token, row.id, user.id


def test_a_hot_token_costs_no_query(engine, clock):
    token, _row, user_id = _token(engine)
    with session_factory(engine)() as session:
        assert auth.token_user(session, token).id == user_id
    with session_factory(engine)() as session, QueryCounter(engine) as counter:
        user = auth.token_user(session, token)
        assert (user.id, user.role, user.username) == (user_id, "staff", "alice")
        assert permissions.can(user, "customers.read")
    assert counter.count == 0
    clock[0] += token_cache.TTL_SECONDS + 1  # stale: asked again
    with session_factory(engine)() as session, QueryCounter(engine) as counter:
        assert auth.token_user(session, token).id == user_id
    assert counter.count >= 1


def test_the_remembered_user_belongs_to_the_session_and_changes_are_stored(engine, clock):
    token, _row, user_id = _token(engine)
    with session_factory(engine)() as session:
        auth.token_user(session, token)
    with session_factory(engine)() as session:
        user = auth.token_user(session, token)
        assert user in session and not session.dirty
        user.display_name = "爱丽丝"
        session.commit()
    with session_factory(engine)() as session:
        assert session.get(User, user_id).display_name == "爱丽丝"


def test_a_revocation_or_a_disabled_user_in_this_process_counts_at_once(engine, clock):
    token, row_id, user_id = _token(engine)
    other, _other_row, _ = _token(engine, "bob")
    with session_factory(engine)() as session:
        assert auth.token_user(session, token) is not None
        assert auth.token_user(session, other) is not None
    with session_scope(engine) as session:
        auth.revoke_api_token(session, row_id, actor=None)
    with session_factory(engine)() as session:
        assert auth.token_user(session, token) is None
    with session_scope(engine) as session:
        bob = users.get_user_by_name(session, "bob")
        users.update_user(session, bob, actor=None, role="analyst")
    with session_factory(engine)() as session:
        assert auth.token_user(session, other).role == "analyst"


def test_a_change_made_elsewhere_counts_within_the_ttl(engine, clock):
    token, _row, user_id = _token(engine)
    with session_factory(engine)() as session:
        assert auth.token_user(session, token) is not None
    # Another process (SQL by hand, another worker) disables the user: no ORM event here.
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE users SET active = :no WHERE id = :id"), {"no": False, "id": user_id}
        )
    with session_factory(engine)() as session:
        assert auth.token_user(session, token) is not None  # still remembered
    clock[0] += token_cache.TTL_SECONDS
    with session_factory(engine)() as session:
        assert auth.token_user(session, token) is None


def test_unknown_tokens_are_never_remembered(engine, clock):
    with session_factory(engine)() as session, QueryCounter(engine) as counter:
        for _ in range(3):
            assert auth.token_user(session, "pat_nobody") is None
    assert counter.count >= 3  # asked every time (SQLite adds its BEGIN)


def test_over_the_api_a_revoked_token_is_refused_at_once(client, users, engine, clock):
    headers = users.headers("staff")
    assert client.get(BASE, headers=headers).status_code == 200
    with session_scope(engine) as session:
        user = users_of(session, "staff")
        rows = auth.list_api_tokens(session, user)
        auth.revoke_api_token(session, rows[0].id, actor=None)
    refused = client.get(BASE, headers=headers)
    assert refused.status_code == 401 and refused.json()["code"] == "bad_token"


def users_of(session, name):
    from patron.crm.services import users as users_service

    return users_service.get_user_by_name(session, name)


@pytest.fixture
def rich(engine):
    """A customer with orders, lines, contacts, a merge, two runs and tags, committed."""
    with session_scope(engine) as session:
        staff = User(username="lin", role="staff", password_hash="x", display_name="林")
        session.add(staff)
        session.flush()
        c = customers.create_customer(
            session,
            actor=staff,
            name="张三丰",
            phone="13812345678",
            email="zhang@example.com",
            birthday="1990-05-17",
            tags=["vip"],
            consents={"sms": True},
            external_ids={"shop": "C1"},
        )
        old = customers.create_customer(session, actor=None, name="张三", phone="13900000000")
        identity.merge_customers(session, c.id, old.id, rule="phone", key="13900000000")
        make_order(session, c.id, "SO1", amount="1234.50", lines=[("A", "茶", "2", "600.00")])
        make_order(session, c.id, "SO2", at=T0 + dt.timedelta(hours=1, microseconds=5))
        touchpoints.record_touchpoint(
            session, c.id, channel="phone", kind="call", note="打 13812345678", actor=staff
        )
        make_run(session, {c.id: {"predicted_clv": 10.0}})
        make_run(session, {c.id: {"predicted_clv": 20.5, "clv_high": float("inf")}})
        return c.id, old.id


@pytest.mark.parametrize("role", ["staff", "analyst"])
def test_the_360_over_the_api_is_the_portable_360_serialised(client, users, engine, rich, role):
    customer_id, merged_id = rich
    with session_factory(engine)() as session:
        record = customer_360.build(session, customers.get_customer(session, customer_id))
        mask = role == "analyst"
        expected = Customer360.model_validate(views.customer_view(record, mask=mask)).model_dump(
            mode="json"
        )
    # On PostgreSQL the 360 is awaited on the read pool; without one, a worker thread reads
    # it through the session. Both answer the portable 360.
    pool = client.app.state.read_pool
    assert (pool is not None) == (engine.dialect.name == "postgresql")
    for client.app.state.read_pool in {pool, None}:
        for asked in (customer_id, merged_id):
            response = client.get(f"{BASE}/{asked}", headers=users.headers(role))
            assert response.status_code == 200
            assert response.json() == expected
        if mask:
            assert "13812345678" not in response.text
        missing = client.get(f"{BASE}/{10**9}", headers=users.headers(role))
        assert (missing.status_code, missing.json()["field"]) == (404, "customer_id")
    client.app.state.read_pool = pool


def test_the_search_page_carries_tags_and_scores(client, users, engine, rich):
    customer_id, _merged = rich
    search = client.app.state.search  # awaited on the read pool (PostgreSQL), else None
    assert (search is not None) == (engine.dialect.name == "postgresql")
    answers = []
    for client.app.state.search in {search, None}:
        body = client.get(BASE, params={"q": "138"}, headers=users.headers("staff")).json()
        assert body["total"] == 1
        (item,) = body["items"]
        assert (item["id"], item["tags"], item["predicted_clv"]) == (customer_id, ["vip"], 20.5)
        assert item["created_at"].endswith("Z") and "phone_norm" not in item
        answers.append(body)
    client.app.state.search = search
    assert all(answer == answers[0] for answer in answers)


def test_walking_the_scores_and_sorting_the_matches_give_the_same_pages(db, monkeypatch):
    session = db
    made = [
        customers.create_customer(session, actor=None, name=f"客{i}", phone=f"1380000{i:04d}")
        for i in range(30)
    ]
    scores = {c.id: {"predicted_clv": float(i % 7)} for i, c in enumerate(made) if i % 5}
    make_run(session, scores)
    session.commit()

    def pages(bound):
        # Beyond the bound the matches are too many to count: the page walks the scores.
        monkeypatch.setattr(customer_search, "COUNT_EXACT_UP_TO", bound)
        out = []
        for offset in range(0, 30, 4):
            items, total = customer_search.search_customers(
                session, q="1380000", sort="-predicted_clv", limit=4, offset=offset
            )
            assert total == 30 if bound > 30 else total >= bound
            out += [i["id"] for i in items]
        return out

    assert pages(3) == pages(10_000)
    assert len(set(pages(10_000))) == 30


def _estimates(engine):
    """Where the totals this database's search estimated are remembered."""
    if engine.dialect.name == "postgresql":
        return customer_search_sql._estimates
    return customer_search._estimates


def test_an_estimated_total_is_remembered_and_an_exact_one_never(db, engine, monkeypatch):
    session = db
    for i in range(4):
        customers.create_customer(session, actor=None, name=f"A{i}")
    session.commit()
    monkeypatch.setattr(customer_search, "_estimates", {})
    monkeypatch.setattr(customer_search_sql, "_estimates", {})
    exact = customer_search.search_customers(session)[1]
    assert exact == 4 and _estimates(engine) == {}
    monkeypatch.setattr(customer_search, "COUNT_EXACT_UP_TO", 2)
    estimated = customer_search.search_customers(session)[1]
    assert estimated >= 3
    if engine.dialect.name != "postgresql":
        assert _estimates(engine) == {}  # SQLite counts exactly
        return
    assert len(_estimates(engine)) == 1
    sent, explained = [], []
    fetch, estimate = customer_search_sql._fetch, customer_search_sql._estimate_statement
    monkeypatch.setattr(
        customer_search_sql, "_fetch", lambda c, s, p: sent.append(p["known"]) or fetch(c, s, p)
    )
    monkeypatch.setattr(
        customer_search_sql,
        "_estimate_statement",
        lambda *a, **k: explained.append(1) or estimate(*a, **k),
    )
    assert customer_search.search_customers(session)[1] == estimated
    assert (sent, explained) == ([estimated], [])  # one statement, told the total
    make_run(session, {})  # a newer run: the remembered total no longer counts
    session.commit()
    assert customer_search.search_customers(session)[1] >= 3
    assert explained == [1]


def test_concurrent_searches_count_an_estimated_total_once(db, engine, monkeypatch):
    import threading
    import time

    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite counts exactly and remembers nothing")
    for i in range(4):
        customers.create_customer(db, actor=None, name=f"A{i}")
    db.commit()
    monkeypatch.setattr(customer_search_sql, "_estimates", {})
    monkeypatch.setattr(customer_search_sql, "_counting", {})
    monkeypatch.setattr(customer_search, "COUNT_EXACT_UP_TO", 2)
    counted = []
    fetch = customer_search_sql._fetch

    def slow_fetch(connection, statement, params):
        rows = fetch(connection, statement, params)
        if params["known"] is None:
            counted.append(1)
            time.sleep(0.3)  # the others arrive while this count runs
        return rows

    monkeypatch.setattr(customer_search_sql, "_fetch", slow_fetch)
    start = threading.Barrier(6)
    totals = []

    def search() -> None:
        with session_factory(engine)() as session:
            start.wait()
            totals.append(customer_search.search_customers(session)[1])

    threads = [threading.Thread(target=search) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(counted) == 1
    assert len(totals) == 6 and len(set(totals)) == 1 and totals[0] >= 3


def test_a_fragment_without_case_is_found_inside_names_as_stored(db):
    for name in ("三丰", "张三丰", "李三丰乙", "张三", "Sanfeng 三丰"):
        customers.create_customer(db, actor=None, name=name)
    db.commit()
    items, total = customer_search.search_customers(db, q="三丰", sort="name")
    assert total == 4
    assert sorted(i["name"] for i in items) == ["Sanfeng 三丰", "三丰", "张三丰", "李三丰乙"]
    assert customer_search.search_customers(db, q="feng")[1] == 1  # cased: lower() on both


def test_a_request_that_never_touched_the_database_session_ends_in_the_event_loop(
    client, users, engine, monkeypatch
):
    from patron.web import deps

    ended = []
    end = deps._end
    monkeypatch.setattr(deps, "_end", lambda session, how: ended.append(how) or end(session, how))
    headers = users.headers("staff")
    assert client.get(BASE, headers=headers).status_code == 200  # the token is verified
    ended.clear()
    assert client.get(BASE, params={"q": "138"}, headers=headers).status_code == 200
    if engine.dialect.name == "postgresql":
        # Awaited on the read pool, the user from the token memory: the session never
        # began a transaction, so nothing goes to a worker thread to end it.
        assert ended == []
    else:
        assert len(ended) == 1  # SQLite read through the session: committed in a thread
    ended.clear()
    created = client.post(BASE, json={"name": "新客"}, headers=headers)
    assert created.status_code == 201 and len(ended) == 1  # a write is committed as ever
