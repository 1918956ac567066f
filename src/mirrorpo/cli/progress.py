"""A rich progress bar shared by the long-running commands (with elapsed and remaining time)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def progress_bar(description: str, total: int | None = None) -> Iterator[Callable[[int, int, str], None]]:
    """Yield ``update(done, total, label)``; renders on stderr, a no-op display when not a terminal."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("left"), TimeRemainingColumn(), TextColumn("{task.fields[label]}"))
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(description, total=total, label="")

        def update(done: int, total: int, label: str = "") -> None:
            progress.update(task, completed=done, total=total, label=label)

        yield update
