"""Identity resolution: when two records are one person, and folding one into the other.

A shop export, a POS and a WeChat mini-program each know the customer by their own id; the
normalised phone or email they share says it is one person. :func:`find_match` is that
rule (which keys count, and in which order, is configurable), and :func:`merge_customers`
carries it out: everything the merged record owns moves to the survivor, the merged row
stays behind pointing at it (old links and the audit trail still resolve), and the merge
is recorded so it can be listed and explained.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import delete, func, select, update

from patron.crm.contacts import normalise_email, normalise_phone
from patron.crm.services import audit
from patron.crm.services.errors import Conflict, Invalid, NotFound
from patron.crm.tables import (
    Customer,
    CustomerConsent,
    CustomerExternalId,
    CustomerMerge,
    CustomerTag,
    FeedbackRecord,
    Order,
    SurveyInvitation,
    SurveyResponse,
    Touchpoint,
)
from patron.i18n import _

if TYPE_CHECKING:
    from sqlalchemy.orm import InstrumentedAttribute, Session

    from patron.crm.tables import User

__all__ = [
    "MATCH_ON",
    "MATCH_FIELDS",
    "MERGE_RULES",
    "MOVED_COLUMNS",
    "Match",
    "match_on_setting",
    "match_customer",
    "find_match",
    "merge_customers",
    "list_merges",
]

#: The keys that make two records one person, tried in this order. Override per call with
#: ``match_on=``, or for the whole installation with ``PATRON_MATCH_ON`` (``"email,phone"``,
#: or ``"none"`` to switch automatic matching off).
MATCH_ON: tuple[str, ...] = ("phone", "email")
MATCH_FIELDS = ("phone", "email")
MERGE_RULES = ("phone", "email", "manual")

#: Columns holding a customer id that follow the customer into a merge, so the survivor's
#: 360, inbox and satisfaction see everything (the feedback queries also follow merges, for
#: rows written before this list held them). Tags and consents are not listed: they are
#: keyed by customer and need reconciling; points accounts merge in :mod:`.loyalty`. Tasks
#: stay: an open task's ``open_key`` names its customer (so a second survey answer finds
#: the task already open), and the inbox and the 360 find them through the merge.
MOVED_COLUMNS: list[InstrumentedAttribute[int]] = [
    Order.customer_id,
    Touchpoint.customer_id,
    CustomerExternalId.customer_id,
    SurveyInvitation.customer_id,
    SurveyResponse.customer_id,
    FeedbackRecord.customer_id,
]

#: Profile fields a survivor takes from the merged record when it has none of its own.
_FILLED = ("name", "phone", "email", "birthday", "gender", "region", "channel", "language")
_NORMALISED = {"phone": "phone_norm", "email": "email_norm"}


class Match(NamedTuple):
    """A customer found by the resolution rule, the rule that found it and the key."""

    customer: Customer
    rule: str
    key: str


def match_on_setting(match_on: Sequence[str] | None = None) -> tuple[str, ...]:
    """The keys to match on: ``match_on``, else ``PATRON_MATCH_ON``, else :data:`MATCH_ON`.

    Raises
    ------
    Invalid
        For a key other than ``phone`` or ``email``.
    """
    if match_on is None:
        configured = os.environ.get("PATRON_MATCH_ON", "").strip()
        if not configured:
            return MATCH_ON
        if configured.lower() == "none":
            return ()
        match_on = [part.strip() for part in configured.split(",") if part.strip()]
    fields = tuple(match_on)
    for name in fields:
        if name not in MATCH_FIELDS:
            raise Invalid(
                _("identity.bad_match_on", value=name, allowed=", ".join(MATCH_FIELDS)),
                field="match_on",
            )
    return fields


def match_customer(
    session: Session,
    *,
    phone: str | None = None,
    email: str | None = None,
    match_on: Sequence[str] | None = None,
    exclude_id: int | None = None,
) -> Match | None:
    """The customer this phone or email belongs to, with the rule and key that matched.

    Parameters
    ----------
    phone, email
        As entered; they are normalised here (``+86 138-0013-8000`` finds ``13800138000``).
    match_on
        The keys to try, in order (see :func:`match_on_setting`).
    exclude_id
        A customer to ignore (the one being edited, when checking its new phone).

    Returns
    -------
    Match or None
        The oldest customer that has not been merged away, by the first key that finds one.
    """
    keys = {"phone": normalise_phone(phone), "email": normalise_email(email)}
    for rule in match_on_setting(match_on):
        key = keys[rule]
        if key is None:
            continue
        column = getattr(Customer, _NORMALISED[rule])
        query = select(Customer).where(column == key, Customer.merged_into_id.is_(None))
        if exclude_id is not None:
            query = query.where(Customer.id != exclude_id)
        customer = session.scalars(query.order_by(Customer.id).limit(1)).first()
        if customer is not None:
            return Match(customer, rule, key)
    return None


def find_match(
    session: Session,
    *,
    phone: str | None = None,
    email: str | None = None,
    match_on: Sequence[str] | None = None,
) -> Customer | None:
    """The customer a record with this phone or email belongs to, or ``None``.

    The resolution rule of imports and of creating a customer: the normalised phone, then
    the normalised email (configurable, see :data:`MATCH_ON`); merged customers are never
    returned, their survivor is.
    """
    found = match_customer(session, phone=phone, email=email, match_on=match_on)
    return found.customer if found else None


def merge_customers(
    session: Session,
    survivor_id: int,
    merged_id: int,
    *,
    rule: str,
    key: str = "",
    batch_id: int | None = None,
    actor: User | None = None,
) -> CustomerMerge:
    """Fold customer ``merged_id`` into ``survivor_id``, in the caller's transaction.

    Orders, touchpoints, external ids (and every column in :data:`MOVED_COLUMNS`) move to
    the survivor; tags are united; for a consent channel both have, the more recent answer
    wins; profile fields the survivor lacks are taken from the merged record. The merged
    row stays, with ``merged_into_id`` set, and records merged into it earlier now point at
    the survivor, so every old id resolves in one step.

    Parameters
    ----------
    rule
        Why: ``"phone"`` or ``"email"`` (the resolution rule) or ``"manual"``.
    key
        The phone or email that matched, for the merge list.
    batch_id
        The import that found the match, if one did.
    actor
        Who merged (``None`` for an import run from the command line).

    Raises
    ------
    Invalid
        Merging a customer into itself, or an unknown rule.
    NotFound
        Either customer does not exist.
    Conflict
        Either customer has already been merged into another.
    """
    if rule not in MERGE_RULES:
        raise Invalid(
            _("identity.bad_rule", value=rule, allowed=", ".join(MERGE_RULES)), field="rule"
        )
    if survivor_id == merged_id:
        raise Invalid(
            _("identity.merge_self", id=survivor_id), field="merged_id", code="merge_self"
        )
    survivor, merged = _lock_pair(session, survivor_id, merged_id)
    for customer in (merged, survivor):
        if customer.merged_into_id is not None:
            raise Conflict(
                _("identity.already_merged", id=customer.id, into=customer.merged_into_id),
                field="merged_id" if customer is merged else "survivor_id",
                code="already_merged",
            )

    filled_before, filled_after = _fill_profile(survivor, merged)
    moved: dict[str, int] = {}
    for column in MOVED_COLUMNS:
        result = session.execute(
            update(column.class_)
            .where(column == merged.id)
            .values({column.key: survivor.id})
            .execution_options(synchronize_session="fetch")
        )
        moved[column.class_.__tablename__] = int(result.rowcount or 0)
    moved["customer_tags"] = _move_tags(session, survivor.id, merged.id)
    moved["customer_consents"] = _move_consents(session, survivor.id, merged.id)
    from patron.crm.services.loyalty import merge_accounts

    moved["loyalty_points"] = merge_accounts(session, survivor.id, merged.id, actor=actor)
    session.execute(
        update(Customer)
        .where(Customer.merged_into_id == merged.id)
        .values(merged_into_id=survivor.id)
        .execution_options(synchronize_session="fetch")
    )
    merged.merged_into_id = survivor.id

    merge = CustomerMerge(
        survivor_id=survivor.id,
        merged_id=merged.id,
        rule=rule,
        key=key or "",
        batch_id=batch_id,
        actor_id=actor.id if actor is not None else None,
    )
    session.add(merge)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="customer.merge",
        object_type="customer",
        object_id=survivor.id,
        before={"merged_id": merged.id, **filled_before},
        after={
            "merged_id": merged.id,
            "merge_id": merge.id,
            "rule": rule,
            "key": key or "",
            "moved": moved,
            **filled_after,
        },
    )
    return merge


def list_merges(
    session: Session,
    *,
    limit: int = 50,
    offset: int = 0,
    customer_id: int | None = None,
) -> tuple[list[CustomerMerge], int]:
    """Recorded merges, newest first, and how many there are in all.

    ``customer_id`` keeps the merges that customer took part in, on either side.
    """
    query = select(CustomerMerge)
    if customer_id is not None:
        query = query.where(
            (CustomerMerge.survivor_id == customer_id) | (CustomerMerge.merged_id == customer_id)
        )
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    page = query.order_by(CustomerMerge.id.desc()).limit(max(limit, 0)).offset(max(offset, 0))
    return list(session.scalars(page)), int(total or 0)


def _lock_pair(session: Session, survivor_id: int, merged_id: int) -> tuple[Customer, Customer]:
    # Rows are locked in primary-key order, so two merges of the same pair (or of pairs
    # sharing a customer) queue instead of deadlocking. SQLite ignores FOR UPDATE; its
    # BEGIN IMMEDIATE already serialises writers.
    query = (
        select(Customer)
        .where(Customer.id.in_((survivor_id, merged_id)))
        .order_by(Customer.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    found = {customer.id: customer for customer in session.scalars(query)}
    for customer_id in (survivor_id, merged_id):
        if customer_id not in found:
            raise NotFound(_("customers.not_found", id=customer_id), field="customer_id")
    return found[survivor_id], found[merged_id]


def _fill_profile(survivor: Customer, merged: Customer) -> tuple[dict[str, Any], dict[str, Any]]:
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name in (*_FILLED, "owner_id"):
        mine, theirs = getattr(survivor, name), getattr(merged, name)
        if mine in (None, "") and theirs not in (None, ""):
            before[name], after[name] = mine, theirs
            setattr(survivor, name, theirs)
            if name in _NORMALISED:
                setattr(survivor, _NORMALISED[name], getattr(merged, _NORMALISED[name]))
    return before, after


def _move_tags(session: Session, survivor_id: int, merged_id: int) -> int:
    mine = set(
        session.scalars(select(CustomerTag.tag).where(CustomerTag.customer_id == survivor_id))
    )
    theirs = set(
        session.scalars(select(CustomerTag.tag).where(CustomerTag.customer_id == merged_id))
    )
    new = sorted(theirs - mine)
    session.add_all(CustomerTag(customer_id=survivor_id, tag=tag) for tag in new)
    session.execute(
        delete(CustomerTag)
        .where(CustomerTag.customer_id == merged_id)
        .execution_options(synchronize_session="fetch")
    )
    return len(new)


def _move_consents(session: Session, survivor_id: int, merged_id: int) -> int:
    rows = session.scalars(
        select(CustomerConsent).where(CustomerConsent.customer_id.in_((survivor_id, merged_id)))
    ).all()
    mine = {row.channel: row for row in rows if row.customer_id == survivor_id}
    changed = 0
    for row in rows:
        if row.customer_id != merged_id:
            continue
        current = mine.get(row.channel)
        if current is None:
            session.add(
                CustomerConsent(
                    customer_id=survivor_id,
                    channel=row.channel,
                    granted=row.granted,
                    source=row.source,
                    updated_at=row.updated_at,
                )
            )
            changed += 1
        elif row.updated_at > current.updated_at:
            current.granted, current.source = row.granted, row.source
            current.updated_at = row.updated_at
            changed += 1
        session.delete(row)
    return changed
