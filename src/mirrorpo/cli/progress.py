"""A rich progress bar shared by the long-running commands (with elapsed and remaining time)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def progress_bar(description: str, total: int | None = None) -> Iterator[Callable[[int, int | None, str], None]]:
    """Yield ``update(done, total, label)``. It renders on stderr, so stdout keeps only the command's
    results (tables, JSON); a console that is not a terminal gets the final state once, at the end.
    Lines echoed to stdout meanwhile appear above the bar. With no total the bar pulses."""
    from rich.console import Console
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
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task(description, total=total, label="")

        def update(done: int, total: int | None = None, label: str = "") -> None:
            progress.update(task, completed=done, label=label, **({} if total is None else {"total": total}))

        yield update
