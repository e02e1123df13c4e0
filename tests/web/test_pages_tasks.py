"""The task pages through a TestClient, on SQLite and PostgreSQL: the inbox (mine, overdue,
unassigned, by type), closing with a note, reassigning, the 360 panel and its form, the
dashboard counts, and analysts reading masked."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select
from tests.web.test_pages import csrf_of, login, seed_customers, seed_users, text_of

from patron.crm.db import session_scope
from patron.crm.services import tasks
from patron.crm.tables import Task
from patron.i18n import _


def t(key: str, lang: str = "en", **values) -> str:
    return _(f"pages.tasks.{key}", lang=lang, **values)


def seed(engine):
    ids = seed_users(engine)
    customers = seed_customers(engine, owner_id=ids["staff"])
    with session_scope(engine) as session:
        detractor = tasks.open_task(
            session,
            customer_id=customers["li"],
            kind="detractor",
            detail="NPS 3：送货太慢，请拨 13812345678",
            source_type="survey_response",
            source_id=7,
        )
        late = tasks.open_task(
            session,
            customer_id=customers["li"],
            kind="complaint",
            title="包装破损",
            due_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=5),
        )
        nobody = tasks.open_task(session, customer_id=customers["grace"], kind="detractor")
    return ids, customers, {"detractor": detractor.id, "late": late.id, "nobody": nobody.id}


def cards(html: str) -> dict[int, str]:
    """The task cards of a page: id -> the card's visible text."""
    found = re.findall(r'<article class="card task[^"]*" id="task-(\d+)".*?</article>', html, re.S)
    blocks = re.findall(r'(<article class="card task[^"]*" id="task-\d+".*?</article>)', html, re.S)
    return {int(i): text_of(block) for i, block in zip(found, blocks, strict=True)}


def test_the_inbox_shows_mine_first_with_the_overdue_flagged(client, engine):
    _ids, _customers, made = seed(engine)
    login(client, "staff")
    page = client.get("/tasks")
    assert page.status_code == 200
    shown = cards(page.text)
    assert list(shown) == [made["late"], made["detractor"]]
    assert t("overdue") in shown[made["late"]] and t("overdue") not in shown[made["detractor"]]
    assert "包装破损" in shown[made["late"]]
    assert "送货太慢" in shown[made["detractor"]] and "李娜" in shown[made["detractor"]]
    assert t("source_type.survey_response") in shown[made["detractor"]]
    # The other views.
    overdue = cards(client.get("/tasks?view=overdue").text)
    assert list(overdue) == [made["late"]]
    unassigned = cards(client.get("/tasks?view=unassigned").text)
    assert list(unassigned) == [made["nobody"]]
    by_kind = cards(client.get("/tasks?view=mine&kind=complaint").text)
    assert list(by_kind) == [made["late"]]
    # Staff cannot reassign: no such form.
    assert "/reassign" not in page.text
    # The navigation leads here.
    nav = re.search(r'<nav class="nav".*?</nav>', page.text, re.S).group(0)
    assert 'href="/tasks"' in nav


