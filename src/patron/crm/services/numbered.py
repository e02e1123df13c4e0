"""Statements with ``$1, $2...`` placeholders, for psycopg's raw cursors.

psycopg turns ``%(name)s`` placeholders into PostgreSQL's ``$n`` on every call, and
remembers the result only for statements shorter than 4 KB; a customer search is longer,
so it was parsed again on each request. A statement is numbered here once, and its
values are then passed as a list.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["numbered", "values"]

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@functools.lru_cache(maxsize=1024)
def numbered(statement: str) -> tuple[str, tuple[str, ...]]:
    """``statement`` with ``$n`` for each ``%(name)s``, and the names in number order.

    A name used twice keeps its number.
    """
    names: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        return f"${names.setdefault(match.group(1), len(names) + 1)}"

    text = _PLACEHOLDER.sub(number, statement)
    if "%%" in text:
        text = text.replace("%%", "%")
    return text, tuple(names)


def values(names: tuple[str, ...], params: Mapping[str, Any]) -> list[Any]:
    """The values for :func:`numbered`'s placeholders, in order."""
    return [params[name] for name in names]
