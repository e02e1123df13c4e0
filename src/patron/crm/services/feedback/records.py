"""Feedback records: what customers told staff by phone, WeChat, email, in store or online.

Each record is analysed for sentiment and topics when it is saved (and the facts stored
with it), so lists filter on them and metrics count them without reading text again. A
complaint that reads negative opens a follow-up task in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, cast, func, select

from patron.crm.contacts import mask_name
from patron.crm.services import audit
from patron.crm.services.customers import get_customer
from patron.crm.services.errors import Invalid, NotFound
from patron.crm.services.feedback import followup
from patron.crm.services.feedback.text import analyse
from patron.crm.tables import (
    FEEDBACK_CHANNELS,
    FEEDBACK_KINDS,
    Customer,
    FeedbackRecord,
    Task,
    User,
)
from patron.crm.tables.base import utcnow
from patron.crm.tables.feedback import SENTIMENTS
from patron.i18n import LANGUAGES, _

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "TEXT_LENGTH",
    "record_feedback",
    "get_feedback",
    "list_feedback",
    "record_view",
    "check_language",
    "parse_time",
]

#: Feedback is what a customer said, not a document.
TEXT_LENGTH = 4000
_FUTURE_SLACK = dt.timedelta(days=1)
_TOPIC = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def record_feedback(
    session: Session,
    customer_id: int,
    *,
    channel: str,
    kind: str,
    text: str,
    occurred_at: dt.datetime | str | None = None,
    language: str | None = None,
    actor: User | None,
    source: str = "staff",
    import_key: str | None = None,
    ip: str | None = None,
) -> FeedbackRecord:
    """Save a piece of feedback, analysed; audited as ``feedback.create``.

    Parameters
    ----------
    customer_id
        Whose feedback (a merged id records on its survivor).
    channel, kind
        From :data:`~patron.crm.tables.FEEDBACK_CHANNELS` and
        :data:`~patron.crm.tables.FEEDBACK_KINDS` (complaint, suggestion, praise, question).
    text
        What the customer said, at most :data:`TEXT_LENGTH` characters.
    occurred_at
        When it was said (aware datetime or ISO 8601 text with an offset); now by default.
    language
        ``zh-CN`` or ``en``; detected from the text when not given.
    actor
        Who wrote it down (``None`` for a command-line import).
    source, import_key
        ``staff`` or ``import``; an import passes the row's digest, which is unique.

    Raises
    ------
    NotFound
        No such customer.
    Invalid
        An unknown channel, type or language, an empty or too long text, an unusable time.
    """
    channel, kind = check_choice(channel, kind)
    text = (text or "").strip() if isinstance(text, str) else text
    if not isinstance(text, str) or not text:
        raise Invalid(_("feedback_records.text_required"), field="text")
    if len(text) > TEXT_LENGTH:
        raise Invalid(_("feedback_records.text_too_long", max=TEXT_LENGTH), field="text")
    language = check_language(language)
    when = parse_time(occurred_at)
    customer = get_customer(session, customer_id)
    facts = analyse(text, language)
    record = FeedbackRecord(
        customer_id=customer.id,
        channel=channel,
        kind=kind,
        text=text,
        language=facts.language,
        sentiment=facts.sentiment,
        sentiment_score=facts.score,
        topics=facts.topics,
        occurred_at=when,
        source=source,
        import_key=import_key,
        staff_id=actor.id if actor is not None else None,
    )
    session.add(record)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="feedback.create",
        object_type="feedback",
        object_id=record.id,
        after={
            "customer_id": customer.id,
            "channel": channel,
            "type": kind,
            "text": text,
            "occurred_at": when,
            "sentiment": facts.sentiment,
            "topics": facts.topics,
            "source": source,
        },
        ip=ip,
    )
    followup.open_for_record(session, record, actor)
    return record


def check_choice(channel: Any, kind: Any) -> tuple[str, str]:
    """``channel`` and ``kind`` if both are known codes; :class:`Invalid` naming the field."""
    if channel not in FEEDBACK_CHANNELS:
        raise Invalid(
            _("feedback_records.bad_channel", value=channel, allowed=", ".join(FEEDBACK_CHANNELS)),
            field="channel",
        )
    if kind not in FEEDBACK_KINDS:
        raise Invalid(
            _("feedback_records.bad_type", value=kind, allowed=", ".join(FEEDBACK_KINDS)),
            field="type",
        )
    return channel, kind


def check_language(language: Any) -> str | None:
    """``zh-CN``/``en`` (``zh``, ``zh_cn``, ``en-GB`` accepted), ``None`` to detect."""
    if language is None or (isinstance(language, str) and not language.strip()):
        return None
    code = str(language).strip().replace("_", "-").lower()
    for lang in LANGUAGES:
        if code == lang.lower() or code.split("-")[0] == lang.split("-")[0].lower():
            return lang
    raise Invalid(
        _("feedback_records.bad_language", value=language, allowed=", ".join(LANGUAGES)),
        field="language",
    )


def parse_time(value: dt.datetime | str | None, *, field: str = "occurred_at") -> dt.datetime:
    """An aware UTC time from a datetime or ISO text; now for ``None``; never in the future."""
    now = utcnow()
    if value is None or (isinstance(value, str) and not value.strip()):
        return now
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise Invalid(_("feedback_records.bad_time", value=value), field=field) from None
    if not isinstance(value, dt.datetime):
        raise Invalid(_("feedback_records.bad_time", value=value), field=field)
    if value.tzinfo is None or value.utcoffset() is None:
        raise Invalid(_("feedback_records.naive_time", value=value.isoformat()), field=field)
    value = value.astimezone(dt.UTC)
    if value > now + _FUTURE_SLACK:
        raise Invalid(_("feedback_records.future_time", value=value.isoformat()), field=field)
    return value


def get_feedback(session: Session, record_id: int) -> dict[str, Any]:
    """One record as a dict (see :func:`list_feedback`); :class:`NotFound` if there is none."""
    rows, _total = list_feedback(session, record_id=record_id, limit=1)
    if not rows:
        raise NotFound(_("feedback_records.not_found", id=record_id), field="feedback_id")
    return rows[0]


def list_feedback(
    session: Session,
    *,
    customer_id: int | None = None,
    channel: str | None = None,
    kind: str | None = None,
    sentiment: str | None = None,
    topic: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    record_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Feedback matching every filter given, newest first, and how many match in all.

    ``customer_id`` includes the records of customers merged into that one. Each item has
    ``id, customer_id, customer_name, channel, type, text, language, sentiment,
    sentiment_score, topics, occurred_at, source, staff_id, staff_name, created_at,
    task_id`` (the follow-up task it opened, if any).

    Raises
    ------
    Invalid
        An unknown channel, type, sentiment or a malformed topic code.
    """
    where = []
    if customer_id is not None:
        where.append(FeedbackRecord.customer_id.in_(customer_ids(session, customer_id)))
    if channel:
        check_choice(channel, FEEDBACK_KINDS[0])
        where.append(FeedbackRecord.channel == channel)
    if kind:
        check_choice(FEEDBACK_CHANNELS[0], kind)
        where.append(FeedbackRecord.kind == kind)
    if sentiment:
        if sentiment not in SENTIMENTS:
            raise Invalid(
                _("feedback_records.bad_sentiment", value=sentiment, allowed=", ".join(SENTIMENTS)),
                field="sentiment",
            )
        where.append(FeedbackRecord.sentiment == sentiment)
    if topic:
        if not _TOPIC.match(topic):
            raise Invalid(_("feedback_records.bad_topic", value=topic), field="topic")
        # Topic codes are plain identifiers, so the quoted code is found in the JSON text
        # the same way on SQLite and PostgreSQL.
        where.append(cast(FeedbackRecord.topics, String).like(f'%"{topic}"%'))
    if since is not None:
        where.append(FeedbackRecord.occurred_at >= since)
    if until is not None:
        where.append(FeedbackRecord.occurred_at < until)
    if record_id is not None:
        where.append(FeedbackRecord.id == record_id)
    total = session.scalar(select(func.count()).select_from(FeedbackRecord).where(*where))
    staff = select(User.id, User.username, User.display_name).subquery()
    query = (
        select(FeedbackRecord, Customer.name, staff.c.display_name, staff.c.username)
        .join(Customer, Customer.id == FeedbackRecord.customer_id)
        .outerjoin(staff, staff.c.id == FeedbackRecord.staff_id)
        .where(*where)
        .order_by(FeedbackRecord.occurred_at.desc(), FeedbackRecord.id.desc())
        .limit(max(limit, 0))
        .offset(max(offset, 0))
    )
    rows = session.execute(query).all()
    tasks = _tasks(session, [row[0].id for row in rows])
    items = [
        _record_dict(record, name, display or username, tasks.get(record.id))
        for record, name, display, username in rows
    ]
    return items, int(total or 0)


