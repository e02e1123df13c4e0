"""Logging in over the API, who may do what, and the CSRF check of cookie-authenticated calls."""

from sqlalchemy import func, select

from patron.crm.db import session_scope
from patron.crm.services import auth
from patron.crm.tables import ApiToken, AuditEvent, LoginAttempt


def test_token_from_a_form_and_from_json(client, users):
    users.create("mei", "staff")
    form = client.post("/api/v1/auth/token", data={"username": "mei", "password": users.password})
    as_json = client.post(
        "/api/v1/auth/token", json={"username": "MEI", "password": users.password}
    )
    for response in (form, as_json):
        assert response.status_code == 200
        body = response.json()
        assert body["token_type"] == "bearer"
        assert body["access_token"].startswith("pat_")
        me = client.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
        )
        assert me.json()["username"] == "mei"
        assert me.json()["role"] == "staff"
    assert form.json()["access_token"] != as_json.json()["access_token"]


def test_token_is_stored_named_login(client, users, engine):
    users.create("mei", "staff")
    client.post("/api/v1/auth/token", json={"username": "mei", "password": users.password})
    with session_scope(engine) as session:
        names = session.scalars(select(ApiToken.name).order_by(ApiToken.id)).all()
    assert names == ["test", "login"]


def test_wrong_password_is_401_and_recorded(client, users, engine):
    users.create("mei", "staff")
    response = client.post("/api/v1/auth/token", json={"username": "mei", "password": "nope"})
    assert response.status_code == 401
    assert response.json()["code"] == "login_failed"
    assert response.json()["field"] is None
    assert response.headers["WWW-Authenticate"] == "Bearer"
    # The failure survives the error answer: the rate limit must be able to count it.
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(LoginAttempt)) == 1
        actions = session.scalars(select(AuditEvent.action)).all()
    assert "user.login_failed" in actions


def test_repeated_failures_are_rate_limited_with_retry_after(client, users):
    users.create("mei", "staff")
    bad = {"username": "mei", "password": "wrong password"}
    codes = [client.post("/api/v1/auth/token", json=bad).status_code for _ in range(5)]
    assert codes == [401] * 5
    limited = client.post(
        "/api/v1/auth/token", json={"username": "mei", "password": users.password}
    )
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert 0 < int(limited.headers["Retry-After"]) <= 15 * 60


def test_bad_login_bodies_are_422_not_500(client):
    cases = [
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, None),
        ({"json": [1, 2]}, None),
        ({"json": {"username": "mei"}}, "password"),
        ({"json": {"username": 7, "password": "x"}}, "username"),
        ({"json": {"username": "x" * 65, "password": "x"}}, "username"),
        ({"data": {"password": "x"}}, "username"),
        ({"content": b"\xff\xfe", "headers": {"Content-Type": "application/json"}}, None),
    ]
    for request, field in cases:
        response = client.post("/api/v1/auth/token", **request)
        assert response.status_code == 422, request
        assert response.json()["code"] == "invalid"
        assert response.json()["field"] == field, request


