"""Touchpoints: every contact with a customer, recorded by the staff who made it.

Channels and kinds are closed lists (:data:`~patron.crm.tables.TOUCHPOINT_CHANNELS`,
:data:`~patron.crm.tables.TOUCHPOINT_KINDS`) so contacts can be counted and compared, with
the free text in the note. Recording one is audited like any other change to a customer.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from patron.crm.services import audit
from patron.crm.services.customers import get_customer
from patron.crm.services.errors import Invalid
from patron.crm.tables import TOUCHPOINT_CHANNELS, TOUCHPOINT_KINDS, Touchpoint
from patron.crm.tables.base import utcnow
from patron.i18n import _

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from patron.crm.tables import User

__all__ = ["NOTE_LENGTH", "record_touchpoint", "list_touchpoints"]

#: Notes are for what was said, not for documents.
NOTE_LENGTH = 4000
#: How far ahead of now a contact may be dated: clocks of phones and tills drift.
_FUTURE_SLACK = dt.timedelta(days=1)


def record_touchpoint(
    session: Session,
    customer_id: int,
    *,
    channel: str,
    kind: str,
    note: str = "",
    occurred_at: dt.datetime | str | None = None,
    actor: User | None,
    ip: str | None = None,
) -> Touchpoint:
    """Record a contact with a customer, audited as ``touchpoint.create``.

    Parameters
    ----------
    customer_id
        The customer (a merged id records on its survivor).
    channel, kind
        From :data:`~patron.crm.tables.TOUCHPOINT_CHANNELS` and
        :data:`~patron.crm.tables.TOUCHPOINT_KINDS`.
    occurred_at
        When it happened (an aware datetime or ISO 8601 text with an offset); now by
        default. A time without a zone is refused: the service cannot guess whose
        clock it was read from.
    actor
        The staff member who made the contact (``None`` for an import).

    Raises
    ------
    NotFound
        No such customer.
    Invalid
        An unknown channel or kind, a note too long, or an unusable time.
    """
    if channel not in TOUCHPOINT_CHANNELS:
        raise Invalid(
            _("touchpoints.bad_channel", value=channel, allowed=", ".join(TOUCHPOINT_CHANNELS)),
            field="channel",
        )
    if kind not in TOUCHPOINT_KINDS:
        raise Invalid(
            _("touchpoints.bad_kind", value=kind, allowed=", ".join(TOUCHPOINT_KINDS)),
            field="kind",
        )
    note = (note or "").strip()
    if len(note) > NOTE_LENGTH:
        raise Invalid(_("touchpoints.note_too_long", max=NOTE_LENGTH), field="note")
    when = _occurred_at(occurred_at)
    customer = get_customer(session, customer_id)
    touchpoint = Touchpoint(
        customer_id=customer.id,
        channel=channel,
        kind=kind,
        occurred_at=when,
        note=note,
        staff_id=actor.id if actor is not None else None,
    )
    session.add(touchpoint)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="touchpoint.create",
        object_type="touchpoint",
        object_id=touchpoint.id,
        after={
            "customer_id": customer.id,
            "channel": channel,
            "kind": kind,
            "occurred_at": when,
            "note": note,
        },
        ip=ip,
    )
    return touchpoint


def list_touchpoints(
    session: Session, customer_id: int, *, limit: int = 50, offset: int = 0
) -> tuple[list[Touchpoint], int]:
    """A customer's contacts, newest first, and how many there are in all.

    Raises
    ------
    NotFound
        No such customer.
    """
    customer = get_customer(session, customer_id)
    where = Touchpoint.customer_id == customer.id
    total = session.scalar(select(func.count()).select_from(Touchpoint).where(where))
    page = (
        select(Touchpoint)
        .where(where)
        .order_by(Touchpoint.occurred_at.desc(), Touchpoint.id.desc())
        .limit(max(limit, 0))
        .offset(max(offset, 0))
    )
    return list(session.scalars(page)), int(total or 0)


def _occurred_at(value: dt.datetime | str | None) -> dt.datetime:
    now = utcnow()
    if value is None:
        return now
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise Invalid(_("touchpoints.bad_time", value=value), field="occurred_at") from None
    if not isinstance(value, dt.datetime):
        raise Invalid(_("touchpoints.bad_time", value=value), field="occurred_at")
    if value.tzinfo is None:
        raise Invalid(_("touchpoints.naive_time", value=value.isoformat()), field="occurred_at")
    value = value.astimezone(dt.UTC)
    if value > now + _FUTURE_SLACK:
        raise Invalid(_("touchpoints.future_time", value=value.isoformat()), field="occurred_at")
    return value
