"""Customers: create, change and look up one, search many, and the 360 of one.

Every change is validated here, not in the routes, so the API, the pages and the command
line refuse the same things with the same messages, and every change is audited with the
values before and after. A phone or email that already belongs to a customer is a
conflict naming that customer: the caller should open it, not create a second record of
the same person.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from patron.crm.contacts import normalise_email, normalise_phone
from patron.crm.services import audit
from patron.crm.services import customer_360 as _customer_360
from patron.crm.services.customer_dicts import PROFILE_FIELDS, customer_dict
from patron.crm.services.customer_search import search_customers  # re-exported
from patron.crm.services.errors import Conflict, Invalid, NotFound
from patron.crm.services.identity import match_customer
from patron.crm.tables import (
    CONSENT_CHANNELS,
    Customer,
    CustomerConsent,
    CustomerExternalId,
    CustomerTag,
    User,
)
from patron.crm.tables.base import utcnow
from patron.i18n import LANGUAGES, _

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "GENDERS",
    "PROFILE_FIELDS",
    "create_customer",
    "update_customer",
    "get_customer",
    "search_customers",
    "customer_360",
    "customer_360_async",
]

GENDERS = ("female", "male", "other")
_LENGTHS = {"name": 128, "region": 64, "channel": 32, "phone": 32, "email": 255}
_TAG_LENGTH = 64
_SOURCE_LENGTH, _EXTERNAL_ID_LENGTH = 64, 128
#: Merges form chains only through bugs or hand edits; never follow one forever.
_MAX_HOPS = 16


def create_customer(
    session: Session,
    *,
    actor: User | None,
    name: str = "",
    phone: str | None = None,
    email: str | None = None,
    birthday: dt.date | str | None = None,
    gender: str | None = None,
    region: str | None = None,
    channel: str | None = None,
    language: str | None = None,
    owner_id: int | None = None,
    tags: Iterable[str] = (),
    consents: Mapping[str, bool | None] | None = None,
    external_ids: Mapping[str, str] | None = None,
    consent_source: str = "crm",
    ip: str | None = None,
) -> Customer:
    """Add a customer, audited as ``customer.create``.

    Parameters
    ----------
    phone, email
        Kept as entered for display and normalised for search and matching; a value that
        cannot be a phone or an email is refused.
    birthday
        A date or an ISO ``YYYY-MM-DD`` string.
    tags
        Labels; blanks are dropped and duplicates kept once.
    consents
        Marketing consent per channel (:data:`~patron.crm.tables.CONSENT_CHANNELS`).
    external_ids
        ``{source system: id there}``.
    consent_source
        Where the consents were given, stored beside them.

    Raises
    ------
    Invalid
        A field that cannot be used (``.field`` names it).
    Conflict
        The normalised phone or email, or an external id, already belongs to a customer;
        the message names it and ``.existing_id`` holds its id.
    """
    values = _profile(
        session,
        {
            "name": name,
            "phone": phone,
            "email": email,
            "birthday": birthday,
            "gender": gender,
            "region": region,
            "channel": channel,
            "language": language,
            "owner_id": owner_id,
        },
    )
    _check_unique_contacts(session, values.get("phone"), values.get("email"))
    clean_tags = _tags(tags)
    clean_consents = _consents(consents or {})
    clean_ids = _external_ids(session, external_ids or {})

    customer = Customer(**values)
    session.add(customer)
    session.flush()
    session.add_all(CustomerTag(customer_id=customer.id, tag=tag) for tag in clean_tags)
    session.add_all(
        CustomerConsent(customer_id=customer.id, channel=ch, granted=granted, source=consent_source)
        for ch, granted in clean_consents.items()
        if granted is not None
    )
    session.add_all(
        CustomerExternalId(customer_id=customer.id, source=source, external_id=ext)
        for source, ext in clean_ids.items()
    )
    session.flush()
    after = {k: v for k, v in customer_dict(customer).items() if v not in (None, "")}
    after.update(tags=clean_tags, consents=clean_consents, external_ids=clean_ids)
    audit.record(
        session,
        actor=actor,
        action="customer.create",
        object_type="customer",
        object_id=customer.id,
        after=after,
        ip=ip,
    )
    return customer


def update_customer(
    session: Session,
    customer_id: int,
    changes: Mapping[str, Any],
    *,
    actor: User | None,
    consent_source: str = "crm",
    ip: str | None = None,
) -> Customer:
    """Change a customer's profile, tags or consents, audited as ``customer.update``.

    Parameters
    ----------
    changes
        Any of :data:`PROFILE_FIELDS` (``None`` or ``""`` clears an optional field),
        ``"tags"`` (the new list, replacing the old) and ``"consents"``
        (``{channel: True | False | None}``; ``None`` forgets the answer). Only what
        actually changes is written and audited.

    Returns
    -------
    Customer
        The customer changed (the survivor, when ``customer_id`` was merged away).

    Raises
    ------
    NotFound, Invalid, Conflict
        As :func:`create_customer`, and for an unknown field name.
    """
    customer = get_customer(session, customer_id)
    unknown = set(changes) - {*PROFILE_FIELDS, "tags", "consents"}
    if unknown:
        field = sorted(unknown)[0]
        raise Invalid(_("customers.unknown_field", field=field), field=field)
    profile = _profile(session, {k: v for k, v in changes.items() if k in PROFILE_FIELDS})
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name, value in profile.items():
        if name.endswith("_norm"):
            continue
        if getattr(customer, name) != value:
            before[name], after[name] = getattr(customer, name), value
    if "phone" in after or "email" in after:
        _check_unique_contacts(
            session,
            after.get("phone"),
            after.get("email"),
            exclude_id=customer.id,
        )
    for name in after:
        setattr(customer, name, after[name])
        if name in ("phone", "email"):
            setattr(customer, f"{name}_norm", profile[f"{name}_norm"])

    if "tags" in changes:
        _replace_tags(session, customer.id, _tags(changes["tags"] or ()), before, after)
    if "consents" in changes:
        _apply_consents(
            session,
            customer.id,
            _consents(changes["consents"] or {}),
            consent_source,
            before,
            after,
        )
    if not after:
        return customer
    customer.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="customer.update",
        object_type="customer",
        object_id=customer.id,
        before=before,
        after=after,
        ip=ip,
    )
    return customer


def get_customer(session: Session, customer_id: int) -> Customer:
    """The customer with this id; an id merged away resolves to its survivor.

    Raises
    ------
    NotFound
        No customer has this id.
    """
    seen = 0
    current = customer_id
    while True:
        customer = session.get(Customer, current) if _is_id(current) else None
        if customer is None:
            raise NotFound(_("customers.not_found", id=customer_id), field="customer_id")
        if customer.merged_into_id is None or seen >= _MAX_HOPS:
            return customer
        current, seen = customer.merged_into_id, seen + 1


def customer_360(
    session: Session, customer_id: int, *, orders_limit: int = 50, touchpoints_limit: int = 50
) -> dict[str, Any]:
    """Everything about one customer on one page (a merged id shows its survivor).

    See :func:`patron.crm.services.customer_360.build`. On PostgreSQL the same dict comes
    from one statement (:func:`~patron.crm.services.customer_360.build_on_postgresql`).

    Raises
    ------
    NotFound
        No customer has this id.
    """
    if session.get_bind().dialect.name == "postgresql":
        record = None
        if _is_id(customer_id):
            record = _customer_360.build_on_postgresql(
                session,
                customer_id,
                orders_limit=orders_limit,
                touchpoints_limit=touchpoints_limit,
                max_hops=_MAX_HOPS,
            )
        if record is None:
            raise NotFound(_("customers.not_found", id=customer_id), field="customer_id")
        return record
    customer = get_customer(session, customer_id)
    return _customer_360.build(
        session, customer, orders_limit=orders_limit, touchpoints_limit=touchpoints_limit
    )


async def customer_360_async(connection: Any, customer_id: int) -> dict[str, Any]:
    """:func:`customer_360` on PostgreSQL, awaited on a psycopg async connection.

    For a pool whose connections are in autocommit with raw cursors
    (:mod:`patron.web.pg_pools`); the same dict, and the same :class:`NotFound`.
    """
    record = None
    if _is_id(customer_id):
        record = await _customer_360.build_on_postgresql_async(
            connection, customer_id, orders_limit=50, touchpoints_limit=50, max_hops=_MAX_HOPS
        )
    if record is None:
        raise NotFound(_("customers.not_found", id=customer_id), field="customer_id")
    return record


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63


def _profile(session: Session, values: Mapping[str, Any]) -> dict[str, Any]:
    """Validated, cleaned profile values, with ``phone_norm``/``email_norm`` beside them."""
    clean: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, str):
            value = value.strip() or None
        if value is not None and name in _LENGTHS and not isinstance(value, str):
            raise Invalid(_("customers.bad_value", field=name), field=name)
        if isinstance(value, str) and len(value) > _LENGTHS.get(name, 10**9):
            raise Invalid(_("customers.too_long", field=name, max=_LENGTHS[name]), field=name)
        clean[name] = value
    if "name" in clean and clean["name"] is None:
        clean["name"] = ""
    if "phone" in clean:
        clean["phone_norm"] = normalise_phone(clean["phone"])
        if clean["phone"] is not None and clean["phone_norm"] is None:
            raise Invalid(_("customers.bad_phone", value=clean["phone"]), field="phone")
    if "email" in clean:
        clean["email_norm"] = normalise_email(clean["email"])
        if clean["email"] is not None and clean["email_norm"] is None:
            raise Invalid(_("customers.bad_email", value=clean["email"]), field="email")
    if clean.get("birthday") is not None:
        clean["birthday"] = _birthday(clean["birthday"])
    if clean.get("gender") is not None:
        gender = str(clean["gender"]).lower()
        if gender not in GENDERS:
            raise Invalid(
                _("customers.bad_gender", value=clean["gender"], allowed=", ".join(GENDERS)),
                field="gender",
            )
        clean["gender"] = gender
    if clean.get("language") is not None:
        clean["language"] = _language(clean["language"])
    if clean.get("owner_id") is not None:
        owner = clean["owner_id"]
        if not _is_id(owner) or session.get(User, owner) is None:
            raise Invalid(_("customers.bad_owner", id=owner), field="owner_id")
    return clean


def _birthday(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        raise Invalid(_("customers.bad_birthday", value=value), field="birthday")
    if isinstance(value, dt.date):
        day = value
    else:
        try:
            day = dt.date.fromisoformat(str(value))
        except ValueError:
            raise Invalid(_("customers.bad_birthday", value=value), field="birthday") from None
    if not dt.date(1900, 1, 1) <= day <= dt.date.today():
        raise Invalid(_("customers.bad_birthday", value=value), field="birthday")
    return day


def _language(value: Any) -> str:
    text = str(value).replace("_", "-").lower()
    for lang in LANGUAGES:
        if text == lang.lower() or text.split("-")[0] == lang.split("-")[0].lower():
            return lang
    raise Invalid(
        _("customers.bad_language", value=value, allowed=", ".join(LANGUAGES)), field="language"
    )


def _tags(tags: Iterable[str] | str) -> list[str]:
    if isinstance(tags, str):
        tags = [tags]
    clean: list[str] = []
    for tag in tags:
        if not isinstance(tag, str):
            raise Invalid(_("customers.bad_tag", value=tag), field="tags")
        tag = tag.strip()
        if len(tag) > _TAG_LENGTH:
            raise Invalid(_("customers.too_long", field="tags", max=_TAG_LENGTH), field="tags")
        if tag and tag not in clean:
            clean.append(tag)
    return clean


def _consents(consents: Mapping[str, Any]) -> dict[str, bool | None]:
    if not isinstance(consents, Mapping):
        raise Invalid(_("customers.bad_consents"), field="consents")
    clean: dict[str, bool | None] = {}
    for channel, granted in consents.items():
        if channel not in CONSENT_CHANNELS:
            raise Invalid(
                _(
                    "customers.bad_consent_channel",
                    value=channel,
                    allowed=", ".join(CONSENT_CHANNELS),
                ),
                field="consents",
            )
        if granted is not None and not isinstance(granted, bool):
            raise Invalid(_("customers.bad_consents"), field="consents")
        clean[channel] = granted
    return clean


def _external_ids(session: Session, external_ids: Mapping[str, Any]) -> dict[str, str]:
    clean: dict[str, str] = {}
    for source, ext in external_ids.items():
        source, ext = str(source).strip(), str(ext if ext is not None else "").strip()
        if not source or not ext or len(source) > _SOURCE_LENGTH or len(ext) > _EXTERNAL_ID_LENGTH:
            raise Invalid(
                _("customers.bad_external_id", source=source, value=ext), field="external_ids"
            )
        owner = session.scalar(
            select(CustomerExternalId.customer_id).where(
                CustomerExternalId.source == source, CustomerExternalId.external_id == ext
            )
        )
        if owner is not None:
            error = Conflict(
                _("customers.duplicate_external_id", source=source, value=ext, id=owner),
                field="external_ids",
                code="duplicate_customer",
            )
            error.existing_id = owner
            raise error
        clean[source] = ext
    return clean


def _check_unique_contacts(
    session: Session,
    phone: str | None,
    email: str | None,
    *,
    exclude_id: int | None = None,
) -> None:
    # Creating always checks both keys, whatever the import matching is set to: two
    # records with one phone is the duplicate the resolution rule exists to prevent.
    found = match_customer(
        session, phone=phone, email=email, match_on=("phone", "email"), exclude_id=exclude_id
    )
    if found is None:
        return
    error = Conflict(
        _(f"customers.duplicate_{found.rule}", id=found.customer.id),
        field=found.rule,
        code="duplicate_customer",
    )
    error.existing_id = found.customer.id
    raise error


def _replace_tags(
    session: Session, customer_id: int, tags: list[str], before: dict, after: dict
) -> None:
    old = list(
        session.scalars(
            select(CustomerTag.tag)
            .where(CustomerTag.customer_id == customer_id)
            .order_by(CustomerTag.tag)
        )
    )
    if set(old) == set(tags):
        return
    session.execute(
        delete(CustomerTag)
        .where(CustomerTag.customer_id == customer_id, CustomerTag.tag.not_in(tags))
        .execution_options(synchronize_session="fetch")
    )
    session.add_all(CustomerTag(customer_id=customer_id, tag=tag) for tag in tags if tag not in old)
    before["tags"], after["tags"] = old, tags


def _apply_consents(
    session: Session,
    customer_id: int,
    consents: dict[str, bool | None],
    source: str,
    before: dict,
    after: dict,
) -> None:
    rows = {
        row.channel: row
        for row in session.scalars(
            select(CustomerConsent).where(CustomerConsent.customer_id == customer_id)
        )
    }
    old: dict[str, bool | None] = {}
    new: dict[str, bool | None] = {}
    for channel, granted in consents.items():
        row = rows.get(channel)
        current = row.granted if row is not None else None
        if current == granted:
            continue
        old[channel], new[channel] = current, granted
        if granted is None:
            session.delete(row)
        elif row is None:
            session.add(
                CustomerConsent(
                    customer_id=customer_id, channel=channel, granted=granted, source=source
                )
            )
        else:
            row.granted, row.source, row.updated_at = granted, source, utcnow()
    if new:
        before["consents"], after["consents"] = old, new
