"""The pages through a TestClient, on SQLite and PostgreSQL, seeded through the real services.

Login, CSRF, language, masking, the customer list and 360, recording a contact, and the
refusals (login redirect, 403 and 404 as pages). Imports, scoring and administration are in
test_pages_operations.py.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from patron.crm.db import session_scope
from patron.crm.services import customers as customer_service
from patron.crm.services import users as user_service
from patron.crm.tables import Touchpoint, User
from patron.i18n import _

PASSWORD = "correct horse battery"
ROLES = ("admin", "manager", "staff", "analyst")
PAGES = ("/", "/customers", "/customers/1", "/imports", "/scoring", "/admin/users", "/admin/audit")


# -- helpers shared with the other page and browser tests ---------------------------------


def seed_users(engine, *, timezone: str | None = None) -> dict[str, int]:
    """One user per role, named after it, with :data:`PASSWORD`."""
    ids = {}
    with session_scope(engine) as session:
        for role in ROLES:
            user, _generated = user_service.create_user(
                session, username=role, role=role, password=PASSWORD, display_name=role.title()
            )
            if timezone:
                user_service.update_user(session, user, actor=None, timezone=timezone)
            ids[role] = user.id
    return ids


def seed_customers(engine, owner_id: int | None = None) -> dict[str, int]:
    """Two customers with a phone and an email, one tagged and owned by ``owner_id``."""
    with session_scope(engine) as session:
        li = customer_service.create_customer(
            session,
            actor=None,
            name="李娜",
            phone="13812345678",
            email="lina@example.com",
            tags=("vip",),
            owner_id=owner_id,
        )
        grace = customer_service.create_customer(
            session, actor=None, name="Grace Li", phone="13900001111", email="grace@example.com"
        )
        return {"li": li.id, "grace": grace.id}


def csrf_of(html: str) -> str:
    """The first CSRF token in a page's forms."""
    found = re.search(r'name="csrf_token" value="([^"]*)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def login(client, username: str, password: str = PASSWORD, next_url: str = "/"):
    """Post the login form as a browser does (form page first, for its CSRF cookie)."""
    form = client.get(f"/login?next={next_url}")
    assert form.status_code == 200
    return client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "csrf_token": csrf_of(form.text),
            "next": next_url,
        },
        follow_redirects=False,
    )


