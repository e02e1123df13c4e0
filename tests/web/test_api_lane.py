"""The lane (:mod:`patron.web.lane`) answers the busiest requests as FastAPI does.

On SQLite and PostgreSQL every request below is sent with the lane on and with it off, and
the answers must be the same; the lane must have answered the requests it understands
(a remembered bearer token, input the endpoint accepts) and left the rest to FastAPI,
whose refusals then see the request as it came, body and all.
"""

from __future__ import annotations

import datetime as dt

import pytest
from tests.web.test_api_perf_paths import rich  # noqa: F401  (a fixture)
from tests.web.test_api_points import T0, _normalised, _script

from patron.crm.db import session_scope
from patron.crm.services import customers, token_cache

BASE = "/api/v1/customers"


@pytest.fixture
def hot_tokens(monkeypatch):
    """Remembered tokens stay remembered for the whole test, however slow the machine."""
    monkeypatch.setattr(token_cache, "_now", lambda: 1000.0)
    token_cache.forget_all()


def _lane(client, on: bool) -> int:
    """Switch the lane; the number of requests it has answered so far."""
    client.app.state.fast_lane = on
    return getattr(client.app.state, "lane_answers", 0)


def _answer(response):
    return response.status_code, response.headers.get("content-type"), response.content


def test_reads_are_answered_as_fastapi_answers_them(client, users, rich, hot_tokens):  # noqa: F811
    customer_id, merged_id = rich
    staff, analyst = users.headers("staff"), users.headers("analyst")
    # (path, query, headers, whether the lane answers it)
    requests = [
        (f"{BASE}/{customer_id}", "", staff, True),
        (f"{BASE}/{merged_id}", "", staff, True),  # the surviving record
        (f"{BASE}/{customer_id}", "", analyst, True),  # masked
        (f"{BASE}/{10**9}", "", staff, True),  # 404 from the endpoint
        (f"{BASE}/0", "", staff, False),  # 422: FastAPI's words
        (f"{BASE}/0{customer_id}", "", staff, False),
        (f"{BASE}/{2**63}", "", staff, False),
        (f"{BASE}/abc", "", staff, False),
        (BASE, "q=138", staff, True),
        (BASE, "q=138", analyst, True),
        (BASE, "q=%E5%BC%A0&sort=name&limit=1&offset=1", staff, True),
        (BASE, "grade=&tag=vip&unknown=1", staff, True),
        (BASE, "owner=1&risk=high", staff, True),
        (BASE, "q=" + "x" * 129, staff, False),  # too long
        (BASE, "q=a%00b", staff, False),  # NUL
        (BASE, "sort=bogus", staff, False),
        (BASE, "limit=0", staff, False),
        (BASE, "limit=", staff, False),
        (BASE, "offset=-1", staff, False),
        (BASE, "q=138&q=%E5%BC%A0", staff, False),  # repeated: FastAPI's rule
        (BASE, "q=138", {}, False),  # 401
        (BASE, "q=138", {"Authorization": "Bearer pat_unknown"}, False),
    ]
    for headers in (staff, analyst):  # the tokens are verified once, then remembered
        assert client.get(BASE, headers=headers).status_code == 200
    for path, query, headers, in_lane in requests:
        url = f"{path}?{query}" if query else path
        answered = _lane(client, True)
        with_lane = client.get(url, headers=headers)
        assert _lane(client, False) - answered == int(in_lane), url
        without = client.get(url, headers=headers)
        assert _lane(client, True) == answered + int(in_lane)
        assert _answer(with_lane) == _answer(without), url
        assert with_lane.status_code in (200, 401, 404, 422), url
    masked = client.get(f"{BASE}/{customer_id}", headers=analyst)
    assert masked.status_code == 200 and "13812345678" not in masked.text


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_refused_writes_reach_fastapi_with_their_body(client, users, engine, hot_tokens, lang):
    with session_scope(engine) as session:
        customer_id = customers.create_customer(session, actor=None, name="王芳").id
    url = f"{BASE}/{customer_id}/points/earn"
    headers = {**users.headers("staff"), "Accept-Language": lang}
    client.get(BASE, headers=headers)  # remember the token
    cases = [
        ({"points": -5, "reason": "x"}, {"Idempotency-Key": "k1"}),  # 422, points
        ({"points": 5}, {"Idempotency-Key": "k2"}),  # 422, reason
        ({"points": 5, "reason": "x", "extra": 1}, {"Idempotency-Key": "k3"}),
        ({"points": 5, "reason": "x"}, {}),  # 400: no key
        ({"points": 5, "reason": "x"}, {"Idempotency-Key": "  "}),
    ]
    for body, extra in cases:
        answered = _lane(client, True)
        with_lane = client.post(url, json=body, headers={**headers, **extra})
        assert _lane(client, False) == answered  # FastAPI answered
        without = client.post(url, json=body, headers={**headers, **extra})
        assert _answer(with_lane) == _answer(without)
        assert with_lane.status_code in (400, 422)
    text = client.post(url, content=b"points=5", headers={**headers, "Idempotency-Key": "k4"})
    assert text.status_code == 422
    # The analyst may not write: 403, worded by FastAPI's dependency.
    analyst = users.headers("analyst")
    client.get(BASE, headers=analyst)
    refused = client.post(
        url, json={"points": 5, "reason": "x"}, headers={**analyst, "Idempotency-Key": "k5"}
    )
    assert refused.status_code == 403


def test_writes_in_the_lane_are_the_writes_fastapi_makes(
    client, users, engine, monkeypatch, hot_tokens
):
    from patron.crm.services.loyalty import points as points_service
    from patron.web.api import points as points_api

    clock = [T0]
    monkeypatch.setattr(points_api, "utcnow", lambda: clock[0])
    monkeypatch.setattr(points_service, "utcnow", lambda: clock[0])
    client.get(BASE, headers=users.headers("staff"))  # remember the token
    seen, answered = {}, {}
    for on in (True, False):
        with session_scope(engine) as session:
            customer_id = customers.create_customer(session, actor=None, name=f"lane {on}").id
        before = _lane(client, on)
        answers = _script(client, users, engine, customer_id, f"{on}-", clock)
        answered[on] = _lane(client, True) - before
        seen[on] = _normalised(engine, customer_id, f"{on}-", answers)
    # Every write of the script is the lane's when it is on: its refusals (409, 422)
    # come from the endpoint through the app's exception handlers.
    assert answered == {True: len(seen[True]["answers"]), False: 0}
    for part in seen[False]:
        assert seen[True][part] == seen[False][part], part
    assert [status for status, _body, _replayed in seen[True]["answers"]].count(409) == 4
    assert clock[0] - T0 == dt.timedelta(days=400)
