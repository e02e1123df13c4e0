"""The pages in a real browser: Debian's Chromium driven by Playwright, against a real server.

The app runs under uvicorn in a background thread on a free port, over a migrated SQLite
file (and a PostgreSQL database of its own when PATRON_TEST_DATABASE_URL is set), seeded
through the real services: the demo shop imported and scored twice, one user per role.

Staff and analysts, in Chinese and English: log in, search a customer, open the 360, record
a contact and see it on the timeline (staff), see the personal data masked (analyst). Every
page is photographed on a laptop and on a phone into ``tests/web/output/`` for a person to
look at. Without ``/usr/bin/chromium`` (or Playwright) these tests are skipped, unless
``PATRON_REQUIRE_BROWSER=1``, which makes them fail instead. Never run
``playwright install``: it downloads a browser build.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.web.served import scratch_database, serving
from tests.web.test_pages import PASSWORD, seed_users

import patron
from patron.crm.db import make_engine, session_scope
from patron.crm.migrate import upgrade
from patron.crm.services import customers, imports, scoring, touchpoints
from patron.crm.tables import ImportBatch, ScoringRun, User
from patron.i18n import _

OUTPUT = Path(__file__).parent / "output"
CJK_FONTS = ("CJK", "Source Han", "Microsoft YaHei", "PingFang", "WenQuanYi", "Hiragino")
LAPTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
PHONE_NUMBER = "13812345678"
LANGS = ("en", "zh-CN")


# -- the server -----------------------------------------------------------------------------


def _seed(engine, folder: Path) -> dict:
    """The demo shop imported and scored twice; the top customer is 李娜, 138 1234 5678."""
    upgrade(engine)
    seed_users(engine)
    export = patron.datasets.demo_shop(folder / "demo_shop.csv", customers=150, seed=21)
    with session_scope(engine) as session:
        imports.import_file(session, export, kind="orders", source="demo_shop")
    for as_of in ("2025-06-30", None):
        with session_scope(engine) as session:
            scoring.run_scoring(session, as_of=as_of)
    with session_scope(engine) as session:
        top, _total = customers.search_customers(session, sort="-predicted_clv", limit=1)
        customer_id = top[0]["id"]
        admin = session.scalars(select(User).where(User.username == "admin")).one()
        customers.update_customer(
            session,
            customer_id,
            {"name": "李娜", "phone": PHONE_NUMBER, "email": "lina@example.com"},
            actor=admin,
        )
        touchpoints.record_touchpoint(
            session,
            customer_id,
            channel="phone",
            kind="call",
            note=f"回访：请拨 {PHONE_NUMBER}",
            actor=admin,
        )
        batch_id = session.scalars(select(ImportBatch.id)).one()
        run_id = session.scalars(select(ScoringRun.id).order_by(ScoringRun.id.desc())).first()
    return {"customer": customer_id, "batch": batch_id, "run": run_id, "export": export}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def server(request, tmp_path_factory):
    """``{"url", "customer", "batch", "run", "export", "db"}`` of a running, seeded app."""
    folder = tmp_path_factory.mktemp(f"browser-{request.param}")
    with scratch_database(request.param, folder, "patron_browser") as url:
        engine = make_engine(url)
        try:
            seeded = _seed(engine, folder)
            with serving(engine) as base:
                yield {**seeded, "url": base, "db": request.param}
        finally:
            engine.dispose()


class Visit:
    """A browser context logged in (or not) as one user, in one language, on one screen.

    Every request it makes is recorded: none may leave the server.
    """

    def __init__(self, browser, server, *, lang="en", viewport=LAPTOP) -> None:
        self.server = server
        self.lang = lang
        self.context = browser.new_context(
            locale=lang, viewport=viewport, base_url=server["url"], is_mobile=viewport is PHONE
        )
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.errors: list[str] = []

    def t(self, key: str, **values) -> str:
        return _(f"pages.{key}", lang=self.lang, **values)

    def login(self, username: str, target: str = "/customers") -> None:
        page = self.page
        page.goto(target)
        assert page.url.endswith(f"/login?next={target}")
        page.get_by_label(self.t("login.username"), exact=True).fill(username)
        page.get_by_label(self.t("login.password"), exact=True).fill(PASSWORD)
        page.get_by_role("button", name=self.t("login.submit")).click()
        page.wait_for_url(f"**{target}")

    def shot(self, name: str) -> Path:
        OUTPUT.mkdir(exist_ok=True)
        device = "phone" if self.page.viewport_size["width"] < 500 else "laptop"
        path = OUTPUT / f"{name}_{self.lang}_{device}_{self.server['db']}.png"
        self.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000
        return path

    def close(self) -> None:
        outside = [u for u in self.requests if not u.startswith(self.server["url"])]
        self.context.close()
        assert outside == [], outside
        assert self.errors == [], self.errors


@pytest.fixture
def visit(browser, server):
    visits: list[Visit] = []

    def open_visit(**options) -> Visit:
        visits.append(Visit(browser, server, **options))
        return visits[-1]

    yield open_visit
    for v in visits:
        v.close()


def _search_and_open(v: Visit, query: str, shown_phone: str) -> None:
    page = v.page
    page.get_by_test_id("search").fill(query)
    page.get_by_role("button", name=v.t("customers.apply")).click()
    page.wait_for_url(re.compile(r"/customers\?q="))
    rows = page.get_by_test_id("customers").locator("tbody tr")
    assert rows.count() == 1
    assert shown_phone in rows.first.inner_text()
    rows.first.locator("a.strong").click()
    page.wait_for_url(f"**/customers/{v.server['customer']}")


# -- the journeys ---------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGS)
def test_staff_find_a_customer_and_record_a_contact(visit, server, lang):
    v = visit(lang=lang)
    v.login("staff")
    _search_and_open(v, "李娜", PHONE_NUMBER)
    page = v.page
    assert page.get_by_test_id("phone").inner_text() == PHONE_NUMBER
    assert page.get_by_test_id("clv").is_visible()
    assert page.get_by_test_id("next-action").inner_text().strip() != ""

    note = f"{lang}: 约下周到店试用 {uuid.uuid4().hex[:6]}"
    form = page.get_by_test_id("touchpoint-form")
    form.get_by_label(v.t("customer.tp_channel"), exact=True).select_option("wechat")
    form.get_by_label(v.t("customer.tp_kind"), exact=True).select_option("message")
    form.get_by_label(v.t("customer.tp_note"), exact=True).fill(note)
    form.get_by_role("button", name=v.t("customer.tp_save")).click()
    page.wait_for_url(re.compile(r"saved=touchpoint"))
    assert page.get_by_test_id("saved").inner_text() == v.t("customer.touchpoint_saved")
    newest = page.get_by_test_id("timeline").locator("li.touchpoint").first
    assert note in newest.inner_text()
    assert _("pages.channel.wechat", lang=lang) in newest.inner_text()
    v.shot("customer_360_staff")


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGS)
def test_analysts_see_the_customer_masked(visit, server, lang):
    v = visit(lang=lang)
    v.login("analyst")
    _search_and_open(v, PHONE_NUMBER, "138****5678")
    page = v.page
    assert page.get_by_test_id("phone").inner_text() == "138****5678"
    assert page.get_by_test_id("email").inner_text() == "l***@example.com"
    assert page.get_by_test_id("customer-name").inner_text().startswith("李*")
    assert page.get_by_test_id("touchpoint-form").count() == 0
    timeline = page.get_by_test_id("timeline").inner_text()
    assert "回访：请拨 138****5678" in timeline
    assert PHONE_NUMBER not in page.content()
    v.shot("customer_360_analyst")


# -- every page, on a laptop and a phone ----------------------------------------------------


PAGES = {
    "dashboard": "/",
    "customers": "/customers",
    "customer_360": "/customers/{customer}",
    "imports": "/imports",
    "import_report": "/imports/{batch}",
    "scoring_runs": "/scoring",
    "scoring_run": "/scoring/{run}",
    "users": "/admin/users",
    "audit": "/admin/audit",
}


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("screen", ["laptop", "phone"])
def test_every_page_renders_and_fits_the_screen(visit, server, lang, screen):
    v = visit(lang=lang, viewport=LAPTOP if screen == "laptop" else PHONE)
    page = v.page
    page.goto("/login")
    assert page.locator("h1").inner_text() == v.t("login.title")
    v.shot("login")
    v.login("admin", target="/")
    width = page.viewport_size["width"]
    for name, path in PAGES.items():
        response = page.goto(path.format(**server))
        assert response.status == 200, path
        assert page.locator("main h1").first.is_visible()
        # Nothing sticks out sideways: wide tables scroll inside their own box.
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= width, (name, overflow, width)
        for chart in page.locator("svg.chart").all():
            box = chart.bounding_box()
            assert box["width"] > 200 and box["height"] > 100, name
        v.shot(name)
    # The dashboard of a scored shop: KPI cards, the two charts, the migration matrix.
    page.goto("/")
    assert page.locator(".kpi").count() >= 5
    assert page.locator("svg.chart").count() == 2
    assert page.get_by_test_id("migration").is_visible()
    # The navigation stays usable on a phone (it scrolls sideways inside the header).
    nav = page.locator("nav.nav a")
    hrefs = {link.get_attribute("href") for link in nav.all()}
    assert {"/", "/customers", "/tasks", "/imports", "/scoring", "/admin/users"} <= hrefs
    assert "/admin/audit" in hrefs and nav.count() == len(hrefs)
    assert page.get_by_role("link", name=v.t("nav.customers")).is_visible()


@pytest.mark.browser
def test_chinese_is_drawn_with_a_cjk_font(visit, server):
    v = visit(lang="zh-CN")
    v.login("manager", target="/")
    page = v.page
    title = _("pages.dashboard.title", lang="zh-CN")
    assert page.locator("h1").first.inner_text() == title
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "main h1"})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    assert fonts and all(any(n in f["familyName"] for n in CJK_FONTS) for f in fonts), fonts


@pytest.mark.browser
def test_an_upload_shows_progress_then_its_report(visit, server, tmp_path):
    v = visit(lang="en")
    v.login("manager", target="/imports")
    page = v.page
    export = patron.datasets.demo_shop(tmp_path / "second_shop.csv", customers=40, seed=99)
    form = page.get_by_test_id("upload-form")
    form.locator("input[type=file]").set_input_files(str(export))
    form.get_by_label(v.t("imports.source"), exact=True).fill("second")
    form.get_by_role("button", name=v.t("imports.submit")).click()
    page.wait_for_url(re.compile(r"/imports/\d+$"))
    counts = page.get_by_test_id("batch-counts").inner_text()
    assert v.t("imports.inserted") in counts
    assert page.get_by_test_id("rejected-download").count() == 1
    with page.expect_download() as download:
        page.get_by_test_id("rejected-download").click()
    saved = tmp_path / "rejected.csv"
    download.value.save_as(saved)
    assert saved.read_bytes().startswith("\ufeff".encode())
    # The same file again: nothing changes, and the page says so.
    page.goto("/imports")
    page.get_by_test_id("upload-form").locator("input[type=file]").set_input_files(str(export))
    page.get_by_test_id("upload-form").get_by_label(v.t("imports.source"), exact=True).fill(
        "second"
    )
    page.get_by_test_id("upload-form").get_by_role("button", name=v.t("imports.submit")).click()
    page.wait_for_url(re.compile(r"again=1"))
    assert page.get_by_test_id("again").is_visible()
    v.shot("import_upload_again")


@pytest.mark.browser
def test_logging_out_from_the_user_menu(visit, server):
    v = visit(lang="en", viewport=PHONE)
    v.login("staff", target="/customers")
    page = v.page
    page.locator(".user-menu summary").click()
    page.get_by_test_id("logout").click()
    page.wait_for_url("**/login")
    page.goto("/customers")
    assert "/login?next=/customers" in page.url
