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

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from patron.crm.services import audit
from patron.crm.services.customers import get_customer
from patron.crm.services.errors import Conflict, Invalid, NotFound
from patron.crm.services.task_levels import service_level_hours
from patron.crm.tables import TASK_KINDS, Task, User
from patron.crm.tables.base import utcnow
from patron.i18n import _

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "TITLE_LENGTH",
    "TEXT_LENGTH",
    "open_task",
    "close_task",
    "get_task",
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
    else:
        owner = session.get(User, customer.owner_id) if customer.owner_id else None
        if owner is not None and not owner.active:
            owner = None  # the customer's owner has left: the task waits for a manager
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
    """
    task = get_task(session, task_id, for_update=True)
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
