"""Importing exports into the store, on SQLite and PostgreSQL: counts, upserts, identity
resolution, all-or-nothing, re-imports and two imports of one file at the same moment."""

import csv
import datetime as dt
import io
import re
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from tests.cli.test_cli import run as run_patron

import patron
from patron.crm.db import session_factory, session_scope
from patron.crm.services.errors import Invalid, NotFound
from patron.crm.services.imports import get_batch, import_file, list_batches
from patron.crm.tables import (
    AuditEvent,
    Customer,
    CustomerExternalId,
    CustomerMerge,
    ImportBatch,
    Order,
)

DATA = Path(__file__).parents[1] / "data"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory):
    """A messy Chinese shop export: ~830 rows, 300 customers, every kind of damage."""
    return patron.datasets.demo_shop(
        tmp_path_factory.mktemp("demo") / "悦购订单.csv", customers=300, seed=1
    )


def write_csv(path, header, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def count(session, table):
    return session.scalar(select(func.count()).select_from(table))


# --- an order export -------------------------------------------------------------------


def test_demo_export_lands_with_the_ingest_account(session, demo_file):
    tx = patron.read_transactions(demo_file)
    result = import_file(session, demo_file)
    session.commit()
    batch = result.batch
    assert not result.already_imported
    assert (batch.kind, batch.source, batch.filename) == ("orders", "悦购订单", "悦购订单.csv")
    assert batch.status == "completed" and batch.finished_at is not None
    assert batch.rows_read == tx.report.rows_read
    assert batch.inserted == len(tx) == count(session, Order)
    assert (batch.updated, batch.unchanged) == (0, 0)
    assert batch.rejected == tx.report.rejected > 0
    assert batch.customers_created == tx.report.customers == count(session, Customer)
    assert batch.report["rejected_by_reason"] == tx.report.rejected_by_reason
    assert batch.report["columns"]["name"] == "客户姓名"
    assert batch.report["columns"]["phone"] == "手机号"
    total = session.scalar(select(func.sum(Order.amount)))
    assert total == Decimal(str(round(sum(tx.to_arrow()["amount"].to_pylist()), 2)))
    # Every order belongs to the customer its external id names.
    pairs = session.execute(
        select(CustomerExternalId.external_id, func.count(Order.id))
        .join(Order, Order.customer_id == CustomerExternalId.customer_id)
        .group_by(CustomerExternalId.external_id)
    ).all()
    per_customer = {}
    for cid in tx.to_arrow()["customer_id"].to_pylist():
        per_customer[cid] = per_customer.get(cid, 0) + 1
    assert dict(pairs) == per_customer
    (event,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "import.run"))
    assert (event.object_type, event.object_id) == ("import_batch", str(batch.id))
    assert event.after["inserted"] == batch.inserted


def test_profile_times_and_statuses_are_stored(session, demo_file):
    import_file(session, demo_file)
    session.commit()
    order = session.scalars(select(Order).where(Order.order_no == "SO2024000001")).one()
    # 2024-01-01 08:45:13 in Shanghai, stored in UTC.
    assert order.ordered_at == dt.datetime(2024, 1, 1, 8, 45, 13, tzinfo=SHANGHAI)
    assert order.ordered_at.utcoffset() == dt.timedelta(0)
    assert (order.amount, order.status, order.channel) == (Decimal("290.00"), "completed", "天猫")
    refund = session.scalars(select(Order).where(Order.order_no == "SO2024000005-R")).one()
    assert (refund.amount, refund.status) == (Decimal("-578.00"), "refunded")
    customer = session.get(Customer, order.customer_id)
    assert (customer.name, customer.phone_norm, customer.channel) == (
        "张萍明",
        "15602769875",
        "天猫",
    )


def test_rejected_rows_are_kept_as_csv_in_the_users_language(session, demo_file):
    patron.i18n.set_language("zh")
    try:
        batch = import_file(session, demo_file).batch
    finally:
        patron.i18n.set_language(None)
    assert batch.rejected_csv.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(batch.rejected_csv.lstrip("\ufeff"))))
    assert len(rows) == batch.rejected
    assert {"line", "reason", "column", "value", "订单编号", "客户编号"} <= set(rows[0])
    assert "日历中不存在该日期" in {r["reason"] for r in rows}
    assert "2024年2月30日" in {r["value"] for r in rows}


