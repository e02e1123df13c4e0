"""Query and form values as the pages read them: leniently.

A page's filters come from links and form fields a person may edit by hand; a page that
answers "page=abc" with an error helps nobody. So a value that is not what is expected
means "no filter" or page 1, and the page shows what it did use. (The JSON API is strict
instead: it answers 422 naming the field.)
"""

from __future__ import annotations

__all__ = ["page_number", "whole_id", "one_of"]


def page_number(value: str | None) -> int:
    """The page asked for; anything that is not a positive whole number is page 1.

    >>> page_number("3"), page_number("-2"), page_number("abc"), page_number(None)
    (3, 1, 1, 1)
    """
    try:
        return max(int(value or 1), 1)
    except ValueError:
        return 1


def whole_id(value: str | None) -> int | None:
    """``value`` as a database id (a positive 64-bit whole number), else ``None``.

    >>> whole_id(" 42 "), whole_id("0"), whole_id("4.2"), whole_id(str(2**63))
    (42, None, None, None)
    """
    try:
        number = int(str(value or "").strip())
    except ValueError:
        return None
    return number if 1 <= number <= 2**63 - 1 else None


def one_of(value: str, allowed: tuple[str, ...]) -> str:
    """``value`` when it is one of ``allowed``, else ``""`` (no filter)."""
    return value if value in allowed else ""
