"""Follow-up tasks on SQLite and PostgreSQL: opening (once per source), service levels,
closing only with a note, reassigning, the inbox filters, the counts per owner, and the
personal-call tasks of a scoring run."""

from __future__ import annotations

import datetime as dt
import os
import threading

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

import patron
from patron.crm.db import session_factory
from patron.crm.services import tasks
from patron.crm.services.customers import create_customer
from patron.crm.services.errors import Conflict, Forbidden, Invalid, NotFound
from patron.crm.services.imports import import_file
from patron.crm.services.scoring import run_scoring
from patron.crm.services.task_levels import service_level_hours
from patron.crm.services.users import create_user
from patron.crm.tables import AuditEvent, Customer, ScoreSnapshot, Task
from patron.crm.tables.base import utcnow
from patron.errors import InputError
from patron.value.config import load_settings

HOUR = dt.timedelta(hours=1)


@pytest.fixture(autouse=True)
def _no_config(monkeypatch, tmp_path):
    """Service levels are the defaults unless a test writes a patron.toml."""
    monkeypatch.delenv("PATRON_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def people(session):
    made = {}
    for name, role in (
        ("wang", "staff"),
        ("zhao", "staff"),
        ("boss", "manager"),
        ("ana", "analyst"),
    ):
        made[name], _password = create_user(
            session, username=name, role=role, password="correct horse battery"
        )
    session.flush()
    return made


@pytest.fixture
def customer(session, people):
    return create_customer(session, actor=None, name="李娜", owner_id=people["wang"].id)


def audit_actions(session, task_id):
    return list(
        session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.object_type == "task", AuditEvent.object_id == str(task_id))
            .order_by(AuditEvent.id)
        )
    )


# -- opening --------------------------------------------------------------------------------


def test_a_detractor_task_goes_to_the_owner_due_after_the_service_level(session, customer):
    before = utcnow()
    task = tasks.open_task(
        session,
        customer_id=customer.id,
        kind="detractor",
        detail="NPS 3: 送货太慢",
        source_type="survey_response",
        source_id=17,
    )
    after = utcnow()
    assert task.status == "open" and task.owner_id == customer.owner_id
    assert before + 48 * HOUR <= task.due_at <= after + 48 * HOUR
    assert (task.source_type, task.source_id) == ("survey_response", "17")
    assert audit_actions(session, task.id) == ["task.open"]
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "task.open")).one()
    assert event.after["detail"] == "NPS 3: 送货太慢" and event.actor_id is None


def test_one_open_task_per_customer_kind_and_source(session, customer, people):
    first = tasks.open_task(
        session, customer_id=customer.id, kind="detractor", source_type="survey", source_id=1
    )
    again = tasks.open_task(
        session, customer_id=customer.id, kind="detractor", source_type="survey", source_id=1
    )
    other = tasks.open_task(
        session, customer_id=customer.id, kind="detractor", source_type="survey", source_id=2
    )
    complaint = tasks.open_task(
        session, customer_id=customer.id, kind="complaint", source_type="survey", source_id=1
    )
    assert again.id == first.id
    assert len({first.id, other.id, complaint.id}) == 3
    # Tasks opened by hand without a source are all kept.
    manual = [
        tasks.open_task(session, customer_id=customer.id, kind="manual", title=f"回访 {i}")
        for i in range(2)
    ]
    assert manual[0].id != manual[1].id
    assert audit_actions(session, first.id) == ["task.open"]
    # Once closed, the same source may open a new task.
    tasks.close_task(session, first.id, resolution="已回电", actor=people["wang"])
    reopened = tasks.open_task(
        session, customer_id=customer.id, kind="detractor", source_type="survey", source_id=1
    )
    assert reopened.id != first.id and reopened.status == "open"


def test_opening_the_same_task_at_once_from_two_connections_makes_one(engine, session, customer):
    session.commit()
    barrier = threading.Barrier(4)
    ids, errors = [], []

    def worker():
        try:
            with session_factory(engine)() as own:
                barrier.wait()
                task = tasks.open_task(
                    own,
                    customer_id=customer.id,
                    kind="complaint",
                    source_type="feedback",
                    source_id=99,
                )
                own.commit()
                ids.append(task.id)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(ids)) == 1
    count = session.scalar(select(func.count()).select_from(Task).where(Task.kind == "complaint"))
    assert count == 1


