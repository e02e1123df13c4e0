"""The closed feedback loop in a real browser: a customer answers a survey link with NPS 3,
a task appears in the owner's inbox, and the owner closes it with a note.

Debian's Chromium driven by Playwright against the app under uvicorn, on a migrated SQLite
file and on a PostgreSQL database of its own (when PATRON_TEST_DATABASE_URL is set), in
Chinese and in English. The customer has no login: the signed link is all they hold, and
they answer on a phone. Every step is photographed into ``tests/web/output/``. Without
``/usr/bin/chromium`` (or Playwright) the tests are skipped with the reason, unless
``PATRON_REQUIRE_BROWSER=1``, which makes them fail instead (the ``browser`` fixture of
``tests/conftest.py``; the page helpers are those of ``tests/web/test_browser_pages.py``).
"""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import select
from tests.web.served import scratch_database, serving
from tests.web.test_browser_pages import PHONE, Visit
from tests.web.test_pages import seed_users

from patron.crm.db import make_engine, session_scope
from patron.crm.migrate import upgrade
from patron.crm.services import customers, feedback
from patron.crm.tables import AuditEvent, Task
from patron.i18n import _

LANGS = ("zh-CN", "en")
NAMES = {"zh-CN": "王芳", "en": "Emma Stone"}
COMMENTS = {"zh-CN": "送货太慢了，包装也破了。", "en": "Delivery was slow and the box was torn."}
NOTES = {
    "zh-CN": "已致电王女士道歉，补发新品并赠送优惠券。",
    "en": "Called Emma, apologised, sent a replacement and a voucher.",
}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def server(request, tmp_path_factory):
    """``{"url", "engine", "db", "staff"}`` of a running app with one user per role."""
    folder = tmp_path_factory.mktemp(f"loop-{request.param}")
    with scratch_database(request.param, folder, "patron_loop") as url:
        engine = make_engine(url)
        try:
            upgrade(engine)
            ids = seed_users(engine)
            with serving(engine) as base:
                yield {"url": base, "engine": engine, "db": request.param, "staff": ids["staff"]}
        finally:
            engine.dispose()


@pytest.fixture
def visit(browser, server):
    visits: list[Visit] = []

    def open_visit(**options) -> Visit:
        visits.append(Visit(browser, server, **options))
        return visits[-1]

    yield open_visit
    for v in visits:
        v.close()


def _invite(server, lang: str) -> tuple[int, str]:
    """A customer owned by ``staff`` who speaks ``lang``, and their NPS survey link."""
    with session_scope(server["engine"]) as session:
        customer = customers.create_customer(
            session,
            actor=None,
            name=NAMES[lang],
            phone=f"139{uuid.uuid4().int % 10**8:08d}",
            language=lang,
            owner_id=server["staff"],
        )
        batch = feedback.create_invitations(
            session, kind="nps", customer_id=customer.id, actor=None
        )
        return customer.id, batch.created[0].token


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGS)
def test_a_detractor_becomes_a_task_the_owner_closes_with_a_note(visit, server, lang):
    customer_id, token = _invite(server, lang)

    # The customer, on a phone and without a login, answers the link with 3.
    customer = visit(lang=lang, viewport=PHONE)
    page = customer.page
    response = page.goto(f"/s/{token}")
    assert response.status == 200
    assert page.locator("h1").inner_text() == _("pages.survey.question_nps", lang=lang)
    assert page.locator(".nav").count() == 0  # no staff header on the public page
    page.locator("label[for='score-3']").click()
    assert page.locator("#score-3").is_checked()
    page.get_by_label(_("pages.survey.comment", lang=lang), exact=True).fill(COMMENTS[lang])
    customer.shot("loop_1_survey")
    page.get_by_test_id("survey-submit").click()
    page.get_by_test_id("survey-thanks").wait_for()
    assert (
        _("pages.survey.thanks_title", lang=lang)
        in page.get_by_test_id("survey-thanks").inner_text()
    )
    customer.shot("loop_2_thanks")
    # The link is single-use: opening it again records nothing new.
    page.goto(f"/s/{token}")
    assert page.get_by_test_id("survey-form").count() == 0

    # The owner finds the task in their inbox.
    owner = visit(lang=lang)
    owner.login("staff", target="/tasks")
    inbox = owner.page
    card = inbox.locator("[data-testid=task]", has_text=NAMES[lang])
    assert card.count() == 1
    assert card.get_attribute("data-kind") == "detractor"
    assert _("pages.tasks.kind.detractor", lang=lang) in card.inner_text()
    assert "NPS 3/10" in card.inner_text() and COMMENTS[lang] in card.inner_text()
    assert card.get_by_test_id("task-owner").inner_text() == "Staff"
    assert card.get_by_test_id("overdue").count() == 0  # due in 48 hours
    task_id = int(card.get_attribute("data-task-id"))
    owner.shot("loop_3_inbox")

    # Closing without a note is refused; with one, the task leaves the inbox.
    card.get_by_test_id("close-task").click()
    note = card.get_by_label(_("pages.tasks.resolution", lang=lang), exact=True)
    note.fill("   ")
    note.evaluate("el => el.removeAttribute('required')")  # let the server judge it
    card.get_by_role("button", name=_("pages.tasks.close_submit", lang=lang)).click()
    inbox.wait_for_load_state()
    refused = inbox.locator(f"#task-{task_id}")
    assert _("tasks.resolution_required", lang=lang) in refused.inner_text()
    note = refused.get_by_label(_("pages.tasks.resolution", lang=lang), exact=True)
    note.fill(NOTES[lang])
    owner.shot("loop_4_closing")
    refused.get_by_role("button", name=_("pages.tasks.close_submit", lang=lang)).click()
    inbox.wait_for_url(re.compile(r"saved=closed"))
    assert inbox.get_by_test_id("saved").inner_text() == _("pages.tasks.saved_closed", lang=lang)
    assert inbox.locator(f"#task-{task_id}").count() == 0
    owner.shot("loop_5_closed")

    # The closed task, with its note, on the customer's 360.
    inbox.goto(f"/customers/{customer_id}")
    panel = inbox.get_by_test_id("customer-tasks")
    panel.locator("details summary").first.click()
    assert NOTES[lang] in panel.inner_text()
    owner.shot("loop_6_customer_360")

    with session_scope(server["engine"]) as session:
        task = session.get(Task, task_id)
        assert (task.status, task.resolution) == ("closed", NOTES[lang])
        assert task.customer_id == customer_id and task.source_type == "survey_response"
        actions = session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.object_type == "task", AuditEvent.object_id == str(task_id))
            .order_by(AuditEvent.id)
        ).all()
        assert actions == ["task.open", "task.close"]


@pytest.mark.browser
def test_the_task_pages_fit_a_phone(visit, server):
    v = visit(lang="zh-CN", viewport=PHONE)
    v.login("manager", target="/tasks")
    page = v.page
    width = page.viewport_size["width"]
    # The closed tasks of the journeys above, then the dashboard's task counts.
    assert page.goto("/tasks?view=all&status=closed").status == 200
    assert page.locator("[data-testid=task]").count() == len(LANGS)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    v.shot("loop_tasks_closed")
    assert page.goto("/").status == 200
    assert page.get_by_test_id("dashboard-tasks").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    v.shot("loop_dashboard")
