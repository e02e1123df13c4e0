"""What each role may do, checked in one place."""

import pytest

from patron.crm.services.errors import Forbidden
from patron.crm.services.permissions import (
    PERMISSIONS,
    ROLE_PERMISSIONS,
    can,
    masks_personal_data,
    require,
)
from patron.crm.tables import ROLES, User


def user(role, active=True):
    return User(username=role, role=role, active=active, password_hash="-")


def allowed(role):
    return {p for p in PERMISSIONS if can(user(role), p)}


def test_every_role_has_its_permissions():
    assert set(ROLE_PERMISSIONS) == set(ROLES)
    assert allowed("admin") == PERMISSIONS
    assert allowed("manager") == PERMISSIONS - {"users.manage", "settings.manage"}
    assert allowed("staff") == {
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
    assert allowed("analyst") == {
        "customers.read",
        "imports.read",
        "scoring.read",
        "merges.read",
        "exports.customers",
        "tasks.read",
    }


def test_analysts_write_nothing_and_do_not_read_the_audit_log():
    for permission in PERMISSIONS:
        if not permission.endswith(".read") and permission != "exports.customers":
            assert not can(user("analyst"), permission), permission
    assert not can(user("analyst"), "audit.read")


def test_nobody_and_disabled_users_may_do_nothing():
    for permission in PERMISSIONS:
        assert not can(None, permission)
        assert not can(user("admin", active=False), permission)


def test_a_misspelt_permission_is_a_bug():
    with pytest.raises(ValueError, match="customer.read"):
        can(user("admin"), "customer.read")


def test_require_raises_forbidden():
    require(user("staff"), "customers.write")
    with pytest.raises(Forbidden) as info:
        require(user("staff"), "users.manage")
    assert info.value.status == 403 and info.value.code == "forbidden"
    assert "users.manage" in info.value.message


def test_personal_data_is_masked_for_analysts_only():
    assert masks_personal_data(user("analyst"))
    assert masks_personal_data(None)
    for role in ("admin", "manager", "staff"):
        assert not masks_personal_data(user(role))
