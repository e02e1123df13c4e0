"""Every contact with a customer: a call, a WeChat message, a store visit, an email."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from patron.crm.tables.base import Base, Id, created_column, id_column

__all__ = ["TOUCHPOINT_CHANNELS", "TOUCHPOINT_KINDS", "Touchpoint"]

TOUCHPOINT_CHANNELS = ("phone", "wechat", "email", "store", "web", "app")
TOUCHPOINT_KINDS = ("call", "message", "visit", "email", "complaint", "service", "note")


class Touchpoint(Base):
    __tablename__ = "touchpoints"
    __table_args__ = (
        Index("ix_touchpoints_customer_id_occurred_at", "customer_id", "occurred_at"),
        CheckConstraint("channel IN ('phone','wechat','email','store','web','app')", "channel"),
    )

    id: Mapped[int] = id_column()
    customer_id: Mapped[int] = mapped_column(Id, ForeignKey("customers.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[dt.datetime]
    note: Mapped[str] = mapped_column(Text, default="")
    staff_id: Mapped[int | None] = mapped_column(Id, ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = created_column()
