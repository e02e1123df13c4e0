"""Reading follow-up tasks: the inbox, the 360's panel and the managers' counts per owner.

Rows leave here as plain dicts with what a page or the API shows: the task's fields, the
customer's name, the owner's name and whether the task is overdue (open past its due
time, judged at ``now``). Masking for analysts is :func:`task_view`'s job, applied by the
callers as for customers.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import aliased

from patron.crm.contacts import mask_name
from patron.crm.services import permissions
from patron.crm.services.errors import Invalid, NotFound
from patron.crm.services.views import mask_text
from patron.crm.tables import TASK_KINDS, TASK_STATUSES, Customer, Task, User
from patron.crm.tables.base import utcnow
from patron.i18n import _

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "list_tasks",
    "owner_counts",
    "customer_tasks",
    "task_view",
    "task_row",
    "task_detail",
    "customer_panel",
    "dashboard_tasks",
]

_Owner = aliased(User, name="owner")
_Closer = aliased(User, name="closer")


def _query():
    return (
        select(
            Task,
            Customer.name.label("customer_name"),
            _Owner.username.label("owner_username"),
            _Owner.display_name.label("owner_display_name"),
            _Closer.username.label("closer_username"),
        )
        .join(Customer, Customer.id == Task.customer_id)
        .outerjoin(_Owner, _Owner.id == Task.owner_id)
        .outerjoin(_Closer, _Closer.id == Task.closed_by_id)
    )


def task_row(row: Any, now: dt.datetime | None = None) -> dict[str, Any]:
    """One result row of :func:`_query` as a dict, with ``overdue`` judged at ``now``."""
    task: Task = row[0]
    now = now or utcnow()
    return {
        "id": task.id,
        "customer_id": task.customer_id,
        "customer_name": row.customer_name or "",
        "kind": task.kind,
        "status": task.status,
        "title": task.title,
        "detail": task.detail,
        "source_type": task.source_type,
        "source_id": task.source_id,
        "owner_id": task.owner_id,
        "owner_name": row.owner_display_name or row.owner_username,
        "due_at": task.due_at,
        "overdue": task.status == "open" and task.due_at < now,
        "created_by_id": task.created_by_id,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "closed_at": task.closed_at,
        "closed_by_id": task.closed_by_id,
        "closed_by_name": row.closer_username,
        "resolution": task.resolution,
    }


def task_view(task: dict[str, Any], *, mask: bool) -> dict[str, Any]:
    """``task`` as a user may see it: whole, or with the customer's personal data masked.

    Details and resolutions are staff's free text, where phone numbers and emails are
    typed too, so they are masked like touchpoint notes.

    >>> task_view({"customer_name": "李娜", "detail": "call 13812345678", "resolution": ""},
    ...           mask=True)
    {'customer_name': '李*', 'detail': 'call 138****5678', 'resolution': ''}
    """
    if not mask:
        return task
    masked = dict(task)
    masked["customer_name"] = mask_name(task.get("customer_name")) or ""
    for key in ("title", "detail", "resolution"):
        if key in masked:
            masked[key] = mask_text(masked[key])
    return masked


def task_detail(session: Session, task_id: int, *, now: dt.datetime | None = None) -> dict:
    """One task as :func:`list_tasks` shows it.

    Raises
    ------
    NotFound
        No task has this id.
    """
    row = session.execute(_query().where(Task.id == task_id)).first()
    if row is None:
        raise NotFound(_("tasks.not_found", id=task_id), field="task_id")
    return task_row(row, now)


def list_tasks(
    session: Session,
    *,
    owner_id: int | None = None,
    unassigned: bool = False,
    status: str | None = "open",
    kind: str | None = None,
    overdue: bool = False,
    customer_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
    now: dt.datetime | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Tasks matching every filter, and how many match in all.

    Open tasks come soonest-due first (the overdue at the top); closed ones newest first.

    Parameters
    ----------
    owner_id, unassigned
        One owner's tasks, or (``unassigned``) those nobody owns.
    status
        ``"open"``, ``"closed"`` or ``None`` for both.
    kind
        One of :data:`~patron.crm.tables.TASK_KINDS`.
    overdue
        Only open tasks past their due time at ``now``.

    Raises
    ------
    Invalid
        An unknown status or kind.
    """
    if status is not None and status not in TASK_STATUSES:
        raise Invalid(
            _("tasks.bad_status", value=status, allowed=", ".join(TASK_STATUSES)),
            field="status",
        )
    if kind is not None and kind not in TASK_KINDS:
        raise Invalid(_("tasks.bad_kind", value=kind, allowed=", ".join(TASK_KINDS)), field="kind")
    now = now or utcnow()
    where = []
    if owner_id is not None:
        where.append(Task.owner_id == owner_id)
    if unassigned:
        where.append(Task.owner_id.is_(None))
    if overdue:
        where += [Task.status == "open", Task.due_at < now]
    elif status is not None:
        where.append(Task.status == status)
    if kind is not None:
        where.append(Task.kind == kind)
    if customer_id is not None:
        where.append(Task.customer_id == customer_id)
    total = session.scalar(select(func.count()).select_from(Task).where(*where))
    if status == "closed" and not overdue:
        order = (Task.closed_at.desc(), Task.id.desc())
    else:
        # Open first, soonest due first; closed after, newest first.
        order = (
            case((Task.status == "open", 0), else_=1),
            case((Task.status == "open", Task.due_at), else_=None),
            Task.closed_at.desc(),
            Task.id.desc(),
        )
    query = _query().where(*where).order_by(*order).limit(max(limit, 0)).offset(max(offset, 0))
    return [task_row(row, now) for row in session.execute(query)], int(total or 0)


