"""Human output for the CLI: aligned tables, colours and progress bars on a terminal only.

rich does the rendering (it drops colours and bars by itself when the output is not a
terminal); scripts use ``--json`` and never read these lines.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from rich import box
from rich.console import Console as RichConsole
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

# Off a terminal, lines are not wrapped at 80 columns: they go to files and pipes whole.
PIPE_WIDTH = 240


class Output:
    """Where a command writes for people."""

    def __init__(self, file: TextIO | None = None) -> None:
        stream = file or sys.stdout
        terminal = stream.isatty()
        self._rich = RichConsole(
            file=stream,
            highlight=False,
            width=None if terminal else PIPE_WIDTH,
            no_color=not terminal,
        )
        self.is_terminal = terminal

    def say(self, text: str, *, style: str | None = None) -> None:
        self._rich.print(text, style=style, markup=False)

    def table(
        self, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None
    ) -> None:
        table = Table(
            *columns,
            title=title,
            title_justify="left",
            box=box.SIMPLE_HEAD if self.is_terminal else None,
            show_edge=False,
            pad_edge=False,
        )
        for row in rows:
            table.add_row(*("" if cell is None else str(cell) for cell in row))
        self._rich.print(table)

    def pairs(self, rows: Sequence[tuple[str, str, str | None]]) -> None:
        """``label  value`` lines, the values aligned; the third item is a style or None."""
        width = max(len(label) for label, _, _ in rows)
        for label, value, style in rows:
            self._rich.print(f"{label:<{width}}  ", end="", markup=False)
            self._rich.print(value, style=style, markup=False)


@contextmanager
def progress_bar(total: int, description: str, *, enabled: bool) -> Iterator[Any]:
    """A bar with count, rate and time left on a terminal (stderr); a no-op elsewhere."""
    if not enabled:
        yield lambda _done: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=RichConsole(file=sys.stderr), transient=False) as bar:
        task: TaskID = bar.add_task(description, total=total, rate="")

        def update(done: int) -> None:
            speed = bar.tasks[0].speed
            bar.update(task, completed=done, rate=f"{speed:6.1f}/s" if speed else "")

        yield update


def emit(value: Any) -> None:
    """One JSON document on one line (``--json`` output, for scripts)."""
    print(json.dumps(value, ensure_ascii=False))
