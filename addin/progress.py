"""Progress display for long work: a bar on a terminal, nothing when output is redirected."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


@contextmanager
def file_progress(console: Console, inputs: Sequence[Any]) -> Iterator[Callable[[Any], None]]:
    """Yield a callback to call once per finished file; shows a bar only on a terminal."""
    if not console.is_terminal:
        yield lambda _report: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("Classifying", total=None)

        def advance(report: Any) -> None:
            bar.update(task, advance=1, description=f"Classified {report.input}")

        yield advance


@contextmanager
def row_progress(console: Console) -> Iterator[Callable[[str, int, float | None], None]]:
    """Yield a callback (input, rows done, fraction done or None) for long streamed inputs;
    shows a bar per input only on a terminal."""
    if not console.is_terminal:
        yield lambda _name, _rows, _fraction: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def update(name: str, rows: int, fraction: float | None) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=None if fraction is None else 1.0)
            bar.update(tasks[name], completed=fraction or 0.0, description=f"{name}: {rows:,} rows")

        yield update
