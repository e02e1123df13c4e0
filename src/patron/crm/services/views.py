"""What a user may see of a customer: whole for staff, masked for analysts.

Analysts read the scores, not the person, so their name, phone, email and birthday are
masked (张**, 138****5678, a***@example.com, no birthday) wherever they appear: in a list
row, in the 360 and its nested parts, in the merge list (the matching key is a phone or an
email) and in free-text notes, where staff type phone numbers too. The API, the pages and
the export all pass customer dicts through here, so one function decides for all three.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from patron.crm.contacts import mask_email, mask_name, mask_phone
from patron.crm.services.customer_dicts import PROFILE_FIELDS
from patron.crm.services.customer_search import iter_customers
from patron.crm.tables.scores import SNAPSHOT_COLUMNS

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy.orm import Session

__all__ = [
    "customer_view",
    "touchpoint_view",
    "merge_view",
    "mask_text",
    "export_rows",
    "EXPORT_FIELDS",
]

#: The columns of the customer export, in order.
EXPORT_FIELDS = ("id", *PROFILE_FIELDS, "tags", "created_at", "updated_at", *SNAPSHOT_COLUMNS)

_EMAIL_IN_TEXT = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Seven or more digits, possibly split by spaces, dashes, dots or brackets: a phone
# number, an id card number or a bank card, none of which an analyst needs.
_NUMBER_IN_TEXT = re.compile(r"\+?\d(?:[\s\-.()]*\d){6,}")


def customer_view(d: dict[str, Any], *, mask: bool) -> dict[str, Any]:
    """``d`` as a user may see it: unchanged, or with personal data masked.

    Parameters
    ----------
    d
        A customer dict (a search result or export row) or a 360 (a dict with a
        ``customer`` dict inside).
    mask
        True for a user who sees masked data
        (:func:`patron.crm.services.permissions.masks_personal_data`).

    Returns
    -------
    dict
        ``d`` itself when ``mask`` is false; otherwise a copy in which the name, phone and
        email are masked and the birthday hidden, in the 360 also the touchpoint notes,
        the timeline and the merge keys. ``d`` is never changed.

    Examples
    --------
    >>> customer_view({"id": 7, "name": "张三丰", "phone": "13812345678"}, mask=True)
    {'id': 7, 'name': '张**', 'phone': '138****5678'}
    """
    if not mask:
        return d
    if isinstance(d.get("customer"), dict):
        out = dict(d)
        out["customer"] = _mask_customer(d["customer"])
        if "touchpoints" in d:
            out["touchpoints"] = [touchpoint_view(t, mask=True) for t in d["touchpoints"]]
        if "timeline" in d:
            out["timeline"] = [
                touchpoint_view(item, mask=True) if item.get("type") == "touchpoint" else item
                for item in d["timeline"]
            ]
        if "merges" in d:
            out["merges"] = [merge_view(m, mask=True) for m in d["merges"]]
        return out
    return _mask_customer(d)


def touchpoint_view(d: dict[str, Any], *, mask: bool) -> dict[str, Any]:
    """A touchpoint dict with phone numbers and emails in its note masked, for analysts."""
    if not mask or not d.get("note"):
        return d
    return {**d, "note": mask_text(d["note"])}


def merge_view(d: dict[str, Any], *, mask: bool) -> dict[str, Any]:
    """A merge dict with its matching key (a phone or an email) masked, for analysts."""
    if not mask or not d.get("key"):
        return d
    key = d["key"]
    if d.get("rule") == "phone":
        masked = mask_phone(key)
    elif d.get("rule") == "email" or "@" in key:
        masked = mask_email(key)
    else:
        masked = mask_text(key)
    return {**d, "key": masked}


def mask_text(text: str) -> str:
    """Free text with every email address and long number in it masked.

    >>> mask_text("called 138-1234-5678, mail li@example.com")
    'called 138****5678, mail l***@example.com'
    """
    text = _EMAIL_IN_TEXT.sub(lambda m: mask_email(m.group()) or "", text)
    return _NUMBER_IN_TEXT.sub(lambda m: mask_phone(m.group()) or "", text)


def export_rows(session: Session, *, mask: bool, **search_filters: Any) -> Iterator[dict[str, Any]]:
    """The rows of the customer export: profile and latest scores, masked as the user sees.

    Parameters
    ----------
    mask
        Mask personal data (analysts).
    **search_filters
        As :func:`patron.crm.services.customers.search_customers` (``q``, ``grade``,
        ``stage``, ``risk``, ``tag``, ``owner_id``, ``sort``), without the page.

    Yields
    ------
    dict
        One per customer, with exactly :data:`EXPORT_FIELDS` as keys, values ready for a
        CSV cell (``tags`` joined by ``"; "``; a score is ``None`` for a customer not
        scored by the latest run). Streamed: the whole table is never in memory.
    """
    for item in iter_customers(session, **search_filters):
        item["tags"] = "; ".join(item["tags"])
        row = {name: item.get(name) for name in EXPORT_FIELDS}
        yield customer_view(row, mask=mask)


def _mask_customer(c: dict[str, Any]) -> dict[str, Any]:
    out = dict(c)
    if "name" in out:
        out["name"] = mask_name(out["name"])
    if "phone" in out:
        out["phone"] = mask_phone(out["phone"])
    if "email" in out:
        out["email"] = mask_email(out["email"])
    if "birthday" in out:
        out["birthday"] = None
    for key in ("phone_norm", "email_norm"):
        out.pop(key, None)
    return out