def test_owners_merged_customers_and_refusals(session, customer, people):
    # A merged customer's id opens on the survivor.
    other = create_customer(session, actor=None, name="旧档")
    session.flush()
    other.merged_into_id = customer.id
    session.flush()
    task = tasks.open_task(session, customer_id=other.id, kind="manual", actor=people["wang"])
    assert task.customer_id == customer.id
    # A customer without an owner: a system task is unassigned, a manual one is the opener's.
    orphan = create_customer(session, actor=None, name="无主")
    session.flush()
    assert tasks.open_task(session, customer_id=orphan.id, kind="detractor").owner_id is None
    mine = tasks.open_task(session, customer_id=orphan.id, kind="manual", actor=people["zhao"])
    assert mine.owner_id == people["zhao"].id
    # The customer's owner has left: the task waits, unassigned.
    people["wang"].active = False
    session.flush()
    assert tasks.open_task(session, customer_id=customer.id, kind="complaint").owner_id is None
    with pytest.raises(Invalid) as bad:
        tasks.open_task(session, customer_id=customer.id, kind="birthday")
    assert bad.value.field == "kind"
    with pytest.raises(Invalid) as bad:
        tasks.open_task(
            session, customer_id=customer.id, kind="manual", due_at=dt.datetime(2030, 1, 1)
        )
    assert bad.value.field == "due_at"
    with pytest.raises(Invalid) as bad:
        tasks.open_task(session, customer_id=customer.id, kind="manual", owner_id=people["wang"].id)
    assert bad.value.field == "owner_id"  # disabled
    with pytest.raises(Invalid):
        tasks.open_task(session, customer_id=customer.id, kind="manual", title="x" * 201)
    with pytest.raises(NotFound):
        tasks.open_task(session, customer_id=10**9, kind="manual")
    # Staff open tasks for themselves; assigning to someone else is a manager's call.
    with pytest.raises(Forbidden):
        tasks.open_task(
            session,
            customer_id=customer.id,
            kind="manual",
            owner_id=people["boss"].id,
            actor=people["zhao"],
        )
    given = tasks.open_task(
        session,
        customer_id=customer.id,
        kind="manual",
        owner_id=people["zhao"].id,
        actor=people["boss"],
    )
    assert given.owner_id == people["zhao"].id and given.created_by_id == people["boss"].id


# -- service levels ---------------------------------------------------------------------------


def test_service_levels_come_from_patron_toml(session, customer, tmp_path, monkeypatch):
    config = tmp_path / "shop.toml"
    config.write_text(
        "[analyze]\nhorizon = '6M'\n\n[tasks.service_level_hours]\ndetractor = 4\n"
        "complaint = 1.5\n",
        "utf-8",
    )
    monkeypatch.setenv("PATRON_CONFIG", str(config))
    hours = service_level_hours()
    assert hours["detractor"] == 4 and hours["complaint"] == 1.5
    assert hours["personal_call"] == 72  # left out: the default
    before = utcnow()
    task = tasks.open_task(session, customer_id=customer.id, kind="detractor")
    assert before + 4 * HOUR <= task.due_at <= utcnow() + 4 * HOUR
    # The analyze settings read the same file without tripping over [tasks].
    assert load_settings(config).horizon == "6M"
    # A file changed on disk is read again.
    config.write_text("[tasks.service_level_hours]\ndetractor = 8\n", "utf-8")
    os.utime(config, (1, 1))
    assert service_level_hours()["detractor"] == 8
    # ./patron.toml is used when PATRON_CONFIG is not set.
    monkeypatch.delenv("PATRON_CONFIG")
    (tmp_path / "patron.toml").write_text("[tasks.service_level_hours]\nmanual = 2\n", "utf-8")
    assert service_level_hours()["manual"] == 2


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[tasks.service_level_hours]\nbirthday = 3\n", "tasks.service_level_hours.birthday"),
        ("[tasks.service_level_hours]\ndetractor = 0\n", "tasks.service_level_hours.detractor"),
        ("[tasks.service_level_hours]\ndetractor = '48h'\n", "tasks.service_level_hours.detractor"),
        ("[tasks]\nservice_levels = 3\n", "tasks.service_levels"),
    ],
)
def test_a_bad_service_level_names_the_file_and_key(tmp_path, text, key):
    config = tmp_path / f"bad{abs(hash(text))}.toml"
    config.write_text(text, "utf-8")
    with pytest.raises(InputError) as bad:
        service_level_hours(config)
    assert bad.value.column == key and bad.value.file == str(config)
    assert key in str(bad.value)


def test_a_missing_or_broken_config_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="nowhere.toml"):
        service_level_hours(tmp_path / "nowhere.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[tasks\n", "utf-8")
    with pytest.raises(InputError, match="broken.toml"):
        service_level_hours(broken)


# -- closing and reassigning ------------------------------------------------------------------


