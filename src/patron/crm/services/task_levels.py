"""Service levels for follow-up tasks: how many hours each kind of task may stay open.

A shop promises its unhappy customers an answer within a time (a detractor is called back
within 48 hours, a complaint within a day); that promise is the task's due date. The hours
come from ``patron.toml``::

    [tasks.service_level_hours]
    detractor = 48
    complaint = 24
    personal_call = 72
    manual = 72

Any kind left out keeps its default. The file is the one named by ``PATRON_CONFIG``, or
``patron.toml`` in the working directory when there is one; a file is read again only when
it changes. An unknown kind or a value that is not a positive number is an
:class:`~patron.errors.InputError` naming the file and key, never a silently ignored line.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import MappingProxyType
from typing import Any

from patron.crm.config_file import config_path, read_cached
from patron.crm.tables import TASK_KINDS
from patron.errors import InputError
from patron.i18n import _

__all__ = ["DEFAULT_SERVICE_LEVEL_HOURS", "config_path", "service_level_hours"]

#: Hours a task of each kind may stay open when ``patron.toml`` says nothing.
DEFAULT_SERVICE_LEVEL_HOURS = MappingProxyType(
    {"detractor": 48.0, "complaint": 24.0, "personal_call": 72.0, "manual": 72.0}
)


def service_level_hours(path: str | Path | None = None) -> dict[str, float]:
    """Hours per task kind: the defaults overlaid with ``[tasks.service_level_hours]``.

    Parameters
    ----------
    path
        A ``patron.toml`` to read; by default :func:`config_path`.

    Raises
    ------
    InputError
        The file named is missing or not TOML, or the section holds an unknown kind or a
        value that is not a positive number of hours.

    Examples
    --------
    >>> DEFAULT_SERVICE_LEVEL_HOURS["detractor"]
    48.0
    """
    path = Path(path) if path is not None else config_path()
    if path is None:
        return dict(DEFAULT_SERVICE_LEVEL_HOURS)
    try:
        return dict(read_cached(path, _read))
    except FileNotFoundError:
        raise InputError(_("tasks.config_missing", file=str(path)), file=str(path)) from None


def _read(path: Path) -> dict[str, float]:
    file = str(path)
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise InputError(_("tasks.config_bad_toml", file=file, error=error), file=file) from None
    section: Any = data.get("tasks", {})
    if not isinstance(section, dict):
        raise _bad(file, "tasks", section)
    for key in section:
        if key != "service_level_hours":
            raise _bad(file, f"tasks.{key}", section[key])
    levels: Any = section.get("service_level_hours", {})
    if not isinstance(levels, dict):
        raise _bad(file, "tasks.service_level_hours", levels)
    hours = dict(DEFAULT_SERVICE_LEVEL_HOURS)
    for kind, value in levels.items():
        key = f"tasks.service_level_hours.{kind}"
        if kind not in TASK_KINDS:
            raise _bad(file, key, value)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise _bad(file, key, value)
        hours[kind] = float(value)
    return hours


def _bad(file: str, key: str, value: object) -> InputError:
    return InputError(
        _("tasks.config_bad_key", file=file, key=key, value=value, kinds=", ".join(TASK_KINDS)),
        file=file,
        column=key,
        value=value,
    )
