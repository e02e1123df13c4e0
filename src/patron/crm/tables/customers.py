"""Customers, the ids other systems know them by, their tags, consents and merges.

The phone and email are kept as entered (for display) and normalised (for search and
identity resolution: ``+86 138-0013-8000`` and ``13800138000`` are one phone). A merged
customer keeps its row, pointing at the survivor, so old links and the audit trail still
resolve.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from patron.crm.tables.base import Base, Id, created_column, id_column, utcnow

__all__ = [
    "CONSENT_CHANNELS",
    "Customer",
    "CustomerExternalId",
    "CustomerTag",
    "CustomerConsent",
    "CustomerMerge",
]

#: Channels a customer can agree (or refuse) to be contacted on for marketing.
CONSENT_CHANNELS = ("sms", "phone", "email", "wechat", "app")


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        Index("ix_customers_phone_norm", "phone_norm"),
        Index("ix_customers_email_norm", "email_norm"),
        # Names for search: on PostgreSQL only live customers', with their ids, so a
        # prefix is counted from the index alone (migration 0008 says why).
        Index("ix_customers_name", "name").ddl_if(dialect="sqlite"),
        Index(
            "ix_customers_live_name",
            "name",
            postgresql_include=["id"],
            postgresql_where=text("merged_into_id IS NULL"),
        ).ddl_if(dialect="postgresql"),
        Index("ix_customers_owner_id", "owner_id"),
        # Merges look up who points at a customer; lists sort by the newest.
        Index("ix_customers_merged_into_id", "merged_into_id"),
        Index("ix_customers_created_at", "created_at"),
        # Search inside names (PostgreSQL's pg_trgm; migration 0006 says why).
        Index(
            "ix_customers_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
        CheckConstraint("gender IN ('female','male','other')", "gender"),
    )

    id: Mapped[int] = id_column()
    name: Mapped[str] = mapped_column(String(128), default="")
    phone: Mapped[str | None] = mapped_column(String(32))
    phone_norm: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(255))
    email_norm: Mapped[str | None] = mapped_column(String(255))
    birthday: Mapped[dt.date | None]
    gender: Mapped[str | None] = mapped_column(String(8))
    region: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(32))  # acquisition channel
    language: Mapped[str | None] = mapped_column(String(8))
    owner_id: Mapped[int | None] = mapped_column(Id, ForeignKey("users.id", ondelete="SET NULL"))
    merged_into_id: Mapped[int | None] = mapped_column(Id, ForeignKey("customers.id"))
    created_at: Mapped[dt.datetime] = created_column()
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CustomerExternalId(Base):
    """The id a source system (a shop platform, a POS, a CSV export) gives the customer."""

    __tablename__ = "customer_external_ids"
    __table_args__ = (UniqueConstraint("source", "external_id"),)

    id: Mapped[int] = id_column()
    customer_id: Mapped[int] = mapped_column(
        Id, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = created_column()


class CustomerTag(Base):
    __tablename__ = "customer_tags"

    customer_id: Mapped[int] = mapped_column(
        Id, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class CustomerConsent(Base):
    """Marketing consent per channel, with when and where it was given or withdrawn."""

    __tablename__ = "customer_consents"

    customer_id: Mapped[int] = mapped_column(
        Id, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    granted: Mapped[bool]
    source: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CustomerMerge(Base):
    """Two records found to be one person (same normalised phone or email)."""

    __tablename__ = "customer_merges"

    id: Mapped[int] = id_column()
    survivor_id: Mapped[int] = mapped_column(Id, ForeignKey("customers.id"), index=True)
    merged_id: Mapped[int] = mapped_column(Id, ForeignKey("customers.id"), index=True)
    rule: Mapped[str] = mapped_column(String(16))  # phone | email | manual
    key: Mapped[str] = mapped_column(String(255), default="")
    batch_id: Mapped[int | None] = mapped_column(Id, ForeignKey("import_batches.id"))
    actor_id: Mapped[int | None] = mapped_column(Id, ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = created_column()