def test_a_task_closes_only_with_a_note(session, customer, people):
    task = tasks.open_task(session, customer_id=customer.id, kind="complaint")
    for empty in ("", "   \n"):
        with pytest.raises(Invalid) as bad:
            tasks.close_task(session, task.id, resolution=empty, actor=people["wang"])
        assert bad.value.field == "resolution"
    assert task.status == "open"
    closed = tasks.close_task(
        session, task.id, resolution="  已致电道歉并补发  ", actor=people["wang"]
    )
    assert closed.status == "closed" and closed.resolution == "已致电道歉并补发"
    assert closed.closed_by_id == people["wang"].id and closed.closed_at is not None
    with pytest.raises(Conflict):
        tasks.close_task(session, task.id, resolution="again", actor=people["wang"])
    assert audit_actions(session, task.id) == ["task.open", "task.close"]
    with pytest.raises(NotFound):
        tasks.close_task(session, 10**9, resolution="x", actor=people["wang"])


def test_the_database_refuses_a_closed_task_without_a_resolution(session, customer):
    task = tasks.open_task(session, customer_id=customer.id, kind="complaint")
    session.commit()
    with pytest.raises(IntegrityError):
        session.execute(
            update(Task).where(Task.id == task.id).values(status="closed", closed_at=utcnow())
        )
    session.rollback()


def test_staff_close_their_own_tasks_managers_any(session, customer, people):
    task = tasks.open_task(session, customer_id=customer.id, kind="detractor")
    assert task.owner_id == people["wang"].id
    with pytest.raises(Forbidden):
        tasks.close_task(session, task.id, resolution="not mine", actor=people["zhao"])
    tasks.close_task(session, task.id, resolution="经理代为回访", actor=people["boss"])
    assert task.closed_by_id == people["boss"].id


def test_managers_reassign_open_tasks(session, customer, people):
    task = tasks.open_task(session, customer_id=customer.id, kind="detractor")
    with pytest.raises(Forbidden):
        tasks.reassign_task(session, task.id, owner_id=people["zhao"].id, actor=people["wang"])
    with pytest.raises(Invalid):
        tasks.reassign_task(session, task.id, owner_id=10**9, actor=people["boss"])
    tasks.reassign_task(session, task.id, owner_id=people["zhao"].id, actor=people["boss"])
    assert task.owner_id == people["zhao"].id
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "task.reassign")).one()
    assert event.before == {"owner_id": people["wang"].id}
    assert event.after == {"owner_id": people["zhao"].id}
    # The new owner may now close it.
    tasks.close_task(session, task.id, resolution="done", actor=people["zhao"])
    with pytest.raises(Conflict):
        tasks.reassign_task(session, task.id, owner_id=people["wang"].id, actor=people["boss"])


# -- reading ----------------------------------------------------------------------------------


def _three_tasks(session, customer, people):
    now = utcnow()
    late = tasks.open_task(
        session, customer_id=customer.id, kind="detractor", due_at=now - 2 * HOUR
    )
    soon = tasks.open_task(session, customer_id=customer.id, kind="complaint")
    other = tasks.open_task(
        session,
        customer_id=customer.id,
        kind="manual",
        owner_id=people["zhao"].id,
        actor=people["boss"],
        due_at=now - HOUR,
    )
    done = tasks.open_task(session, customer_id=customer.id, kind="manual", actor=people["wang"])
    tasks.close_task(session, done.id, resolution="ok", actor=people["wang"])
    unassigned = tasks.open_task(
        session, customer_id=create_customer(session, actor=None, name="x").id, kind="detractor"
    )
    return late, soon, other, done, unassigned


def test_the_inbox_filters(session, customer, people):
    late, soon, other, done, unassigned = _three_tasks(session, customer, people)
    wang = people["wang"].id
    rows, total = tasks.list_tasks(session, owner_id=wang)
    assert [r["id"] for r in rows] == [late.id, soon.id] and total == 2
    assert rows[0]["overdue"] and not rows[1]["overdue"]
    assert rows[0]["customer_name"] == "李娜" and rows[0]["owner_name"] == "wang"
    rows, total = tasks.list_tasks(session, overdue=True)
    assert {r["id"] for r in rows} == {late.id, other.id} and total == 2
    rows, _total = tasks.list_tasks(session, kind="manual", status=None)
    assert [r["id"] for r in rows] == [other.id, done.id]
    rows, _total = tasks.list_tasks(session, status="closed")
    assert [r["id"] for r in rows] == [done.id]
    assert rows[0]["resolution"] == "ok" and rows[0]["closed_by_name"] == "wang"
    rows, _total = tasks.list_tasks(session, unassigned=True)
    assert [r["id"] for r in rows] == [unassigned.id]
    rows, total = tasks.list_tasks(session, status=None, limit=2, offset=1)
    assert len(rows) == 2 and total == 5
    with pytest.raises(Invalid):
        tasks.list_tasks(session, status="pending")
    with pytest.raises(Invalid):
        tasks.list_tasks(session, kind="birthday")
    # An hour later, the task due soon is not overdue yet; in three days it is.
    later = utcnow() + dt.timedelta(days=3)
    rows, _total = tasks.list_tasks(session, owner_id=wang, overdue=True, now=later)
    assert {r["id"] for r in rows} == {late.id, soon.id}


