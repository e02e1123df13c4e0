"""Staff who log in: users, their server-side sessions, API tokens and login attempts.

Sessions and tokens are stored as SHA-256 digests of the random secret the client holds,
so a leaked database does not hand out logins, and deleting the row ends the login at once
(which a signed cookie cannot do).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from patron.crm.tables.base import Base, Id, created_column, id_column

__all__ = ["ROLES", "User", "WebSession", "ApiToken", "LoginAttempt"]

#: admin: users and settings; manager: everything else; staff: customers and contacts;
#: analyst: read-only with personal data masked.
ROLES = ("admin", "manager", "staff", "analyst")


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('admin','manager','staff','analyst')", "role"),)

    id: Mapped[int] = id_column()
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    language: Mapped[str | None] = mapped_column(String(8))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    password_changed_at: Mapped[dt.datetime] = created_column()
    created_at: Mapped[dt.datetime] = created_column()


class WebSession(Base):
    """A browser login; the cookie holds only the random secret whose digest is the key."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = id_column()
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = created_column()
    expires_at: Mapped[dt.datetime]
    last_seen_at: Mapped[dt.datetime] = created_column()
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))


class ApiToken(Base):
    """A bearer token for the API; revoked tokens are kept for the audit trail."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = id_column()
    user_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = created_column()
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]


class LoginAttempt(Base):
    """Failed and successful logins, counted per username and address for rate limiting."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_username_at", "username", "at"),
        Index("ix_login_attempts_ip_at", "ip", "at"),
    )

    id: Mapped[int] = id_column()
    username: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[dt.datetime] = created_column()
    success: Mapped[bool] = mapped_column(default=False)
