"""Feedback records on SQLite and PostgreSQL: analysed on save, audited, filtered, imported
from CSV (English or Chinese, UTF-8 or GBK), and a negative complaint opens a task."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from tests.crm.customer_data import make_user

from patron.crm.services import customers as customer_service
from patron.crm.services import feedback
from patron.crm.services.errors import Invalid, NotFound
from patron.crm.services.identity import merge_customers
from patron.crm.tables import AuditEvent, FeedbackRecord, Task
from patron.errors import InputError

NOW = dt.datetime.now(dt.UTC)


def new_customer(session, name="张伟", **values):
    return customer_service.create_customer(session, actor=None, name=name, **values)


def test_a_record_is_analysed_audited_and_a_negative_complaint_opens_a_task(session):
    owner = make_user(session, "owner", "staff")
    clerk = make_user(session, "clerk", "staff")
    customer = new_customer(session, owner_id=owner.id)
    record = feedback.record_feedback(
        session,
        customer.id,
        channel="wechat",
        kind="complaint",
        text="  快递三天都没到，客服态度也很差  ",
        actor=clerk,
    )
    session.commit()
    assert record.text == "快递三天都没到，客服态度也很差"
    assert record.language == "zh-CN" and record.sentiment == "negative"
    assert record.sentiment_score < 0 and {"delivery", "service"} <= set(record.topics)
    assert record.source == "staff" and record.staff_id == clerk.id
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "feedback.create"))
    assert event.actor_id == clerk.id and event.after["sentiment"] == "negative"
    [task] = session.scalars(select(Task)).all()
    assert task.kind == "complaint" and task.owner_id == owner.id
    assert (task.source_type, task.source_id) == ("feedback", str(record.id))
    assert feedback.get_feedback(session, record.id)["task_id"] == task.id


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("praise", "The staff in the store were wonderful, thank you!"),
        ("complaint", "The parcel arrived on time and works great."),
        ("suggestion", "太差了，希望你们改进一下"),
    ],
)
def test_only_a_complaint_that_reads_negative_opens_a_task(session, kind, text):
    customer = new_customer(session)
    feedback.record_feedback(
        session, customer.id, channel="email", kind=kind, text=text, actor=None
    )
    session.commit()
    assert session.scalar(select(func.count()).select_from(Task)) == 0


def test_bad_records_are_refused_with_the_field_at_fault(session):
    customer = new_customer(session)
    good = {"channel": "phone", "kind": "question", "text": "When do you open?"}
    for change, field in (
        ({"channel": "fax"}, "channel"),
        ({"channel": "app"}, "channel"),  # a touchpoint channel, not a feedback one
        ({"kind": "rant"}, "type"),
        ({"text": "   "}, "text"),
        ({"text": "x" * 4001}, "text"),
        ({"language": "fr"}, "language"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"occurred_at": "2024-03-05T10:00:00"}, "occurred_at"),
        ({"occurred_at": NOW + dt.timedelta(days=3)}, "occurred_at"),
    ):
        with pytest.raises(Invalid) as refused:
            feedback.record_feedback(session, customer.id, actor=None, **{**good, **change})
        assert refused.value.field == field, change
    with pytest.raises(NotFound):
        feedback.record_feedback(session, 10**9, actor=None, **good)
    record = feedback.record_feedback(
        session, customer.id, actor=None, occurred_at="2024-03-05T10:00:00+08:00", **good
    )
    assert record.occurred_at == dt.datetime(2024, 3, 5, 2, 0, tzinfo=dt.UTC)
    assert record.language == "en"


def test_the_list_filters_by_channel_type_sentiment_topic_time_and_customer(session):
    survivor = new_customer(session, "李雷", phone="13800000001")
    merged = new_customer(session, "李雷", phone="13800000002")
    other = new_customer(session, "韩梅梅")
    day = dt.timedelta(days=1)

    def add(customer, channel, kind, text, days_ago):
        return feedback.record_feedback(
            session,
            customer.id,
            channel=channel,
            kind=kind,
            text=text,
            occurred_at=NOW - days_ago * day,
            actor=None,
        ).id

    a = add(survivor, "phone", "complaint", "物流太慢了，等了一个星期", 1)
    b = add(merged, "store", "praise", "店员服务很好，很满意", 2)
    c = add(other, "web", "question", "Is the price the same online?", 3)
    merge_customers(session, survivor.id, merged.id, rule="manual")
    session.commit()

    def ids(**filters):
        return [row["id"] for row in feedback.list_feedback(session, **filters)[0]]

    assert ids() == [a, b, c]  # newest first
    assert ids(channel="store") == [b]
    assert ids(kind="question") == [c]
    assert ids(sentiment="negative") == [a]
    assert ids(topic="delivery") == [a]
    assert ids(topic="price") == [c]
    assert ids(customer_id=survivor.id) == [a, b]  # with the merged customer's record
    assert ids(customer_id=merged.id) == [a, b]
    assert ids(since=NOW - 2.5 * day, until=NOW - 1.5 * day) == [b]
    rows, total = feedback.list_feedback(session, limit=1, offset=1)
    assert total == 3 and [r["id"] for r in rows] == [b]
    assert rows[0]["customer_name"] == "李雷" and rows[0]["type"] == "praise"
    for wrong in ({"channel": "fax"}, {"sentiment": "angry"}, {"topic": "x%"}, {"kind": "x"}):
        with pytest.raises(Invalid):
            feedback.list_feedback(session, **wrong)
    with pytest.raises(NotFound):
        feedback.get_feedback(session, 10**9)


def test_analysts_see_names_and_numbers_in_texts_masked():
    row = {"customer_name": "王小明", "text": "请回电 138-1234-5678 或 wang@example.com"}
    masked = feedback.record_view(row, mask=True)
    assert masked["customer_name"] == "王**"
    assert "138****5678" in masked["text"] and "w***@example.com" in masked["text"]
    assert "1234" not in masked["text"]
    assert feedback.record_view(row, mask=False) is row


# -- CSV import ---------------------------------------------------------------------------------


def test_a_csv_in_english_imports_rejects_bad_rows_and_skips_duplicates(session):
    clerk = make_user(session, "clerk", "staff")
    one = new_customer(session, "Ann", phone="13911112222", email="ann@example.com")
    two = new_customer(session, "Bob")
    data = (
        "customer_id,phone,email,channel,type,text,occurred_at\n"
        f"{two.id},,,email,praise,Lovely service and quick delivery,2024-05-01 10:00\n"
        ",139-1111-2222,,phone,complaint,The product broke after two days. Terrible.,2024-05-02\n"
        ",,ANN@example.com,web,question,Do you ship abroad?,\n"
        f"{two.id},,,fax,praise,hi,\n"
        f"{two.id},,,email,rant,hi,\n"
        ",,nobody@example.com,web,question,who am I?,\n"
        f"{two.id},,,email,praise,,\n"
        "abc,,,email,praise,hello,\n"
        f"{two.id},,,email,praise,time travel,2999-01-01\n"
        "\n"
    ).encode()
    result = feedback.import_feedback(session, data, filename="log.csv", actor=clerk)
    session.commit()
    assert (result.rows, result.imported, result.duplicates) == (9, 3, 0)
    assert [(r["line"], r["column"]) for r in result.rejected] == [
        (5, "channel"),
        (6, "type"),
        (7, "customer_id"),
        (8, "text"),
        (9, "customer_id"),
        (10, "occurred_at"),
    ]
    assert all(r["reason"] for r in result.rejected)
    records = {r.text: r for r in session.scalars(select(FeedbackRecord))}
    lovely = records["Lovely service and quick delivery"]
    assert lovely.customer_id == two.id and lovely.source == "import"
    assert lovely.occurred_at == dt.datetime(2024, 5, 1, 2, 0, tzinfo=dt.UTC)  # Shanghai time
    broke = records["The product broke after two days. Terrible."]
    assert broke.customer_id == one.id and broke.sentiment == "negative"
    assert records["Do you ship abroad?"].customer_id == one.id
    assert session.scalar(select(func.count()).select_from(Task)) == 1  # the complaint
    again = feedback.import_feedback(session, data, filename="log.csv", actor=clerk)
    assert (again.imported, again.duplicates, len(again.rejected)) == (0, 3, 6)
    assert session.scalar(select(func.count()).select_from(FeedbackRecord)) == 3
    [summary, _] = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "feedback.import").order_by(AuditEvent.id)
    )
    assert summary.after == {
        "filename": "log.csv",
        "rows": 9,
        "imported": 3,
        "duplicates": 0,
        "rejected": 6,
    }


def test_a_gbk_csv_with_chinese_headers_and_values_imports(session):
    customer = new_customer(session, "周杰", phone="13700001111")
    data = (
        "手机,渠道,类型,反馈内容,时间\n"
        "13700001111,微信,投诉,送货太慢了，非常失望,2024年3月5日 14:22\n"
        "13700001111,门店,表扬,店员很热情,2024/3/6\n"
    ).encode("gb18030")
    result = feedback.import_feedback(session, data, filename="反馈.csv", actor=None)
    assert (result.imported, result.rejected) == (2, [])
    rows = feedback.list_feedback(session, customer_id=customer.id)[0]
    assert [(r["channel"], r["type"], r["sentiment"]) for r in rows] == [
        ("store", "praise", "positive"),
        ("wechat", "complaint", "negative"),
    ]
    assert rows[1]["occurred_at"] == dt.datetime(2024, 3, 5, 6, 22, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("content", "column"),
    [
        (b"", None),
        (b"name,channel,type,text\nx,phone,praise,hi\n", "customer_id"),
        (b"customer_id,channel,text\n1,phone,hi\n", "type"),
        (b"\x00\x01\x02binary", None),
    ],
)
def test_a_file_without_the_needed_columns_is_refused_whole(session, content, column):
    with pytest.raises(InputError) as refused:
        feedback.import_feedback(session, content, filename="bad.csv", actor=None)
    assert "bad.csv" in str(refused.value)
    if column:
        assert refused.value.column == column
    assert session.scalar(select(func.count()).select_from(FeedbackRecord)) == 0


def test_the_business_topics_in_patron_toml_apply_to_saved_feedback(session, tmp_path, monkeypatch):
    config = tmp_path / "patron.toml"
    config.write_text('[feedback.topics]\nwarranty = ["保修", "warranty"]\n', "utf-8")
    monkeypatch.setenv("PATRON_CONFIG", str(config))
    customer = new_customer(session)
    staff = make_user(session, "kefu", "staff")
    record = feedback.record_feedback(
        session, customer.id, channel="phone", kind="question", text="保修期是多久？", actor=staff
    )
    assert "warranty" in record.topics
    # Edited while the server runs: read again, and a bad key is an error naming the file.
    config.write_text('[feedback]\npositve = ["赞"]\n', "utf-8")
    import os

    os.utime(config, (1, 1))
    with pytest.raises(InputError, match="patron.toml"):
        feedback.record_feedback(
            session, customer.id, channel="phone", kind="praise", text="很好", actor=staff
        )
