"""Progress on stderr with rich: a live line (or bar) on a terminal, one line per phase otherwise."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def phases(name: str, enabled: bool) -> Iterator[Callable[[str, float], None]]:
    """A ``progress(phase, elapsed)`` callback for ``up``: rich's spinner with the phase and the
    time so far on a terminal (rich refreshes it), else a line ``NAME: PHASE (N s)`` per phase."""
    if not enabled:
        yield lambda phase, elapsed: None
        return
    if not sys.stderr.isatty():

        def line(phase: str, elapsed: float) -> None:
            sys.stderr.write(f"{name}: {phase} ({elapsed:.1f} s)\n")

        yield line
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn(f"{name}: {{task.description}}", markup=False),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=None)
        yield lambda phase, elapsed: bar.update(task, description=phase)


@contextlib.contextmanager
def counter(label: str, total: int, enabled: bool) -> Iterator[Any]:
    """A ``progress(done, total)`` callback for ``bench``: a bar on a terminal, else None."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done, total: bar.update(task, completed=done)