def test_reimporting_the_same_file_changes_nothing(session, demo_file):
    first = import_file(session, demo_file).batch
    session.commit()
    orders, customers = count(session, Order), count(session, Customer)
    again = import_file(session, demo_file)
    session.commit()
    assert again.already_imported and again.batch.id == first.id
    assert (count(session, Order), count(session, Customer)) == (orders, customers)
    assert count(session, ImportBatch) == 1
    # Another kind of import of the same bytes is another batch.
    assert import_file(session, demo_file, kind="customers").batch.id != first.id


def test_one_import_is_one_transaction(engine, session, demo_file):
    import_file(session, demo_file)
    session.rollback()
    assert (count(session, ImportBatch), count(session, Order), count(session, Customer)) == (
        0,
        0,
        0,
    )
    session.rollback()  # end the read: on SQLite the next writer would wait for it
    # A failure half-way leaves nothing either: the command's transaction rolls back.
    with pytest.raises(RuntimeError), session_scope(engine) as s:
        import_file(s, demo_file)
        raise RuntimeError("crash after the rows were written")
    assert count(session, Order) == 0


def test_a_changed_export_updates_and_adds(session, tmp_path):
    header = ["订单编号", "客户编号", "客户姓名", "下单时间", "实付金额", "订单状态"]
    rows = [
        ["A1", "C1", "张三", "2024-03-01 10:00", "100", "已完成"],
        ["A2", "C1", "", "2024-03-02 10:00", "50", "已完成"],
        ["A3", "C2", "李四", "2024-03-03 10:00", "80", "已完成"],
    ]
    import_file(session, write_csv(tmp_path / "march.csv", header, rows), source="shop")
    session.commit()
    rows[1][4] = "55"  # corrected amount
    rows[2][5] = "已取消"  # cancelled since
    rows.append(["A4", "C3", "王五", "2024-03-04 10:00", "20", "已完成"])
    batch = import_file(
        session, write_csv(tmp_path / "march-v2.csv", header, rows), source="shop"
    ).batch
    session.commit()
    assert (batch.inserted, batch.updated, batch.unchanged) == (1, 2, 1)
    assert (batch.customers_created, batch.report["customers_matched"]) == (1, 0)
    amounts = dict(session.execute(select(Order.order_no, Order.amount)).all())
    assert amounts == {
        "A1": Decimal("100.00"),
        "A2": Decimal("55.00"),
        "A3": Decimal("80.00"),
        "A4": Decimal("20.00"),
    }
    a3 = session.scalars(select(Order).where(Order.order_no == "A3")).one()
    assert (a3.status, a3.batch_id) == ("cancelled", batch.id)
    assert count(session, Customer) == 3


def test_orders_without_ids_get_stable_keys(session, tmp_path):
    header = ["会员ID", "交易时间", "消费金额"]
    coffee = ["M1", "2024-03-01 09:00", "18"]
    rows = [coffee, coffee, ["M2", "2024-03-01 09:05", "30"]]
    first = import_file(session, write_csv(tmp_path / "pos1.csv", header, rows), source="pos")
    session.commit()
    assert first.batch.inserted == 3  # two identical coffees are two orders
    rows.append(["M1", "2024-03-02 09:00", "18"])
    second = import_file(session, write_csv(tmp_path / "pos2.csv", header, rows), source="pos")
    session.commit()
    assert (second.batch.inserted, second.batch.unchanged) == (1, 3)
    numbers = session.scalars(select(Order.order_no)).all()
    assert len(set(numbers)) == 4 and all(n.startswith("auto-") for n in numbers)


# --- identity resolution ---------------------------------------------------------------


def add_customer(session, name, *, phone=None, email=None, source=None, external_id=None):
    from patron.crm.contacts import normalise_email, normalise_phone

    c = Customer(
        name=name,
        phone=phone,
        phone_norm=normalise_phone(phone),
        email=email,
        email_norm=normalise_email(email),
    )
    session.add(c)
    session.flush()
    if source:
        session.add(CustomerExternalId(customer_id=c.id, source=source, external_id=external_id))
        session.flush()
    return c


