"""Progress bars on stderr, drawn by rich (typer installs it): on a terminal only, so logs,
pipes and ``--json`` runs stay free of them."""

from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator


@contextlib.contextmanager
def progress_bar(label: str, quiet: bool = False) -> Iterator[Callable[[int, int], None]]:
    """A ``progress(done, total)`` callback drawing one bar while the block runs.

    Args:
        label: what is counted (shown left of the bar).
        quiet: draw nothing (``--json``); nothing is drawn either when stderr is not a terminal.
    """
    if quiet or not sys.stderr.isatty():
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    # rows printed on a terminal stdout go above the bar; a redirected stdout is left alone
    with Progress(*columns, console=Console(stderr=True), redirect_stdout=sys.stdout.isatty()) as progress:
        task = progress.add_task(label, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)
