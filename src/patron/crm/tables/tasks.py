"""Follow-up tasks: the closed loop that turns an unhappy customer into work someone owns.

A task is opened by a detractor's survey answer, a negative complaint, a scoring run's
"personal call" action, or by hand; it belongs to a member of staff, is due by a service
level, and is closed only with a resolution note (the database refuses a closed task
without one, so no code path can skip it).

``open_key`` is what makes "one open task per customer, kind and source" hold under
concurrent writers: it is set while the task is open and cleared when it closes, and a
plain unique constraint on it (NULLs are distinct on both databases) does the rest.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from patron.crm.tables.base import Base, Id, created_column, id_column, utcnow

__all__ = ["TASK_KINDS", "TASK_STATUSES", "Task"]

#: Why a task exists: a detractor's survey answer, a negative complaint, a scoring run's
#: personal-call action, or a member of staff's own decision.
TASK_KINDS = ("detractor", "complaint", "personal_call", "manual")
TASK_STATUSES = ("open", "closed")


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_owner_id_status_due_at", "owner_id", "status", "due_at"),
        Index("ix_tasks_customer_id_status", "customer_id", "status"),
        Index("ix_tasks_status_due_at", "status", "due_at"),
        CheckConstraint("kind IN ('detractor','complaint','personal_call','manual')", "kind"),
        CheckConstraint("status IN ('open','closed')", "status"),
        CheckConstraint(
            "status = 'open' OR (closed_at IS NOT NULL AND length(resolution) > 0)",
            "closed_resolved",
        ),
    )

    id: Mapped[int] = id_column()
    customer_id: Mapped[int] = mapped_column(Id, ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(8), default="open")
    title: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    source_type: Mapped[str | None] = mapped_column(String(32))
    source_id: Mapped[str | None] = mapped_column(String(64))
    open_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    owner_id: Mapped[int | None] = mapped_column(Id, ForeignKey("users.id", ondelete="SET NULL"))
    due_at: Mapped[dt.datetime]
    created_by_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = created_column()
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    closed_at: Mapped[dt.datetime | None]
    closed_by_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("users.id", ondelete="SET NULL")
    )
    resolution: Mapped[str] = mapped_column(Text, default="")