def customer_ids(session: Session, customer_id: int) -> list[int]:
    """The customer's id (its survivor's, if merged) and every id merged into it."""
    survivor = get_customer(session, customer_id)
    merged = session.scalars(select(Customer.id).where(Customer.merged_into_id == survivor.id))
    return [survivor.id, *merged]


def _tasks(session: Session, record_ids: list[int]) -> dict[int, int]:
    if not record_ids:
        return {}
    rows = session.execute(
        select(Task.source_id, func.max(Task.id))
        .where(Task.source_type == "feedback", Task.source_id.in_([str(i) for i in record_ids]))
        .group_by(Task.source_id)
    ).all()
    return {int(source): int(task_id) for source, task_id in rows}


def _record_dict(
    record: FeedbackRecord, customer_name: str | None, staff_name: str | None, task_id: int | None
) -> dict[str, Any]:
    return {
        "id": record.id,
        "customer_id": record.customer_id,
        "customer_name": customer_name or "",
        "channel": record.channel,
        "type": record.kind,
        "text": record.text,
        "language": record.language,
        "sentiment": record.sentiment,
        "sentiment_score": record.sentiment_score,
        "topics": list(record.topics or ()),
        "occurred_at": record.occurred_at,
        "source": record.source,
        "staff_id": record.staff_id,
        "staff_name": staff_name,
        "created_at": record.created_at,
        "task_id": task_id,
    }


def record_view(d: dict[str, Any], *, mask: bool) -> dict[str, Any]:
    """A record (or response) dict as a user may see it: the name and numbers masked.

    Customers write phone numbers and emails into complaints, so the text is masked
    the same way as a touchpoint note (:func:`patron.crm.services.views.mask_text`).

    >>> record_view({"customer_name": "张三丰", "text": "call 13812345678"}, mask=True)
    {'customer_name': '张**', 'text': 'call 138****5678'}
    """
    if not mask:
        return d
    from patron.crm.services.views import mask_text

    out = dict(d)
    if "customer_name" in out:
        out["customer_name"] = mask_name(out["customer_name"]) or ""
    for key in ("text", "comment"):
        if out.get(key):
            out[key] = mask_text(out[key])
    return out