def text_of(html: str) -> str:
    """The visible text of a page, roughly: tags and SVG left out, spaces squeezed."""
    html = re.sub(r"<(svg|script|style).*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# -- login, logout, CSRF ------------------------------------------------------------------


def test_every_page_sends_a_stranger_to_the_login_form_and_back(client, engine):
    for path in PAGES:
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"] == f"/login?next={path}"
    seed_users(engine)
    response = login(client, "admin", next_url="/customers?q=li")
    assert response.status_code == 303
    assert response.headers["location"] == "/customers?q=li"


def test_login_sets_an_httponly_session_cookie_and_logout_ends_it(client, engine):
    seed_users(engine)
    response = login(client, "staff")
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert "patron_session=" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    secret = client.cookies["patron_session"]
    page = client.get("/customers")
    assert page.status_code == 200
    assert "Staff" in page.text  # the user menu
    out = client.post("/logout", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    # A copy of the old cookie no longer logs anyone in.
    client.cookies.set("patron_session", secret)
    again = client.get("/customers", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"].startswith("/login")


def test_a_wrong_password_shows_the_form_again_and_is_recorded(client, engine):
    seed_users(engine)
    response = login(client, "staff", password="wrong password")
    assert response.status_code == 401
    assert _("accounts.login_failed", lang="en") in response.text
    assert 'value="staff"' in response.text  # the username is kept
    assert "patron_session" not in client.cookies
    with session_scope(engine) as session:
        from patron.crm.tables import LoginAttempt

        attempts = session.scalars(select(LoginAttempt)).all()
        assert [(a.username, a.success) for a in attempts] == [("staff", False)]


def test_repeated_failures_are_answered_429_with_retry_after(client, engine):
    seed_users(engine)
    statuses = [login(client, "staff", password="nope").status_code for _ in range(7)]
    assert statuses[0] == 401 and statuses[-1] == 429
    last = login(client, "staff")  # even the right password waits now
    assert last.status_code == 429 and int(last.headers["retry-after"]) > 0


def test_login_without_its_csrf_cookie_is_refused(client, engine):
    seed_users(engine)
    form = client.get("/login")
    token = csrf_of(form.text)
    client.cookies.delete("patron_login_csrf", path="/login")
    response = client.post(
        "/login",
        data={"username": "staff", "password": PASSWORD, "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert _("pages.login.expired", lang="en") in response.text
    assert "patron_session" not in client.cookies


def test_a_form_post_without_the_session_csrf_token_is_refused_as_a_page(client, engine):
    ids = seed_users(engine)
    customers = seed_customers(engine, ids["staff"])
    assert login(client, "staff").status_code == 303
    response = client.post(
        f"/customers/{customers['li']}/touchpoints",
        data={"channel": "phone", "kind": "call", "note": "forged", "csrf_token": "nope"},
    )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert _("api.csrf_failed", lang="en") in response.text
    with session_scope(engine) as session:
        assert session.scalars(select(Touchpoint)).all() == []


def test_next_never_leaves_the_site(client, engine):
    seed_users(engine)
    for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        response = login(client, "staff", next_url=target)
        assert response.status_code == 303
        location = response.headers["location"]
        assert location.startswith("/") and not location.startswith("//")
        assert "evil" not in location
        client.cookies.clear()
    switch = client.get("/language/zh-CN?next=https://evil.example/", follow_redirects=False)
    assert switch.headers["location"] == "/"


# -- language, headers ----------------------------------------------------------------------


def test_language_from_the_browser_then_from_the_switch(client, engine):
    seed_users(engine)
    zh = client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert "<title>登录 · patron</title>" in zh.text and '<html lang="zh-CN">' in zh.text
    en = client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert "<title>Log in · patron</title>" in en.text
    switch = client.get("/language/zh-CN?next=/customers", follow_redirects=False)
    assert switch.status_code == 303 and switch.headers["location"] == "/customers"
    assert "lang=zh-CN" in switch.headers["set-cookie"]
    # The cookie wins over the browser's English.
    assert login(client, "staff", next_url="/customers").status_code == 303
    page = client.get("/customers", headers={"Accept-Language": "en"})
    assert "<h1>客户</h1>" in page.text and "退出登录" in page.text
    client.get("/language/en?next=/customers")
    assert "<h1>Customers</h1>" in client.get("/customers").text


def test_pages_send_a_strict_content_security_policy_and_no_external_url(client, engine):
    ids = seed_users(engine)
    customers = seed_customers(engine, ids["staff"])
    assert login(client, "admin").status_code == 303
    pages = [p.replace("/customers/1", f"/customers/{customers['li']}") for p in PAGES]
    for path in (*pages, "/login"):
        response = client.get(path)
        assert response.status_code == 200, path
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy
        # Every src and href is a path of this server (or a fragment).
        for url in re.findall(r'(?:src|href|action)="([^"]*)"', response.text):
            assert url.startswith(("/", "#", "?")), (path, url)
    css = client.get("/static/patron.css")
    assert css.status_code == 200 and "url(" not in css.text and "@import" not in css.text
    js = client.get("/static/patron.js")
    assert js.status_code == 200 and "http" not in js.text


def test_unknown_and_forbidden_pages_are_pages_in_the_readers_language(client, engine):
    seed_users(engine)
    assert login(client, "analyst").status_code == 303
    client.get("/language/zh-CN")
    missing = client.get("/customers/987654")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "未找到" in missing.text and "Analyst" in missing.text  # the header is still there
    forbidden = client.get("/admin/users")
    assert forbidden.status_code == 403 and "无权操作" in forbidden.text
    nowhere = client.get("/no/such/page")
    assert nowhere.status_code == 404 and "<html" in nowhere.text
    api = client.get("/api/v1/no/such/thing")
    assert api.headers["content-type"].startswith("application/json")


# -- navigation by role ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "shown", "hidden"),
    [
        ("admin", {"/admin/users", "/admin/audit", "/imports"}, set()),
        ("manager", {"/imports", "/scoring", "/admin/audit"}, {"/admin/users"}),
        ("staff", {"/customers", "/imports", "/scoring"}, {"/admin/users", "/admin/audit"}),
        ("analyst", {"/customers", "/scoring"}, {"/admin/users", "/admin/audit"}),
    ],
)
def test_the_navigation_shows_what_the_role_may_open(client, engine, role, shown, hidden):
    seed_users(engine)
    assert login(client, role).status_code == 303
    page = client.get("/")
    nav = re.search(r'<nav class="nav".*?</nav>', page.text, re.S).group(0)
    links = set(re.findall(r'href="([^"]+)"', nav))
    assert shown <= links and not (hidden & links)
    for path in hidden:
        assert client.get(path).status_code == 403


# -- customers ------------------------------------------------------------------------------


def test_the_list_searches_filters_and_masks_for_analysts(client, engine):
    ids = seed_users(engine)
    customers = seed_customers(engine, ids["staff"])
    assert login(client, "staff").status_code == 303
    everyone = client.get("/customers")
    assert "13812345678" in everyone.text and "13900001111" in everyone.text
    assert "2 customers" in text_of(everyone.text)
    by_phone = client.get("/customers", params={"q": "138 1234"})
    assert f'href="/customers/{customers["li"]}"' in by_phone.text
    assert f'href="/customers/{customers["grace"]}"' not in by_phone.text
    by_tag = client.get("/customers", params={"tag": "vip"})
    assert "李娜" in by_tag.text and "Grace" not in by_tag.text
    by_owner = client.get("/customers", params={"owner": str(ids["staff"])})
    assert "李娜" in by_owner.text and "Grace" not in by_owner.text
    nobody = client.get("/customers", params={"grade": "gold"})  # nobody is scored yet
    assert _("pages.customers.none", lang="en") in nobody.text
    odd = client.get("/customers", params={"page": "x", "sort": "drop table", "owner": "me"})
    assert odd.status_code == 200

    client.cookies.clear()
    assert login(client, "analyst").status_code == 303
    masked = client.get("/customers")
    assert "138****5678" in masked.text and "13812345678" not in masked.text
    assert "李*" in masked.text and "李娜" not in masked.text
    # Searching by the real phone still finds the customer, shown masked (the query the
    # analyst typed is echoed in the search field; the results hold no phone).
    found = client.get("/customers", params={"q": "13812345678"})
    table = re.search(r'<table class="list.*?</table>', found.text, re.S).group(0)
    assert "138****5678" in table and "13812345678" not in table


def test_the_360_shows_the_profile_and_masks_it_for_analysts(client, engine):
    ids = seed_users(engine)
    customers = seed_customers(engine, ids["staff"])
    assert login(client, "staff").status_code == 303
    page = client.get(f"/customers/{customers['li']}")
    assert page.status_code == 200
    assert "13812345678" in page.text and "lina@example.com" in page.text
    assert 'href="/customers?tag=vip"' in page.text
    assert _("pages.customer.no_score", lang="en") in page.text
    assert 'data-testid="touchpoint-form"' in page.text

    client.cookies.clear()
    assert login(client, "analyst").status_code == 303
    masked = client.get(f"/customers/{customers['li']}")
    assert "138****5678" in masked.text and "l***@example.com" in masked.text
    assert "13812345678" not in masked.text and "lina@example.com" not in masked.text
    assert 'data-testid="touchpoint-form"' not in masked.text  # analysts only read
    refused = client.post(
        f"/customers/{customers['li']}/touchpoints",
        data={"channel": "phone", "kind": "call", "csrf_token": csrf_of(masked.text)},
    )
    assert refused.status_code == 403


def test_recording_a_contact_puts_it_on_the_timeline_in_the_users_time_zone(client, engine):
    ids = seed_users(engine)
    customers = seed_customers(engine, ids["staff"])
    assert login(client, "staff").status_code == 303
    url = f"/customers/{customers['li']}"
    page = client.get(url)
    response = client.post(
        f"{url}/touchpoints",
        data={
            "channel": "wechat",
            "kind": "message",
            "note": "约下周到店，电话 13812345678",
            "occurred_at": "2025-03-05T14:30",
            "csrf_token": csrf_of(page.text),
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"{url}?saved=touchpoint#timeline"
    with session_scope(engine) as session:
        (stored,) = session.scalars(select(Touchpoint)).all()
        # 14:30 in Shanghai is 06:30 UTC; the staff member is the one logged in.
        assert stored.occurred_at == dt.datetime(2025, 3, 5, 6, 30, tzinfo=dt.UTC)
        assert stored.staff_id == ids["staff"] and stored.channel == "wechat"
    shown = client.get(f"{url}?saved=touchpoint")
    timeline = re.search(r'<ol class="timeline".*?</ol>', shown.text, re.S).group(0)
    assert "2025-03-05 14:30" in timeline and "约下周到店" in timeline
    assert "Message" in timeline and "WeChat" in timeline and "Staff" in timeline
    assert _("pages.customer.touchpoint_saved", lang="en") in shown.text

    # The analyst sees it too, with the phone number in the note masked.
    client.cookies.clear()
    assert login(client, "analyst").status_code == 303
    masked = client.get(url)
    assert "约下周到店" in masked.text and "138****5678" in masked.text
    assert "13812345678" not in masked.text


def test_a_bad_contact_shows_the_form_again_with_the_error(client, engine):
    ids = seed_users(engine)
    customers = seed_customers(engine, ids["staff"])
    assert login(client, "staff").status_code == 303
    url = f"/customers/{customers['li']}"
    token = csrf_of(client.get(url).text)
    bad_kind = client.post(
        f"{url}/touchpoints",
        data={"channel": "phone", "kind": "telepathy", "note": "kept", "csrf_token": token},
    )
    assert bad_kind.status_code == 422
    assert "telepathy" in bad_kind.text and ">kept</textarea>" in bad_kind.text
    bad_time = client.post(
        f"{url}/touchpoints",
        data={"channel": "phone", "kind": "call", "occurred_at": "soon", "csrf_token": token},
    )
    assert bad_time.status_code == 422
    assert 'aria-invalid="true"' in bad_time.text and "soon" in bad_time.text
    with session_scope(engine) as session:
        assert session.scalars(select(Touchpoint)).all() == []


def test_times_follow_the_users_own_time_zone(client, engine):
    seed_users(engine, timezone="UTC")
    customers = seed_customers(engine)
    with session_scope(engine) as session:
        from patron.crm.services import touchpoints

        staff = session.scalars(select(User).where(User.username == "staff")).one()
        touchpoints.record_touchpoint(
            session,
            customers["li"],
            channel="phone",
            kind="call",
            occurred_at=dt.datetime(2025, 3, 5, 6, 30, tzinfo=dt.UTC),
            actor=staff,
        )
    assert login(client, "staff").status_code == 303
    page = client.get(f"/customers/{customers['li']}")
    assert "2025-03-05 06:30" in page.text and "2025-03-05 14:30" not in page.text
    assert "Times are shown in UTC" in page.text


def test_a_merged_customers_old_address_shows_the_survivor(client, engine):
    ids = seed_users(engine)
    customers = seed_customers(engine, ids["staff"])
    with session_scope(engine) as session:
        from patron.crm.services import identity

        identity.merge_customers(session, customers["li"], customers["grace"], rule="manual")
    assert login(client, "staff").status_code == 303
    response = client.get(f"/customers/{customers['grace']}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/customers/{customers['li']}"
