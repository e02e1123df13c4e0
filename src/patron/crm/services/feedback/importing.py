"""Importing feedback from a CSV export (a call-centre log, a WeChat service export).

One row per piece of feedback; the header names the columns in English or Chinese:

- the customer: ``customer_id`` (客户编号), or ``phone`` (手机), or ``email`` (邮箱);
- ``channel`` (渠道): phone/电话, wechat/微信, email/邮件, store/门店, web/网站;
- ``type`` (类型): complaint/投诉, suggestion/建议, praise/表扬, question/咨询;
- ``text`` (内容, 反馈);
- optional ``occurred_at`` (时间, 日期) in the forms shops write (a time without a zone is
  the shop's wall-clock time) and ``language`` (语言).

Rows that cannot be used are reported with their line, column and reason, never dropped
silently; the rest land, each analysed and audited like a record typed by staff. A row
already imported (same customer, channel, type, time and text) is counted as a duplicate
and skipped, so importing the same file twice adds nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from patron.crm.contacts import normalise_email, normalise_phone
from patron.crm.services import audit
from patron.crm.services.errors import Invalid, NotFound
from patron.crm.services.feedback.records import record_feedback
from patron.crm.services.identity import find_match
from patron.crm.tables import FeedbackRecord
from patron.errors import InputError
from patron.i18n import _

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from patron.crm.tables import User

__all__ = ["MAX_ROWS", "COLUMNS", "ImportResult", "import_feedback"]

MAX_ROWS = 50_000
DEFAULT_TIMEZONE = "Asia/Shanghai"

#: Header names (lower-cased, spaces and underscores removed) of each field.
COLUMNS: dict[str, tuple[str, ...]] = {
    "customer_id": ("customerid", "customer", "客户编号", "客户id", "客户号"),
    "phone": ("phone", "mobile", "手机", "手机号", "电话", "电话号码"),
    "email": ("email", "mail", "邮箱", "电子邮件", "邮件地址"),
    "channel": ("channel", "渠道", "来源渠道"),
    "type": ("type", "kind", "类型", "反馈类型"),
    "text": ("text", "feedback", "content", "comment", "内容", "反馈", "反馈内容"),
    "occurred_at": ("occurredat", "date", "time", "datetime", "时间", "日期", "反馈时间"),
    "language": ("language", "lang", "语言"),
}

_CHANNELS = {
    "电话": "phone",
    "微信": "wechat",
    "邮件": "email",
    "邮箱": "email",
    "电子邮件": "email",
    "门店": "store",
    "店铺": "store",
    "网站": "web",
    "网页": "web",
    "官网": "web",
}
_KINDS = {
    "投诉": "complaint",
    "建议": "suggestion",
    "表扬": "praise",
    "好评": "praise",
    "咨询": "question",
    "问题": "question",
    "提问": "question",
}
_ZONE = re.compile(r"(Z|[+-]\d{2}(:?\d{2})?)$")


@dataclass
class ImportResult:
    """What one import did: rows read, records made, duplicates skipped, rows refused."""

    filename: str
    rows: int = 0
    imported: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    record_ids: list[int] = field(default_factory=list)


def import_feedback(
    session: Session,
    data: bytes,
    *,
    filename: str = "feedback.csv",
    actor: User | None,
    timezone: str = DEFAULT_TIMEZONE,
) -> ImportResult:
    """Import every usable row of a feedback CSV (UTF-8, UTF-8 BOM or GB18030).

    Raises
    ------
    InputError
        The file is not text, has no header, lacks a required column, or has more than
        :data:`MAX_ROWS` rows (nothing is imported then).
    """
    from patron.ingest.delimited import decode

    text = decode(data, filename)[0].decode("utf-8")
    sample = text[:8192]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = next(reader, None)
    if not header or not any(cell.strip() for cell in header):
        raise InputError(_("feedback_records.import_empty", file=filename), file=filename)
    positions = _columns(header, filename)
    zone = ZoneInfo(timezone)
    result = ImportResult(filename)
    seen: set[str] = set()
    for line, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        result.rows += 1
        if result.rows > MAX_ROWS:
            raise InputError(
                _("feedback_records.import_too_many", file=filename, max=MAX_ROWS), file=filename
            )
        values = {
            name: (cells[i].strip() if i < len(cells) else "") for name, i in positions.items()
        }
        try:
            with session.begin_nested():
                record = _import_row(session, values, zone, seen, actor)
        except (Invalid, NotFound) as refusal:
            result.rejected.append(
                {
                    "line": line,
                    "column": refusal.field,
                    "reason": refusal.message,
                    "value": _cell(values, refusal.field),
                }
            )
            continue
        if record is None:
            result.duplicates += 1
        else:
            result.imported += 1
            result.record_ids.append(record.id)
    audit.record(
        session,
        actor=actor,
        action="feedback.import",
        object_type="feedback",
        object_id=None,
        after={
            "filename": filename,
            "rows": result.rows,
            "imported": result.imported,
            "duplicates": result.duplicates,
            "rejected": len(result.rejected),
        },
    )
    return result


def _cell(values: dict[str, str], field: str | None) -> str:
    """The cell a refusal is about (the services name fields as the file's columns)."""
    if field == "customer_id":
        return values.get("customer_id") or values.get("phone") or values.get("email") or ""
    return values.get(field or "", "")


def _columns(header: list[str], filename: str) -> dict[str, int]:
    names = {_key(cell): i for i, cell in reversed(list(enumerate(header)))}
    positions = {}
    for name, spellings in COLUMNS.items():
        for spelling in spellings:
            if spelling in names:
                positions[name] = names[spelling]
                break
    if not {"customer_id", "phone", "email"} & positions.keys():
        raise InputError(
            _("feedback_records.import_no_customer", file=filename),
            file=filename,
            column="customer_id",
        )
    for required in ("channel", "type", "text"):
        if required not in positions:
            raise InputError(
                _("feedback_records.import_missing_column", file=filename, column=required),
                file=filename,
                column=required,
            )
    return positions


def _key(cell: str) -> str:
    return re.sub(r"[\s_\-]+", "", cell.strip().lstrip("\ufeff").lower())


def _import_row(
    session: Session, values: dict[str, str], zone: ZoneInfo, seen: set[str], actor: User | None
) -> FeedbackRecord | None:
    customer_id = _customer(session, values)
    channel = _code(values["channel"], _CHANNELS)
    kind = _code(values["type"], _KINDS)
    when = _time(values.get("occurred_at", ""), zone)
    text = values["text"]
    digest = hashlib.sha256(
        "\x1f".join([str(customer_id), channel, kind, values.get("occurred_at", ""), text]).encode(
            "utf-8"
        )
    ).hexdigest()
    if digest in seen or session.scalar(
        select(FeedbackRecord.id).where(FeedbackRecord.import_key == digest)
    ):
        return None
    seen.add(digest)
    return record_feedback(
        session,
        customer_id,
        channel=channel,
        kind=kind,
        text=text,
        occurred_at=when,
        language=values.get("language") or None,
        actor=actor,
        source="import",
        import_key=digest,
    )


def _customer(session: Session, values: dict[str, str]) -> int:
    raw = values.get("customer_id", "")
    if raw:
        if not raw.isdigit() or len(raw) > 18:
            raise Invalid(_("feedback_records.bad_customer", value=raw), field="customer_id")
        return int(raw)
    phone, email = values.get("phone", ""), values.get("email", "")
    if not (normalise_phone(phone) or normalise_email(email)):
        raise Invalid(_("feedback_records.import_no_customer_value"), field="customer_id")
    found = find_match(
        session, phone=phone or None, email=email or None, match_on=("phone", "email")
    )
    if found is None:
        raise NotFound(
            _("feedback_records.import_unknown_customer", value=phone or email), field="customer_id"
        )
    return found.id


def _code(value: str, chinese: dict[str, str]) -> str:
    return chinese.get(value.strip(), value.strip().lower())


def _time(value: str, zone: ZoneInfo) -> dt.datetime | None:
    if not value:
        return None
    from patron.ingest.dates import DateParseError, parse_date

    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = parse_date(value)
        except DateParseError:
            raise Invalid(
                _("feedback_records.bad_time", value=value), field="occurred_at"
            ) from None
        if _ZONE.search(value):  # parse_date gave the UTC time of a zoned value
            return parsed.replace(tzinfo=dt.UTC)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(dt.UTC)
