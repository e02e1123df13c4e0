"""A rich progress display fed by a service's ``progress(step, done, total)`` callback.

Services report progress as plain calls so they stay free of any display; the import and
score commands turn those calls into one line per step on stderr, with a bar when the
step's size is known and a spinner when it is not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

__all__ = ["progress_display"]


@contextmanager
def progress_display(
    console: Console, label: Callable[[str], str]
) -> Iterator[Callable[[str, int, int | None], None]]:
    """Yield a ``progress(step, done, total)`` callback drawing on ``console``.

    ``label(step)`` gives the text shown for a step.
    """
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as display:
        tasks: dict[str, int] = {}

        def report(step: str, done: int, total: int | None) -> None:
            if step not in tasks:
                for task in tasks.values():  # a new step: the earlier ones are over
                    display.update(task, visible=False)
                tasks[step] = display.add_task(label(step), total=total)
            display.update(tasks[step], completed=done, total=total)

        yield report