def test_a_task_closes_only_with_a_note(client, engine):
    _ids, _customers, made = seed(engine)
    login(client, "staff")
    page = client.get("/tasks?kind=detractor")
    token = csrf_of(page.text)
    refused = client.post(
        f"/tasks/{made['detractor']}/close",
        data={"csrf_token": token, "resolution": "   ", "next": "/tasks?kind=detractor"},
    )
    assert refused.status_code == 422
    assert _("tasks.resolution_required", lang="en") in refused.text
    assert 'aria-invalid="true"' in refused.text
    assert f'id="task-{made["detractor"]}"' in refused.text
    done = client.post(
        f"/tasks/{made['detractor']}/close",
        data={
            "csrf_token": token,
            "resolution": "已回电，送券致歉",
            "next": "/tasks?kind=detractor",
        },
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/tasks?kind=detractor&saved=closed"
    after = client.get(done.headers["location"])
    assert t("saved_closed") in after.text
    assert made["detractor"] not in cards(after.text)
    closed = cards(client.get("/tasks?status=closed").text)
    assert "已回电，送券致歉" in closed[made["detractor"]]
    with session_scope(engine) as session:
        task = session.get(Task, made["detractor"])
        assert task.status == "closed" and task.resolution == "已回电，送券致歉"
    # A form post without the session's token is refused.
    forged = client.post(f"/tasks/{made['late']}/close", data={"resolution": "x"})
    assert forged.status_code == 403


def test_staff_cannot_close_anothers_task_managers_reassign(client, engine):
    ids, _customers, made = seed(engine)
    login(client, "manager")
    page = client.get("/tasks?view=all")
    assert page.status_code == 200
    assert set(cards(page.text)) == set(made.values())
    assert f'action="/tasks/{made["nobody"]}/reassign"' in page.text
    moved = client.post(
        f"/tasks/{made['nobody']}/reassign",
        data={"csrf_token": csrf_of(page.text), "owner_id": str(ids["staff"]), "next": "/tasks"},
        follow_redirects=False,
    )
    assert moved.status_code == 303 and moved.headers["location"].endswith("saved=reassigned")
    with session_scope(engine) as session:
        assert session.get(Task, made["nobody"]).owner_id == ids["staff"]
    # Filtered by owner.
    theirs = cards(client.get(f"/tasks?view=all&owner={ids['staff']}").text)
    assert set(theirs) == set(made.values())


def test_the_dashboard_counts_open_and_overdue_tasks_per_owner(client, engine):
    ids, _customers, _made = seed(engine)
    login(client, "manager")
    page = client.get("/")
    assert page.status_code == 200
    table = re.search(r'data-testid="task-counts".*?</table>', page.text, re.S).group(0)
    rows = {
        owner: text_of(row).split()
        for owner, row in re.findall(r'<tr data-owner="(\d*)">(.*?)</tr>', table, re.S)
    }
    assert rows[str(ids["staff"])][-2:] == ["2", "1"]
    assert rows[""][-2:] == ["1", "0"]
    client.post("/logout", data={"csrf_token": csrf_of(page.text)})
    login(client, "staff")
    mine = client.get("/")
    assert 'data-testid="task-counts"' not in mine.text
    assert "My tasks: 2 open, 1 overdue" in text_of(mine.text)


def test_the_360_lists_the_customers_tasks_and_opens_one_by_hand(client, engine):
    _ids, customers, _made = seed(engine)
    login(client, "staff")
    page = client.get(f"/customers/{customers['li']}")
    panel = re.search(r'data-testid="customer-tasks".*?</section>', page.text, re.S).group(0)
    assert panel.count('data-testid="customer-task"') == 2
    assert "包装破损" in panel and t("overdue") in panel
    opened = client.post(
        "/tasks",
        data={
            "csrf_token": csrf_of(page.text),
            "customer_id": str(customers["li"]),
            "title": "邀请参加会员日",
            "detail": "周六到店",
            "due_in_hours": "6",
            "next": f"/customers/{customers['li']}",
        },
        follow_redirects=False,
    )
    assert opened.status_code == 303
    assert opened.headers["location"] == f"/customers/{customers['li']}?saved=task_opened#tasks"
    again = client.get(f"/customers/{customers['li']}?saved=task_opened")
    panel = re.search(r'data-testid="customer-tasks".*?</section>', again.text, re.S).group(0)
    assert "邀请参加会员日" in panel and t("saved_task_opened") in panel
    with session_scope(engine) as session:
        task = session.scalars(select(Task).where(Task.title == "邀请参加会员日")).one()
        assert task.kind == "manual" and task.created_by_id is not None
        hours = (task.due_at - task.created_at).total_seconds() / 3600
        assert 5.9 < hours < 6.1
    bad = client.post(
        "/tasks",
        data={"csrf_token": csrf_of(page.text), "customer_id": "abc", "title": "x"},
    )
    assert bad.status_code == 422


def test_analysts_read_the_inbox_masked_and_get_no_forms(client, engine):
    _ids, customers, made = seed(engine)
    login(client, "analyst")
    page = client.get("/tasks")
    assert page.status_code == 200
    shown = cards(page.text)
    assert set(shown) == set(made.values())  # analysts see all, they own none
    assert "李*" in shown[made["detractor"]] and "13812345678" not in page.text
    assert "138****5678" in shown[made["detractor"]]
    assert "/close" not in page.text and "/reassign" not in page.text
    panel = client.get(f"/customers/{customers['li']}").text
    assert 'data-testid="task-form"' not in panel
    token = csrf_of(page.text)
    refused = client.post(
        f"/tasks/{made['late']}/close", data={"csrf_token": token, "resolution": "x"}
    )
    assert refused.status_code == 403


def test_the_inbox_speaks_chinese(client, engine):
    seed(engine)
    login(client, "staff")
    page = client.get("/tasks", headers={"Accept-Language": "zh-CN"})
    text = text_of(page.text)
    assert t("title", "zh-CN") in text and t("kind.complaint", "zh-CN") in text
    assert t("overdue", "zh-CN") in text
