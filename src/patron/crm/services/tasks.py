"""Follow-up tasks: every unhappy customer becomes work that someone owns and must close.

A detractor's survey answer, a negative complaint or a scoring run's personal-call action
opens a task (:func:`open_task`) for the customer's owner, due after the service level of
its kind (:mod:`patron.crm.services.task_levels`). A task closes only with a note saying
what was done (:func:`close_task`); the database refuses a closed task without one too.

Opening is idempotent per customer, kind and source: the survey answer that is processed
twice, or two workers racing on it, still make one open task. Every change is audited in
the transaction that makes it.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, insert, select
from sqlalchemy.exc import IntegrityError

from patron.crm.services import audit, permissions
from patron.crm.services.customers import get_customer
from patron.crm.services.errors import Conflict, Forbidden, Invalid, NotFound
from patron.crm.services.task_levels import service_level_hours
from patron.crm.services.task_lists import (
    customer_panel,
    customer_tasks,
    dashboard_tasks,
    list_tasks,
    owner_counts,
    task_detail,
    task_view,
)
from patron.crm.tables import TASK_KINDS, AuditEvent, Customer, ScoreSnapshot, Task, User
from patron.crm.tables.base import utcnow
from patron.i18n import _

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from patron.crm.tables import ScoringRun

__all__ = [
    "TITLE_LENGTH",
    "TEXT_LENGTH",
    "open_task",
    "close_task",
    "reassign_task",
    "get_task",
    "open_for_scoring_run",
    "list_tasks",
    "owner_counts",
    "customer_tasks",
    "task_view",
    "task_detail",
    "customer_panel",
    "dashboard_tasks",
]

TITLE_LENGTH = 200
#: Details and resolutions are what was said and done, not documents.
TEXT_LENGTH = 4000


def open_task(
    session: Session,
    *,
    customer_id: int,
    kind: str,
    title: str = "",
    detail: str = "",
    source_type: str | None = None,
    source_id: object = None,
    owner_id: int | None = None,
    due_at: dt.datetime | None = None,
    actor: User | None = None,
) -> Task:
    """Open a follow-up task, or return the open one for the same customer, kind and source.

    Parameters
    ----------
    customer_id
        The customer (a merged id opens on its survivor).
    kind
        One of :data:`~patron.crm.tables.TASK_KINDS`.
    title, detail
        What to do and why; an empty title is shown as the kind's name, in the reader's
        language.
    source_type, source_id
        What opened it (``"survey_response"``, ``"feedback"``, ``"scoring_run"``...). While a
        task is open, a second call with the same customer, kind and source returns it
        unchanged. A ``manual`` task without a source is never merged with another.
    owner_id
        Who must act; by default the customer's owner (unassigned when there is none).
    due_at
        An aware datetime; by default now plus the service level of ``kind``.
    actor
        Who opened it (``None`` for the system: a survey answer, a scoring run).

    Raises
    ------
    NotFound
        No such customer.
    Invalid
        An unknown kind, an unknown or disabled owner, text too long, a naive ``due_at``.
    """
    if kind not in TASK_KINDS:
        raise Invalid(_("tasks.bad_kind", value=kind, allowed=", ".join(TASK_KINDS)), field="kind")
    title = _text(title, "title", TITLE_LENGTH)
    detail = _text(detail, "detail", TEXT_LENGTH)
    customer = get_customer(session, customer_id)
    source = None if source_id is None else str(source_id)[:64]
    key = _open_key(customer.id, kind, source_type, source)
    if key is not None:
        existing = session.scalar(select(Task).where(Task.open_key == key))
        if existing is not None:
            return existing
    if owner_id is not None:
        owner = _owner(session, owner_id)
        if actor is not None and owner.id != actor.id:
            _require_assign(actor)
    else:
        owner = session.get(User, customer.owner_id) if customer.owner_id else None
        if owner is not None and not owner.active:
            owner = None  # the customer's owner has left: the task waits for a manager
        if owner is None and kind == "manual" and actor is not None:
            owner = actor  # who opens a task by hand for nobody's customer keeps it
    now = utcnow()
    task = Task(
        customer_id=customer.id,
        kind=kind,
        status="open",
        title=title,
        detail=detail,
        source_type=(source_type or None) and source_type[:32],
        source_id=source,
        open_key=key,
        owner_id=owner.id if owner is not None else None,
        due_at=_due_at(due_at, kind, now),
        created_by_id=actor.id if actor is not None else None,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(task)
    except IntegrityError:
        # Another transaction opened the same task between our read and our write.
        existing = session.scalar(select(Task).where(Task.open_key == key)) if key else None
        if existing is None:
            raise
        return existing
    audit.record(
        session,
        actor=actor,
        action="task.open",
        object_type="task",
        object_id=task.id,
        after=_values(task),
    )
    return task


def close_task(session: Session, task_id: int, *, resolution: str, actor: User | None) -> Task:
    """Close a task with a note of what was done; audited as ``task.close``.

    Raises
    ------
    NotFound
        No such task.
    Invalid
        The note is empty (or only spaces) or too long.
    Conflict
        The task is already closed.
    Forbidden
        ``actor`` may not close it: staff close their own tasks and unassigned ones,
        managers any (``tasks.assign``).
    """
    task = get_task(session, task_id, for_update=True)
    if actor is not None and task.owner_id not in (None, actor.id):
        _require_assign(actor)
    note = _text(resolution, "resolution", TEXT_LENGTH)
    if not note:
        raise Invalid(_("tasks.resolution_required"), field="resolution")
    if task.status != "open":
        raise Conflict(_("tasks.already_closed", id=task.id), code="task_closed")
    now = utcnow()
    task.status = "closed"
    task.resolution = note
    task.closed_at = now
    task.closed_by_id = actor.id if actor is not None else None
    task.open_key = None
    task.updated_at = now
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="task.close",
        object_type="task",
        object_id=task.id,
        before={"status": "open"},
        after={"status": "closed", "resolution": note, "closed_at": now},
    )
    return task


def reassign_task(session: Session, task_id: int, *, owner_id: int, actor: User | None) -> Task:
    """Give an open task to another member of staff; audited as ``task.reassign``.

    Raises
    ------
    NotFound
        No such task.
    Invalid
        No active user has ``owner_id``.
    Conflict
        The task is closed (there is nothing left to do for anyone).
    Forbidden
        ``actor`` does not hold ``tasks.assign`` (managers and admins do).
    """
    if actor is not None:
        _require_assign(actor)
    task = get_task(session, task_id, for_update=True)
    owner = _owner(session, owner_id)
    if task.status != "open":
        raise Conflict(_("tasks.already_closed", id=task.id), code="task_closed")
    if task.owner_id == owner.id:
        return task
    before = task.owner_id
    task.owner_id = owner.id
    task.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="task.reassign",
        object_type="task",
        object_id=task.id,
        before={"owner_id": before},
        after={"owner_id": owner.id},
    )
    return task


def open_for_scoring_run(session: Session, run: ScoringRun, *, actor: User | None = None) -> int:
    """Open a ``personal_call`` task for each customer the run says to call; returns how many.

    The playbook's "personal call" (by default a top-grade customer turning at-risk) is
    work for a person, so it lands in the owner's inbox like a detractor does. A customer
    who still has an open personal-call task (from an earlier run) gets no second one.
    Each task is audited as ``task.open``.

    Written as two bulk statements rather than one :func:`open_task` per customer: a run
    over a million customers may ask for tens of thousands of calls.
    """
    if run.status != "done":
        return 0
    already = exists().where(
        Task.customer_id == ScoreSnapshot.customer_id,
        Task.kind == "personal_call",
        Task.status == "open",
    )
    rows = session.execute(
        select(ScoreSnapshot.customer_id, Customer.owner_id, User.active)
        .join(Customer, Customer.id == ScoreSnapshot.customer_id)
        .outerjoin(User, User.id == Customer.owner_id)
        .where(
            ScoreSnapshot.run_id == run.id,
            ScoreSnapshot.next_best_action == "personal_call",
            Customer.merged_into_id.is_(None),
            ~already,
        )
        .order_by(ScoreSnapshot.customer_id)
    ).all()
    if not rows:
        return 0
    now = utcnow()
    due = now + dt.timedelta(hours=service_level_hours()["personal_call"])
    values = [
        {
            "customer_id": customer_id,
            "kind": "personal_call",
            "status": "open",
            "title": "",
            "detail": "",
            "source_type": "scoring_run",
            "source_id": str(run.id),
            "open_key": _open_key(customer_id, "personal_call", "scoring_run", str(run.id)),
            "owner_id": owner_id if active else None,
            "due_at": due,
            "created_by_id": actor.id if actor is not None else None,
            "created_at": now,
            "updated_at": now,
            "resolution": "",
        }
        for customer_id, owner_id, active in rows
    ]
    ids = session.scalars(insert(Task).returning(Task.id, sort_by_parameter_order=True), values)
    events = [
        {
            "at": now,
            "actor_id": actor.id if actor is not None else None,
            "actor_name": actor.username if actor is not None else "",
            "action": "task.open",
            "object_type": "task",
            "object_id": str(task_id),
            "after": audit.jsonable(
                {k: row[k] for k in ("customer_id", "kind", "source_type", "source_id")}
                | {"owner_id": row["owner_id"], "due_at": due}
            ),
        }
        for task_id, row in zip(ids.all(), values, strict=True)
    ]
    session.execute(insert(AuditEvent), events)
    return len(values)


def get_task(session: Session, task_id: int, *, for_update: bool = False) -> Task:
    """The task with this id (row-locked on PostgreSQL when ``for_update``).

    Raises
    ------
    NotFound
        No task has this id.
    """
    if isinstance(task_id, bool) or not isinstance(task_id, int):
        raise NotFound(_("tasks.not_found", id=task_id), field="task_id")
    query = select(Task).where(Task.id == task_id)
    if for_update:
        query = query.with_for_update()
    task = session.scalar(query)
    if task is None:
        raise NotFound(_("tasks.not_found", id=task_id), field="task_id")
    return task


def _open_key(
    customer_id: int, kind: str, source_type: str | None, source: str | None
) -> str | None:
    if kind == "manual" and not source_type:
        return None
    return f"{customer_id}:{kind}:{(source_type or '')[:32]}:{source or ''}"


def _require_assign(actor: User) -> None:
    if not permissions.can(actor, "tasks.assign"):
        raise Forbidden(_("tasks.not_yours"), code="forbidden")


def _owner(session: Session, owner_id: int) -> User:
    owner = session.get(User, owner_id) if isinstance(owner_id, int) else None
    if owner is None or not owner.active:
        raise Invalid(_("tasks.bad_owner", id=owner_id), field="owner_id")
    return owner


def _due_at(due_at: dt.datetime | None, kind: str, now: dt.datetime) -> dt.datetime:
    if due_at is None:
        return now + dt.timedelta(hours=service_level_hours()[kind])
    if not isinstance(due_at, dt.datetime) or due_at.tzinfo is None:
        raise Invalid(_("tasks.bad_due_at", value=due_at), field="due_at")
    return due_at.astimezone(dt.UTC)


def _text(value: object, field: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Invalid(_("tasks.bad_text", field=field), field=field)
    value = value.strip()
    if len(value) > limit:
        raise Invalid(_("tasks.too_long", field=field, max=limit), field=field)
    return value


def _values(task: Task) -> dict[str, Any]:
    return {
        "customer_id": task.customer_id,
        "kind": task.kind,
        "title": task.title,
        "detail": task.detail,
        "source_type": task.source_type,
        "source_id": task.source_id,
        "owner_id": task.owner_id,
        "due_at": task.due_at,
    }
