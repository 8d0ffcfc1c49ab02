"""Progress display for long work: a bar on a terminal, nothing when output is redirected."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


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