def test_a_new_id_with_a_known_phone_is_the_same_customer(session, tmp_path):
    known = add_customer(session, "张三", phone="13800138000", source="pos", external_id="P1")
    session.commit()
    header = ["订单编号", "买家会员名", "收货人", "联系电话", "下单时间", "实付金额"]
    rows = [
        ["T1", "tb_zhang", "张三", "+86 138-0013-8000", "2024-03-01", "99"],
        ["T2", "tb_li", "李四", "13900139000", "2024-03-02", "50"],
    ]
    batch = import_file(session, write_csv(tmp_path / "tmall.csv", header, rows)).batch
    session.commit()
    assert (batch.customers_created, batch.report["customers_matched"]) == (1, 1)
    ids = dict(
        session.execute(
            select(CustomerExternalId.external_id, CustomerExternalId.customer_id)
        ).all()
    )
    assert ids["tb_zhang"] == ids["P1"] == known.id
    t1 = session.scalars(select(Order).where(Order.order_no == "T1")).one()
    assert t1.customer_id == known.id
    assert count(session, Customer) == 2


def test_matching_can_be_switched_off(session, tmp_path):
    add_customer(session, "张三", phone="13800138000")
    session.commit()
    header = ["订单编号", "客户编号", "手机号", "下单时间", "实付金额"]
    path = write_csv(tmp_path / "x.csv", header, [["X1", "C9", "13800138000", "2024-03-01", "9"]])
    batch = import_file(session, path, match_on=()).batch
    assert (batch.customers_created, batch.report["customers_matched"]) == (1, 0)


def test_a_row_linking_two_customers_merges_them(session, tmp_path):
    older = add_customer(session, "张三", phone="13800138000")
    younger = add_customer(session, "", email="zhang.san@example.com")
    session.commit()
    header = ["订单编号", "客户编号", "手机", "邮箱", "下单时间", "实付金额"]
    rows = [["W1", "wx_1", "13800138000", "Zhang.San@Example.com", "2024-03-01", "10"]]
    batch = import_file(session, write_csv(tmp_path / "wechat.csv", header, rows)).batch
    session.commit()
    assert (batch.customers_created, batch.customers_merged) == (0, 1)
    merge = session.scalars(select(CustomerMerge)).one()
    assert (merge.survivor_id, merge.merged_id, merge.batch_id) == (older.id, younger.id, batch.id)
    session.refresh(younger)
    assert younger.merged_into_id == older.id
    assert session.scalars(select(Order.customer_id)).one() == older.id


def test_rows_of_one_file_sharing_a_phone_are_one_new_customer(session, tmp_path):
    header = ["订单编号", "客户编号", "手机号", "下单时间", "实付金额"]
    rows = [
        ["S1", "shop-1", "13800138000", "2024-03-01", "10"],
        ["S2", "shop-2", "138 0013 8000", "2024-03-02", "20"],
        ["S3", "shop-3", "", "2024-03-03", "30"],
    ]
    batch = import_file(session, write_csv(tmp_path / "s.csv", header, rows)).batch
    session.commit()
    # One new person (shop-1 and shop-2) and another: matched counts only customers
    # that existed before the import.
    assert (batch.customers_created, batch.report["customers_matched"]) == (2, 0)
    assert count(session, CustomerExternalId) == 3
    owners = dict(session.execute(select(Order.order_no, Order.customer_id)).all())
    assert owners["S1"] == owners["S2"] != owners["S3"]


# --- a customer list -------------------------------------------------------------------


def test_a_customer_list_is_upserted_by_external_id(session, tmp_path):
    header = ["会员编号", "姓名", "手机号码", "邮箱", "性别", "生日", "地区"]
    rows = [
        ["M001", "张三", "13800138000", "zs@example.com", "男", "1990-05-01", "上海"],
        ["M002", "李四", "13900139000", "", "女", "1988年3月8日", "北京"],
        ["", "无名", "13700137000", "", "", "", ""],
    ]
    first = import_file(
        session, write_csv(tmp_path / "members.csv", header, rows), kind="customers"
    ).batch
    session.commit()
    assert (first.rows_read, first.inserted, first.rejected) == (3, 2, 1)
    assert first.report["rejected_by_reason"] == {"customer_missing": 1}
    zhang = session.scalars(select(Customer).where(Customer.name == "张三")).one()
    assert (zhang.gender, zhang.birthday, zhang.region) == ("male", dt.date(1990, 5, 1), "上海")
    li = session.scalars(select(Customer).where(Customer.name == "李四")).one()
    assert (li.gender, li.birthday) == ("female", dt.date(1988, 3, 8))

    rows[0][1] = "张三丰"  # renamed
    second = import_file(
        session,
        write_csv(tmp_path / "members-v2.csv", header, rows),
        kind="customers",
        source="members",
    ).batch
    session.commit()
    assert (second.inserted, second.updated, second.unchanged) == (0, 1, 1)
    session.refresh(zhang)
    assert zhang.name == "张三丰"
    assert count(session, Customer) == 2


