"""The declarative base and the column types every table shares.

Money is ``Numeric(14, 2)`` read back as :class:`~decimal.Decimal`: sums of points and
yuan must be exact. Times are stored in UTC and always come back timezone-aware, on
SQLite (which has no time zones) as on PostgreSQL; the user's zone is applied on display.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData, Numeric, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "Money", "UTCDateTime", "Id", "utcnow", "id_column", "created_column"]

# Named constraints, so Alembic migrations can refer to them on every database.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Integer primary keys: BIGINT on PostgreSQL, INTEGER on SQLite (its ROWID alias).
Id = BigInteger().with_variant(Integer(), "sqlite")
Money = Numeric(14, 2, asdecimal=True)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A point in time: aware datetimes in, aware UTC datetimes out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: patron stores times in UTC")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def id_column() -> Mapped[int]:
    return mapped_column(Id, primary_key=True, autoincrement=True)


def created_column() -> Mapped[dt.datetime]:
    return mapped_column(UTCDateTime, default=utcnow, nullable=False)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {
        dt.datetime: UTCDateTime,
        Decimal: Money,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }
