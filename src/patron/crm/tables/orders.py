"""Orders and their optional lines; an order's natural key is (source, order_no)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from patron.crm.tables.base import Base, Id, created_column, id_column, utcnow

__all__ = ["ORDER_STATUSES", "Order", "OrderLine"]

ORDER_STATUSES = ("completed", "refunded", "cancelled", "pending")


class Order(Base):
    """A purchase (positive amount) or a return (negative amount), as the ingest reads it."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("source", "order_no"),
        Index("ix_orders_customer_id_ordered_at", "customer_id", "ordered_at"),
    )

    id: Mapped[int] = id_column()
    source: Mapped[str] = mapped_column(String(64))
    order_no: Mapped[str] = mapped_column(String(128))
    customer_id: Mapped[int] = mapped_column(Id, ForeignKey("customers.id"))
    ordered_at: Mapped[dt.datetime]
    amount: Mapped[Decimal]
    status: Mapped[str] = mapped_column(String(16), default="completed")
    channel: Mapped[str | None] = mapped_column(String(32))
    batch_id: Mapped[int | None] = mapped_column(Id, ForeignKey("import_batches.id"), index=True)
    created_at: Mapped[dt.datetime] = created_column()
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OrderLine(Base):
    __tablename__ = "order_lines"

    id: Mapped[int] = id_column()
    order_id: Mapped[int] = mapped_column(
        Id, ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    sku: Mapped[str] = mapped_column(String(64), default="")
    name: Mapped[str] = mapped_column(String(255), default="")
    category: Mapped[str | None] = mapped_column(String(64))
    quantity: Mapped[Decimal] = mapped_column(Numeric(12, 3))
    price: Mapped[Decimal]
