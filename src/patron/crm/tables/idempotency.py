"""Idempotency keys: the first answer to a write, kept so a retry gets it again.

As in the IETF ``Idempotency-Key`` header draft and Stripe's API, a client names each
write with a key of its own; the key is scoped to the user who sent it (two clients may
pick the same key), and remembers a fingerprint of the request (method, path, body), so
the same key on a different request is refused instead of answered with the wrong result.
The row is written in the same transaction as the write it answers: the points and the
remembered answer are committed together or not at all.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from patron.crm.tables.base import Base, Id, created_column, id_column

__all__ = ["IdempotencyKey"]


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("user_id", "key"),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    id: Mapped[int] = id_column()
    user_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    #: SHA-256 of method, path and the canonical JSON body.
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = created_column()
