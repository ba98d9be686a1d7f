"""Progress bars for long command-line work: rich on a terminal, a few plain lines otherwise.

Bars go to stderr, so what a command prints on stdout (its figures) stays parseable.
``CLOUDLET_PROGRESS=0`` turns them off, ``=1`` forces the rich bar.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

Advance = Callable[[int], None]
# Without a terminal: one line at every tenth of the way (and at the end).
PLAIN_STEPS = 10


def _mode(stream: TextIO) -> str:
    forced = os.environ.get("CLOUDLET_PROGRESS", "").strip().lower()
    if forced in ("0", "off", "false", "no"):
        return "off"
    if forced in ("1", "on", "true", "yes"):
        return "rich"
    return "rich" if stream.isatty() else "plain"


@contextmanager
def progress(description: str, total: int, *, stream: TextIO | None = None) -> Iterator[Advance]:
    """A bar for ``total`` steps; the block calls the yielded function with steps done."""
    out = stream if stream is not None else sys.stderr
    mode = _mode(out)
    if mode == "off" or total <= 0:

        def ignore(_n: int = 1) -> None:
            pass

        yield ignore
        return
    if mode == "rich":
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(file=out),
        ) as bar:
            task = bar.add_task(description, total=total)

            def step(n: int = 1) -> None:
                bar.advance(task, n)

            yield step
        return
    done = 0
    shown = 0

    def advance(n: int = 1) -> None:
        nonlocal done, shown
        done = min(total, done + n)
        step = done * PLAIN_STEPS // total
        if step > shown:
            shown = step
            print(f"{description}: {done}/{total}", file=out, flush=True)

    yield advance
