"""Uploading exports: one batch per file, the same file twice changes nothing, rejected rows."""

import pytest

ORDERS = (
    "订单编号,客户编号,客户姓名,手机号,下单时间,实付金额\n"
    "SO1,C1,张三,13800138000,2024-01-05,120.50\n"
    "SO2,C1,张三,13800138000,2024-02-05,80\n"
    'SO3,C2,李四,13900139000,2024-03-01 10:00,"¥1,234.50"\n'
    "SO4,C3,王五,13700137000,2024-03-02,not money\n"
).encode()


def _upload(client, headers, content=ORDERS, name="orders.csv", **form):
    return client.post(
        "/api/v1/imports",
        files={"file": (name, content, "text/csv")},
        data={"kind": "orders", **form},
        headers=headers,
    )


def test_upload_twice_imports_once(client, users):
    manager = users.headers("manager")
    first = _upload(client, manager)
    assert first.status_code == 201, first.json()
    batch = first.json()
    assert batch["already_imported"] is False
    assert batch["kind"] == "orders"
    assert batch["filename"] == "orders.csv"
    assert batch["inserted"] == 3
    assert batch["rejected"] == 1
    assert batch["actor_id"] == users.id("manager")
    assert len(batch["sha256"]) == 64

    again = _upload(client, manager, name="renamed.csv")
    assert again.status_code == 200
    assert again.json()["already_imported"] is True
    assert again.json()["id"] == batch["id"]

    listed = client.get("/api/v1/imports", headers=manager).json()
    assert listed["total"] == 1
    assert [b["id"] for b in listed["items"]] == [batch["id"]]
    one = client.get(f"/api/v1/imports/{batch['id']}", headers=users.headers("staff"))
    assert one.status_code == 200
    assert one.json()["inserted"] == 3
    assert "rejected_csv" not in one.json()

    customers = client.get("/api/v1/customers", headers=manager).json()
    assert customers["total"] == 2  # C3's only row was rejected
    found = client.get("/api/v1/customers", params={"q": "13800138000"}, headers=manager).json()
    view = client.get(f"/api/v1/customers/{found['items'][0]['id']}", headers=manager).json()
    assert view["orders_total"] == 2
    assert {o["amount"] for o in view["orders"]} == {"120.50", "80.00"}


def test_rejected_rows_download_as_csv_for_excel(client, users):
    manager = users.headers("manager")
    batch = _upload(client, manager).json()
    response = client.get(f"/api/v1/imports/{batch['id']}/rejected.csv", headers=manager)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.content.startswith(b"\xef\xbb\xbf")
    text = response.content.decode("utf-8-sig")
    assert "SO4" in text and "SO1" not in text
    # Raw cells hold personal data that cannot be masked: analysts are refused.
    refused = client.get(
        f"/api/v1/imports/{batch['id']}/rejected.csv", headers=users.headers("analyst")
    )
    assert refused.status_code == 403


def test_customers_file_with_column_options(client, users):
    manager = users.headers("manager")
    content = b"member,full name,mobile\nM1,Grace Li,13512345678\n"
    response = client.post(
        "/api/v1/imports",
        files={"file": ("members.csv", content, "text/csv")},
        data={"kind": "customers", "customer": "member"},
        headers=manager,
    )
    assert response.status_code == 201, response.json()
    assert response.json()["kind"] == "customers"
    listed = client.get("/api/v1/customers", params={"q": "13512345678"}, headers=manager).json()
    assert [c["name"] for c in listed["items"]] == ["Grace Li"]


@pytest.mark.parametrize(
    ("files", "data", "field"),
    [
        ({"file": ("a.csv", ORDERS, "text/csv")}, {"kind": "refunds"}, "kind"),
        (None, {"kind": "orders"}, "file"),
        ({"file": ("a.csv", ORDERS, "text/csv")}, {"customer": "x" * 129}, "customer"),
        ({"file": ("a.csv", ORDERS, "text/csv")}, {"source": "x" * 65}, "source"),
    ],
)
def test_bad_upload_forms_are_422(client, users, files, data, field):
    response = client.post(
        "/api/v1/imports", files=files, data=data, headers=users.headers("manager")
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.csv", b""),
        ("订单导出" * 40 + ".csv", b"\n"),
        ("garbage.xlsx", b"this is not a workbook"),
        ("nocolumns.csv", "颜色,尺码\n红,L\n".encode()),
        ("binary.parquet", b"\x00\x01\x02PAR"),
    ],
)
def test_unusable_files_are_422_not_500(client, users, name, content):
    response = _upload(client, users.headers("manager"), content=content, name=name)
    assert response.status_code == 422, response.text
    assert response.json()["code"] in ("invalid", "invalid_input")
    # The message names the client's file, not where the server kept it.
    assert name[:20] in response.json()["message"]
    assert "patron-upload" not in response.json()["message"]
    assert client.get("/api/v1/imports", headers=users.headers("manager")).json()["total"] == 0


def test_unknown_batch_is_404(client, users):
    manager = users.headers("manager")
    assert client.get("/api/v1/imports/987654", headers=manager).status_code == 404
    assert client.get("/api/v1/imports/987654/rejected.csv", headers=manager).status_code == 404
