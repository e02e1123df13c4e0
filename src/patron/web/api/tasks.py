"""Follow-up tasks: the inbox as JSON, opening one by hand, reassigning, closing with a note.

Everyone who signs in reads tasks (``tasks.read``; analysts with the customer's personal
data masked), staff open and close them (``tasks.write``: their own and unassigned ones),
managers also reassign and close anyone's (``tasks.assign``). Times are UTC.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict

from patron.crm.services import permissions, tasks
from patron.crm.tables import User
from patron.web.deps import SessionDep, require
from patron.web.schemas import MAX_ID, Id, IsoTime, Page, Text

__all__ = ["router", "TaskCreate", "TaskPatch", "TaskClose", "TaskOut"]

router = APIRouter(tags=["tasks"])

Reader = Annotated[User, Depends(require("tasks.read"))]
Writer = Annotated[User, Depends(require("tasks.write"))]
Assigner = Annotated[User, Depends(require("tasks.assign"))]
TaskId = Annotated[int, Path(ge=1, le=MAX_ID)]
TaskKind = Literal["detractor", "complaint", "personal_call", "manual"]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TaskCreate(_Input):
    """A task opened by hand; the owner defaults to the customer's (else the opener)."""

    customer_id: Id
    kind: TaskKind = "manual"
    title: Text(200) = ""
    detail: Text(4000) = ""
    owner_id: Id | None = None
    due_at: IsoTime | None = None


class TaskPatch(_Input):
    """Give the task to another member of staff (managers)."""

    owner_id: Id


class TaskClose(_Input):
    """What was done: a task is closed only with this note."""

    resolution: Text(4000)


class TaskOut(BaseModel):
    """A task as the inbox shows it; ``overdue`` is judged when the answer is made."""

    model_config = ConfigDict(extra="allow")

    id: int
    customer_id: int
    customer_name: str = ""
    kind: str
    status: Literal["open", "closed"]
    title: str = ""
    detail: str = ""
    source_type: str | None = None
    source_id: str | None = None
    owner_id: int | None = None
    owner_name: str | None = None
    due_at: dt.datetime
    overdue: bool
    created_at: dt.datetime
    closed_at: dt.datetime | None = None
    closed_by_id: int | None = None
    resolution: str = ""


def _out(task: dict[str, Any], user: User) -> dict[str, Any]:
    return tasks.task_view(task, mask=permissions.masks_personal_data(user))


@router.get("/tasks", response_model=Page[TaskOut])
def list_tasks(
    session: SessionDep,
    user: Reader,
    mine: Annotated[bool, Query(description="only the caller's tasks")] = False,
    overdue: Annotated[bool, Query(description="only open tasks past their due time")] = False,
    kind: TaskKind | None = None,
    owner: Annotated[int | None, Query(ge=1, le=MAX_ID, description="owner user id")] = None,
    unassigned: Annotated[bool, Query(description="only tasks nobody owns")] = False,
    status: Literal["open", "closed", "all"] = "open",
    customer: Annotated[int | None, Query(ge=1, le=MAX_ID, description="customer id")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    """Tasks matching every filter: open ones soonest due first, closed ones newest first."""
    rows, total = tasks.list_tasks(
        session,
        owner_id=user.id if mine else owner,
        unassigned=unassigned,
        status=None if status == "all" else status,
        kind=kind,
        overdue=overdue,
        customer_id=customer,
        limit=limit,
        offset=offset,
    )
    return {"items": [_out(row, user) for row in rows], "total": total}


@router.post("/tasks", response_model=TaskOut, status_code=201)
def open_task(session: SessionDep, user: Writer, body: TaskCreate) -> dict[str, Any]:
    """Open a task by hand (assigning it to someone else needs ``tasks.assign``)."""
    task = tasks.open_task(session, **body.model_dump(), actor=user)
    return _out(tasks.task_detail(session, task.id), user)


@router.get("/tasks/{task_id}", response_model=TaskOut)
def get_task(session: SessionDep, user: Reader, task_id: TaskId) -> dict[str, Any]:
    """One task."""
    return _out(tasks.task_detail(session, task_id), user)


@router.patch("/tasks/{task_id}", response_model=TaskOut)
def reassign(
    session: SessionDep, user: Assigner, task_id: TaskId, body: TaskPatch
) -> dict[str, Any]:
    """Reassign an open task (409 once it is closed)."""
    tasks.reassign_task(session, task_id, owner_id=body.owner_id, actor=user)
    return _out(tasks.task_detail(session, task_id), user)


@router.post("/tasks/{task_id}/close", response_model=TaskOut)
def close(session: SessionDep, user: Writer, task_id: TaskId, body: TaskClose) -> dict[str, Any]:
    """Close a task with ``{"resolution": "..."}`` (422 without one, 409 if already closed)."""
    tasks.close_task(session, task_id, resolution=body.resolution, actor=user)
    return _out(tasks.task_detail(session, task_id), user)