def test_counts_per_owner_for_the_dashboard(session, customer, people):
    _three_tasks(session, customer, people)
    counts = tasks.owner_counts(session)
    assert counts == [
        {"owner_id": people["wang"].id, "owner": "wang", "open": 2, "overdue": 1},
        {"owner_id": people["zhao"].id, "owner": "zhao", "open": 1, "overdue": 1},
        {"owner_id": None, "owner": None, "open": 1, "overdue": 0},
    ]


def test_the_customer_panel_and_masking(session, customer, people):
    late, soon, _other, done, _unassigned = _three_tasks(session, customer, people)
    tasks.open_task(
        session,
        customer_id=customer.id,
        kind="manual",
        detail="请拨 13812345678 或 lina@example.com",
        actor=people["wang"],
    )
    panel = tasks.customer_tasks(session, customer.id)
    assert [t["id"] for t in panel["open"]][:2] == [late.id, _other.id]
    assert len(panel["open"]) == 4 and panel["closed_total"] == 1
    assert [t["id"] for t in panel["closed"]] == [done.id]
    shown = [tasks.task_view(t, mask=True) for t in panel["open"]]
    assert all(t["customer_name"] == "李*" for t in shown)
    assert "13812345678" not in str(shown) and "lina@" not in str(shown)
    assert "138****5678" in str(shown)
    assert tasks.task_view(panel["open"][0], mask=False) is panel["open"][0]


# -- a scoring run's personal calls -------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory):
    return patron.datasets.demo_shop(
        tmp_path_factory.mktemp("demo") / "shop.csv", customers=120, seed=5
    )


def test_a_scoring_run_opens_a_personal_call_for_each_customer_to_call(
    session, people, demo_file, tmp_path, monkeypatch
):
    import_file(session, demo_file)
    owner = people["wang"]
    session.execute(update(Customer).values(owner_id=owner.id))
    session.commit()
    config = tmp_path / "patron.toml"
    config.write_text(
        "[[playbook]]\ngrade = 'top'\naction = 'personal_call'\n\n"
        "[[playbook]]\naction = 'nurture'\n\n"
        "[tasks.service_level_hours]\npersonal_call = 24\n",
        "utf-8",
    )
    monkeypatch.setenv("PATRON_CONFIG", str(config))
    before = utcnow()
    run = run_scoring(session, model="bgnbd", config=config, actor=people["boss"])
    session.commit()
    assert run.status == "done"
    to_call = set(
        session.scalars(
            select(ScoreSnapshot.customer_id).where(
                ScoreSnapshot.run_id == run.id, ScoreSnapshot.next_best_action == "personal_call"
            )
        )
    )
    assert 0 < len(to_call) < run.customers
    opened = session.scalars(select(Task).where(Task.kind == "personal_call")).all()
    assert {t.customer_id for t in opened} == to_call
    assert all(t.owner_id == owner.id and t.source_id == str(run.id) for t in opened)
    assert all(before + 24 * HOUR <= t.due_at <= utcnow() + 24 * HOUR for t in opened)
    assert all(t.created_by_id == people["boss"].id for t in opened)
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "task.open")).all()
    assert {e.object_id for e in events} == {str(t.id) for t in opened}
    assert all(e.actor_name == "boss" and e.after["kind"] == "personal_call" for e in events)

    # The next run: customers whose call is still open get no second task; a closed one does.
    first = opened[0]
    tasks.close_task(session, first.id, resolution="已致电", actor=owner)
    session.commit()
    again = run_scoring(session, model="bgnbd", config=config)
    session.commit()
    open_calls = session.scalars(
        select(Task).where(Task.kind == "personal_call", Task.status == "open")
    ).all()
    assert len(open_calls) == len(to_call)
    reopened = [t for t in open_calls if t.source_id == str(again.id)]
    assert [t.customer_id for t in reopened] == [first.customer_id]
    assert tasks.open_for_scoring_run(session, again) == 0
