"""The customer export: CSV for Excel, masked for analysts, audited."""

import csv
import io

from sqlalchemy import select

from patron.crm.db import session_scope
from patron.crm.tables import AuditEvent


def _rows(response):
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_export_is_masked_for_analysts_and_audited(client, users, engine):
    staff = users.headers("staff")
    for name, phone, email in [
        ("张三丰", "13812345678", "alice@example.com"),
        ('=HYPERLINK("http://x")', "13900001111", None),
    ]:
        body = {"name": name, "phone": phone, "email": email}
        assert client.post("/api/v1/customers", json=body, headers=staff).status_code == 201

    full = _rows(client.get("/api/v1/exports/customers", headers=users.headers("manager")))
    assert len(full) == 2
    by_phone = {row["phone"]: row for row in full}
    assert by_phone["13812345678"]["name"] == "张三丰"
    assert by_phone["13812345678"]["email"] == "alice@example.com"
    # A cell a spreadsheet would run as a formula is written as text.
    assert by_phone["13900001111"]["name"].startswith("'=")

    masked = _rows(client.get("/api/v1/exports/customers", headers=users.headers("analyst")))
    assert {row["phone"] for row in masked} == {"138****5678", "139****1111"}
    assert "a***@example.com" in {row["email"] for row in masked}
    assert "张**" in {row["name"] for row in masked}

    filtered = _rows(
        client.get(
            "/api/v1/exports/customers", params={"q": "张三丰"}, headers=users.headers("manager")
        )
    )
    assert [row["name"] for row in filtered] == ["张三丰"]

    with session_scope(engine) as session:
        events = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "export.customers")
            .order_by(AuditEvent.id)
        ).all()
    assert [e.actor_name for e in events] == ["manager", "analyst", "manager"]
    assert [e.after["rows"] for e in events] == [2, 2, 1]
    assert events[1].after["masked"] is True


def test_staff_may_not_export(client, users):
    response = client.get("/api/v1/exports/customers", headers=users.headers("staff"))
    assert response.status_code == 403
