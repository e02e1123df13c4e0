"""Phone numbers and email addresses: normalised for matching, masked for analysts.

Matching needs one spelling per person: ``+86 138-0013-8000``, ``0086 13800138000`` and
``13800138000`` are the same mobile, and ``Li.Na@Example.COM`` is ``li.na@example.com``.
Masking keeps just enough to recognise a record on the phone (138****8000, l***@example.com)
and is applied wherever an analyst sees personal data: pages, API and exports.
"""

from __future__ import annotations

import re

__all__ = ["normalise_phone", "normalise_email", "mask_phone", "mask_email", "mask_name"]

_NOT_DIGIT = re.compile(r"\D+")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_phone(phone: str | None) -> str | None:
    """Digits only, without the China country code; ``None`` when nothing usable is left.

    >>> normalise_phone("+86 138-0013-8000"), normalise_phone("0086 13800138000")
    ('13800138000', '13800138000')
    >>> normalise_phone("021-6234 5678"), normalise_phone("n/a")
    ('02162345678', None)
    """
    if not phone:
        return None
    digits = _NOT_DIGIT.sub("", str(phone))
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11 and digits[-11] == "1":
            digits = digits[len(prefix) :]
    return digits if len(digits) >= 5 else None


def normalise_email(email: str | None) -> str | None:
    """Trimmed and lower-cased; ``None`` unless it looks like an address.

    >>> normalise_email("  Li.Na@Example.COM "), normalise_email("none")
    ('li.na@example.com', None)
    """
    if not email:
        return None
    email = str(email).strip().lower()
    return email if _EMAIL.match(email) else None


def mask_phone(phone: str | None) -> str | None:
    """Keep the first three and last four digits of a mobile (138****5678).

    >>> mask_phone("13812345678"), mask_phone("+86 138 1234 5678"), mask_phone("12345")
    ('138****5678', '138****5678', '1***5')
    """
    if not phone:
        return phone
    digits = normalise_phone(phone) or _NOT_DIGIT.sub("", phone)
    if len(digits) >= 8:
        return digits[:3] + "****" + digits[-4:]
    if len(digits) >= 2:
        return digits[0] + "*" * (len(digits) - 2) + digits[-1]
    return "*" * len(digits)


def mask_email(email: str | None) -> str | None:
    """Keep the first letter and the domain (a***@example.com).

    >>> mask_email("alice@example.com"), mask_email("x")
    ('a***@example.com', '***')
    """
    if not email:
        return email
    local, at, domain = str(email).partition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_name(name: str | None) -> str | None:
    """Keep the family name (张**, or the first letter and the last word in Latin script).

    >>> mask_name("张三丰"), mask_name("Grace Li"), mask_name("")
    ('张**', 'G*** Li', '')
    """
    if not name:
        return name
    if " " in name.strip():
        first, *_, last = name.split()
        return f"{first[:1]}*** {last}"
    return name[:1] + "*" * (len(name) - 1)