def test_no_credentials_is_401_with_www_authenticate(client):
    for path in ("/api/v1/customers", "/api/v1/imports", "/api/v1/scoring-runs", "/api/v1/merges"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.json()["code"] == "not_authenticated"


def test_a_bad_or_revoked_token_is_401(client, users, engine):
    headers = users.headers("staff")
    assert client.get("/api/v1/customers", headers=headers).status_code == 200
    for header in ("Bearer pat_unknown", "Basic bWVpOnB3", "Bearer", "Token abc"):
        response = client.get("/api/v1/customers", headers={"Authorization": header})
        assert response.status_code == 401, header
    with session_scope(engine) as session:
        token = session.scalars(select(ApiToken)).one()
        auth.revoke_api_token(session, token.id, actor=None)
    response = client.get("/api/v1/customers", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "bad_token"


def test_messages_follow_the_readers_language(client):
    zh = client.get("/api/v1/customers", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert zh.json()["message"].startswith("请先登录")
    client.cookies.set("lang", "en")
    en = client.get("/api/v1/customers", headers={"Accept-Language": "zh-CN"})
    assert en.json()["message"].startswith("Sign in first")


def test_roles_are_refused_what_they_may_not_do(client, users):
    analyst, staff = users.headers("analyst"), users.headers("staff")
    refused = [
        (analyst, "post", "/api/v1/customers", {"json": {"name": "A"}}),
        (analyst, "patch", "/api/v1/customers/1", {"json": {"name": "A"}}),
        (analyst, "post", "/api/v1/customers/1/touchpoints", {"json": {}}),
        (analyst, "post", "/api/v1/scoring-runs", {}),
        (staff, "post", "/api/v1/scoring-runs", {}),
        (staff, "post", "/api/v1/imports", {"files": {"file": ("a.csv", b"x")}}),
        (staff, "get", "/api/v1/exports/customers", {}),
    ]
    for headers, method, path, extra in refused:
        response = client.request(method, path, headers=headers, **extra)
        assert response.status_code == 403, (method, path)
        assert response.json()["code"] == "forbidden"
        assert "permission" in response.json()["message"]


def _cookie_login(client, engine, username):
    from patron.crm.services import users as users_service

    with session_scope(engine) as session:
        user = users_service.get_user_by_name(session, username)
        secret, web = auth.start_session(session, user)
        csrf = web.csrf_token
    client.cookies.set("patron_session", secret)
    return csrf


def test_cookie_sessions_need_the_csrf_token_for_writes(client, users, engine):
    users.create("mei", "staff")
    csrf = _cookie_login(client, engine, "mei")
    assert client.get("/api/v1/customers").status_code == 200  # reads need no token
    body = {"name": "李四"}
    missing = client.post("/api/v1/customers", json=body)
    assert missing.status_code == 403
    assert missing.json()["code"] == "csrf_failed"
    wrong = client.post("/api/v1/customers", json=body, headers={"X-CSRF-Token": "x" + csrf})
    assert wrong.status_code == 403
    ok = client.post("/api/v1/customers", json=body, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201


def test_the_sessionless_endpoints_check_cookies_and_csrf_as_the_others(client, users, engine):
    # Earning points and searching answer without the request's session when a bearer
    # token is remembered; a cookie still takes the whole check, the CSRF token included.
    users.create("mei", "staff")
    csrf = _cookie_login(client, engine, "mei")
    made = client.post("/api/v1/customers", json={"name": "李四"}, headers={"X-CSRF-Token": csrf})
    earn = f"/api/v1/customers/{made.json()['id']}/points/earn"
    body = {"points": 5, "reason": "welcome"}
    missing = client.post(earn, json=body, headers={"Idempotency-Key": "k1"})
    assert (missing.status_code, missing.json()["code"]) == (403, "csrf_failed")
    ok = client.post(earn, json=body, headers={"Idempotency-Key": "k1", "X-CSRF-Token": csrf})
    assert ok.status_code == 201 and ok.json()["entry"]["actor"] == "mei"
    found = client.get("/api/v1/customers", params={"q": "李四"}).json()
    assert [item["id"] for item in found["items"]] == [made.json()["id"]]
    client.cookies.clear()
    assert client.get("/api/v1/customers").status_code == 401
    assert client.post(earn, json=body, headers={"Idempotency-Key": "k2"}).status_code == 401


def test_bearer_requests_need_no_csrf_token_even_with_a_cookie(client, users, engine):
    headers = users.headers("staff")
    _cookie_login(client, engine, "staff")
    response = client.post("/api/v1/customers", json={"name": "王五"}, headers=headers)
    assert response.status_code == 201


def test_a_disabled_user_loses_api_access(client, users, engine):
    from patron.crm.services import users as users_service

    headers = users.headers("staff")
    with session_scope(engine) as session:
        user = users_service.get_user(session, users.id("staff"))
        users_service.update_user(session, user, actor=None, active=False)
    assert client.get("/api/v1/customers", headers=headers).status_code == 401


def test_service_messages_follow_the_requesters_language(client, users):
    from patron.i18n import _

    users.create("mei", "staff")
    bad = {"username": "mei", "password": "nope"}
    zh = client.post("/api/v1/auth/token", json=bad, headers={"Accept-Language": "zh-CN"})
    en = client.post("/api/v1/auth/token", json=bad, headers={"Accept-Language": "en"})
    assert zh.status_code == en.status_code == 401
    assert zh.json()["message"] == _("accounts.login_failed", lang="zh-CN")
    assert en.json()["message"] == _("accounts.login_failed", lang="en")
    assert zh.json()["message"] != en.json()["message"]
