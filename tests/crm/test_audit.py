"""The audit trail: JSON-safe values, filters, and no secrets ever stored."""

import datetime as dt
import json
import math
import uuid
from decimal import Decimal

import pytest

from patron.crm.services import audit
from patron.crm.services.users import create_user


def test_jsonable_makes_service_values_json_safe():
    values = {
        "amount": Decimal("1234.50"),
        "day": dt.date(2024, 3, 5),
        "at": dt.datetime(2024, 3, 5, 1, 30, tzinfo=dt.UTC),
        "tags": {"vip", "b2b"},
        "pair": (1, Decimal("0.10")),
        "nested": {"when": dt.date(2024, 1, 1), "items": [frozenset({3, 1, 2})]},
        "ratio": math.nan,
        "id": uuid.UUID(int=1),
        7: "numeric key",
    }
    result = audit.jsonable(values)
    assert result == {
        "amount": "1234.50",
        "day": "2024-03-05",
        "at": "2024-03-05T01:30:00+00:00",
        "tags": ["b2b", "vip"],
        "pair": [1, "0.10"],
        "nested": {"when": "2024-01-01", "items": [[1, 2, 3]]},
        "ratio": None,
        "id": "00000000-0000-0000-0000-000000000001",
        "7": "numeric key",
    }
    assert json.loads(json.dumps(result, allow_nan=False)) == result


def test_jsonable_refuses_what_it_cannot_store():
    with pytest.raises(TypeError, match="object"):
        audit.jsonable({"x": object()})


def test_secrets_never_enter_the_trail(session):
    for key in ("password", "password_hash", "token", "csrf_token"):
        with pytest.raises(ValueError, match="secrets"):
            audit.record(
                session,
                actor=None,
                action="user.update",
                object_type="user",
                object_id=1,
                after={key: "x"},
            )


def test_record_stores_values_and_the_actor_name(session):
    admin, _ = create_user(session, username="root", role="admin", password="long enough")
    event = audit.record(
        session,
        actor=admin,
        action="customer.update",
        object_type="customer",
        object_id=42,
        before={"name": "张三", "spend": Decimal("10.00")},
        after={"name": "张三丰", "spend": Decimal("12.50"), "birthday": dt.date(1990, 5, 1)},
        ip="10.0.0.1",
    )
    session.commit()
    session.expunge_all()
    events, total = audit.list_events(session, object_type="customer", object_id=42)
    assert total == 1
    (stored,) = events
    assert stored.id == event.id
    assert stored.actor_id == admin.id and stored.actor_name == "root"
    assert stored.object_id == "42"
    assert stored.before == {"name": "张三", "spend": "10.00"}
    assert stored.after == {"name": "张三丰", "spend": "12.50", "birthday": "1990-05-01"}
    assert stored.ip == "10.0.0.1"
    assert stored.at.tzinfo is not None


def test_list_events_filters_and_pages_newest_first(session):
    admin, _ = create_user(session, username="root", role="admin", password="long enough")
    for i in range(5):
        audit.record(
            session,
            actor=admin if i % 2 else None,
            action="customer.update",
            object_type="customer",
            object_id=i,
        )
        session.flush()
    audit.record(session, actor=None, action="import.run", object_type="import", object_id=9)
    session.commit()

    events, total = audit.list_events(session, action="customer.update", limit=2)
    assert total == 5
    assert [e.object_id for e in events] == ["4", "3"]
    events, total = audit.list_events(session, action="customer.update", limit=2, offset=4)
    assert [e.object_id for e in events] == ["0"] and total == 5
    events, total = audit.list_events(session, actor_id=admin.id)
    assert total == 2 and {e.object_id for e in events} == {"1", "3"}
    events, total = audit.list_events(session, object_type="import")
    assert total == 1 and events[0].action == "import.run"
    _, everything = audit.list_events(session)
    assert everything == 7  # six above and the creation of root