def owner_counts(session: Session, *, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Open and overdue tasks per owner, most overdue first (for the managers' dashboard).

    Each item is ``{"owner_id", "owner", "open", "overdue"}``; tasks nobody owns are one
    item with ``owner_id`` and ``owner`` ``None``. Owners without open tasks are left out.
    """
    now = now or utcnow()
    late = func.sum(case((Task.due_at < now, 1), else_=0))
    rows = session.execute(
        select(
            Task.owner_id,
            func.max(User.display_name),
            func.max(User.username),
            func.count(),
            late,
        )
        .outerjoin(User, User.id == Task.owner_id)
        .where(Task.status == "open")
        .group_by(Task.owner_id)
    ).all()
    counts = [
        {
            "owner_id": owner_id,
            "owner": (display or username) if owner_id is not None else None,
            "open": int(n),
            "overdue": int(overdue or 0),
        }
        for owner_id, display, username, n, overdue in rows
    ]
    return sorted(counts, key=lambda c: (-c["overdue"], -c["open"], c["owner"] or ""))


def customer_tasks(
    session: Session, customer_id: int, *, closed_limit: int = 5, now: dt.datetime | None = None
) -> dict[str, Any]:
    """A customer's open tasks (all of them) and latest closed ones, for the 360.

    Returns ``{"open": [...], "closed": [...], "closed_total": n}``.
    """
    now = now or utcnow()
    mine = Task.customer_id == customer_id
    open_rows = session.execute(
        _query().where(mine, Task.status == "open").order_by(Task.due_at, Task.id)
    )
    closed_rows = session.execute(
        _query()
        .where(mine, Task.status == "closed")
        .order_by(Task.closed_at.desc(), Task.id.desc())
        .limit(max(closed_limit, 0))
    )
    closed_total = session.scalar(
        select(func.count()).select_from(Task).where(and_(mine, Task.status == "closed"))
    )
    return {
        "open": [task_row(row, now) for row in open_rows],
        "closed": [task_row(row, now) for row in closed_rows],
        "closed_total": int(closed_total or 0),
    }


def customer_panel(session: Session, customer_id: int, *, mask: bool) -> dict[str, Any]:
    """:func:`customer_tasks`, masked for a reader who must not see personal data."""
    panel = customer_tasks(session, customer_id)
    for key in ("open", "closed"):
        panel[key] = [task_view(task, mask=mask) for task in panel[key]]
    return panel


def dashboard_tasks(session: Session, user: User) -> dict[str, Any]:
    """The dashboard's task figures: the reader's own, and every owner's for managers.

    Returns ``{"mine": {"open", "overdue"}, "owners": [...] or None}``; ``owners`` is
    :func:`owner_counts` for readers holding ``tasks.assign``.
    """
    now = utcnow()
    late = func.sum(case((Task.due_at < now, 1), else_=0))
    n, overdue = session.execute(
        select(func.count(), late).where(Task.owner_id == user.id, Task.status == "open")
    ).one()
    owners = owner_counts(session, now=now) if permissions.can(user, "tasks.assign") else None
    return {"mine": {"open": int(n), "overdue": int(overdue or 0)}, "owners": owners}
