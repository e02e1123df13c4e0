"""The business's ``patron.toml`` as the operational store reads it.

One file holds every part's settings (task service levels, feedback dictionaries, ...),
and every part must find the same one: the file ``PATRON_CONFIG`` names, else
``patron.toml`` in the working directory when there is one. A server runs for weeks, so a
part reads the file again when it changes, not on every request: :func:`read_cached`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

__all__ = ["config_path", "read_cached"]

T = TypeVar("T")

_cache: dict[tuple[str, Callable], tuple[float, object]] = {}
_lock = threading.Lock()


def config_path() -> Path | None:
    """The ``patron.toml`` in force: ``PATRON_CONFIG`` if set, else ``./patron.toml`` if any."""
    named = os.environ.get("PATRON_CONFIG")
    if named:
        return Path(named)
    local = Path("patron.toml")
    return local if local.is_file() else None


def read_cached(path: Path, read: Callable[[Path], T]) -> T:
    """``read(path)``, again only when the file's modification time changes.

    Raises ``FileNotFoundError`` for a missing file: each part says so in its own words.
    """
    mtime = path.stat().st_mtime
    key = (str(path), read)
    cached = _cache.get(key)
    if cached is not None and cached[0] == mtime:
        return cached[1]  # type: ignore[return-value]
    value = read(path)
    with _lock:
        _cache[key] = (mtime, value)
    return value