def test_an_order_export_fills_but_never_overwrites_a_profile(session, tmp_path):
    c = add_customer(session, "张三", source="shop", external_id="C1")
    session.commit()
    header = ["订单编号", "客户编号", "客户姓名", "手机号", "下单时间", "实付金额"]
    rows = [["O1", "C1", "Zhang San", "13800138000", "2024-03-01", "10"]]
    batch = import_file(session, write_csv(tmp_path / "shop.csv", header, rows)).batch
    session.commit()
    session.refresh(c)
    assert (c.name, c.phone_norm) == ("张三", "13800138000")
    assert batch.report["customers_updated"] == 1


# --- refusals, lookups -----------------------------------------------------------------


def test_what_cannot_be_imported_is_refused_clearly(session, tmp_path):
    path = write_csv(tmp_path / "x.csv", ["订单编号", "备注"], [["A1", "?"]])
    with pytest.raises(Invalid, match="x.csv"):
        import_file(session, path)
    with pytest.raises(Invalid, match="customer id"):
        import_file(session, path, kind="customers")
    with pytest.raises(Invalid, match="kind"):
        import_file(session, path, kind="points")
    with pytest.raises(Invalid, match="Mars/Olympus"):
        import_file(session, path, timezone="Mars/Olympus")
    assert count(session, ImportBatch) == 0


def test_batches_are_listed_newest_first(session, tmp_path, demo_file):
    one = import_file(session, demo_file).batch
    two = import_file(session, DATA / "messy_orders.csv").batch
    batches, total = list_batches(session)
    assert total == 2 and [b.id for b in batches] == [two.id, one.id]
    assert get_batch(session, one.id) is one
    with pytest.raises(NotFound):
        get_batch(session, 10_000)


# --- two imports of one file at the same moment ----------------------------------------


def test_two_concurrent_imports_of_one_file_leave_one_copy(engine, demo_file):
    both_read = threading.Barrier(2, timeout=60)
    results, errors = [], []

    def progress(step, done, total):
        if step == "read" and total is not None and done == total:
            both_read.wait()  # both have passed the "imported before?" check

    def run():
        try:
            with session_scope(engine) as session:
                results.append(import_file(session, demo_file, progress=progress))
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert sorted(r.already_imported for r in results) == [False, True]
    assert results[0].batch.id == results[1].batch.id
    with session_factory(engine)() as session:
        assert count(session, ImportBatch) == 1
        tx = patron.read_transactions(demo_file)
        assert count(session, Order) == len(tx)
        assert count(session, Customer) == tx.report.customers


# --- the command -----------------------------------------------------------------------


def test_patron_import_prints_the_batch_and_then_that_nothing_changed(db_url, tmp_path):
    messy = DATA / "messy_orders.csv"
    rejected = tmp_path / "rejected.csv"
    first = run_patron(
        "import", messy, "--database-url", db_url, "--rejected-out", rejected, lang="zh"
    )
    assert first.returncode == 0, first.stderr
    assert "新增" in first.stdout and "拒收" in first.stdout
    assert "日历中不存在该日期" in rejected.read_text("utf-8")
    again = run_patron("import", messy, "--database-url", db_url)
    assert again.returncode == 0, again.stderr
    batch_id = re.search(r"导入批次 (\d+)", first.stdout).group(1)
    assert f"already imported as batch {batch_id}" in again.stdout
    assert "nothing changed" in again.stdout


def test_patron_import_refuses_an_unmigrated_database(tmp_path):
    result = run_patron(
        "import", DATA / "messy_orders.csv", "--database-url", f"sqlite:///{tmp_path / 'x.db'}"
    )
    assert result.returncode == 2
    assert "patron db upgrade" in " ".join(result.stderr.split())  # rich may wrap the line
