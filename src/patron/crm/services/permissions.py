"""What each role may do: the one place where roles turn into permissions.

Routes, pages and commands ask :func:`can` or :func:`require` for a named permission and
never compare role names themselves, so changing what a role may do is one edit here.

- admin: everything (users and settings included);
- manager: everything except managing users and settings;
- staff: customers (read and write), touchpoints, follow-up tasks (open, and close their
  own), earning and redeeming points, and reading imports, scores and merges; managers
  also reassign tasks, adjust points and edit the loyalty programme;
- analyst: read-only, with personal data masked (:func:`masks_personal_data`), and the
  customer export (masked as well). Analysts do not read the audit log: its before/after
  values hold phones and emails unmasked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from patron.crm.services.errors import Forbidden
from patron.i18n import _

if TYPE_CHECKING:
    from patron.crm.tables import User

__all__ = ["PERMISSIONS", "ROLE_PERMISSIONS", "can", "require", "masks_personal_data"]

PERMISSIONS = frozenset(
    {
        "customers.read",
        "customers.write",
        "touchpoints.write",
        "imports.read",
        "imports.run",
        "scoring.read",
        "scoring.run",
        "exports.customers",
        "users.manage",
        "audit.read",
        "settings.manage",
        "merges.read",
        "tasks.read",
        "tasks.write",
        "tasks.assign",
        "points.write",
        "points.adjust",
        "loyalty.manage",
    }
)

_STAFF = frozenset(
    {
        "customers.read",
        "customers.write",
        "touchpoints.write",
        "imports.read",
        "scoring.read",
        "merges.read",
        "tasks.read",
        "tasks.write",
        "points.write",
    }
)
_ANALYST = frozenset(
    {
        "customers.read",
        "imports.read",
        "scoring.read",
        "merges.read",
        "exports.customers",
        "tasks.read",
    }
)

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": PERMISSIONS,
    "manager": PERMISSIONS - {"users.manage", "settings.manage"},
    "staff": _STAFF,
    "analyst": _ANALYST,
}

#: Roles that see customers' personal data as entered; every other role sees it masked.
_UNMASKED_ROLES = frozenset({"admin", "manager", "staff"})


def can(user: User | None, permission: str) -> bool:
    """Whether ``user`` may do ``permission``; nobody (``None``) and disabled users may not.

    Raises
    ------
    ValueError
        For a permission name that does not exist: a misspelt check must fail loudly, not
        quietly deny (or allow) everyone.
    """
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    if user is None or not user.active:
        return False
    return permission in ROLE_PERMISSIONS.get(user.role, frozenset())


def require(user: User | None, permission: str) -> None:
    """Raise :class:`~patron.crm.services.errors.Forbidden` unless :func:`can` allows it."""
    if not can(user, permission):
        raise Forbidden(_("accounts.forbidden", permission=permission), code="forbidden")


def masks_personal_data(user: User | None) -> bool:
    """Whether names, phones and emails must be masked for ``user``.

    True for analysts, and for anyone whose role is unknown: masking is the safe default.
    """
    return user is None or user.role not in _UNMASKED_ROLES
