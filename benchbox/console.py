"""Terminal output: record tables, problems and warnings, progress bars and steps, quiet libraries (rich).

Every console has markup off for data (names, paths, messages are escaped) and emoji codes off, so a name such
as `nosuchmod:x` prints as written.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape

from benchbox.records import Record

console = Console(stderr=False, width=None if sys.stdout.isatty() else 150, emoji=False, highlight=False)
err_console = Console(stderr=True, soft_wrap=True, emoji=False, highlight=False)


def format_value(record: Record) -> str:
    value = record.value
    if value is None:
        return "—"
    if record.metric == "mcnemar_p":
        return f"{value:.3g}"
    text = f"{value:.2f}" if abs(value) < 1e5 else f"{value:.3g}"
    if record.ci95 and record.ci95[0] is not None:
        text += f" [{record.ci95[0]:.2f}, {record.ci95[1]:.2f}]"
    return text


def print_records(records: Iterable[Record], title: str = "Results", extra_column: str | None = None) -> None:
    """One row per record; `extra_column` adds a record field (e.g. batch_size) before the metric."""
    from rich.table import Table

    table = Table(title=escape(title), show_lines=False)
    columns = ["engine", "precision", "set", "variant", "metric", "value [95% CI]", "n", "vs", "flags"]
    if extra_column:
        columns.insert(4, extra_column)
    for column in columns:
        table.add_column(column, overflow="fold")
    for r in records:
        row = [
            r.cell.engine or "",
            r.cell.precision or "",
            r.cell.testset or "",
            r.cell.variant or "",
            r.metric,
            format_value(r),
            "" if r.n is None else str(r.n),
            r.reference or "",
            ",".join(r.flags),
        ]
        if extra_column:
            row.insert(4, str(getattr(r, extra_column, None) or ""))
        table.add_row(*(escape(str(x)) for x in row))
    console.print(table)


def print_notes(
    problems: list[str],
    warnings_: list[str],
    unreadable: dict[str, list],
    missing: list[str],
    failures: list[str],
) -> None:
    for label, files in unreadable.items():
        console.print(f"[yellow]{escape(label)}: {len(files)} unreadable file(s) skipped and not scored:[/yellow]")
        for path, error in files[:10]:
            console.print(f"  {path}: {error}", markup=False)
        if len(files) > 10:
            console.print(f"  … and {len(files) - 10} more (all listed in --json)")
    for warning in warnings_:
        console.print(f"[bold red]WARNING:[/bold red] {escape(warning)}")
    for problem in problems:
        console.print(f"[yellow]layout:[/yellow] {escape(problem)}")
    if missing:
        console.print(f"[yellow]not found (skipped):[/yellow] {escape(', '.join(missing))}")
    for failure in failures:
        console.print(f"[red]failed cell:[/red] {escape(failure)}")


@contextmanager
def progress_bars() -> Iterator:
    """Yield a callback(label, done, total) that drives one rich progress bar per label."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )
    tasks: dict[str, int] = {}

    def update(label: str, done: int, total: int) -> None:
        if label not in tasks:
            tasks[label] = progress.add_task(escape(label), total=total)
        progress.update(tasks[label], completed=done, total=total)

    with progress:
        yield update


class Steps:
    """Announce the steps of a long command on stderr, with the time each took (`export` runs for minutes)."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self._started: float | None = None
        self._text = ""

    def __call__(self, text: str) -> None:
        self.done()
        self._text, self._started = text, time.perf_counter()
        err_console.print(f"[cyan]…[/cyan] {escape(self.prefix + text)}")

    def done(self) -> None:
        if self._started is not None:
            err_console.print(
                f"[green]✓[/green] {escape(self.prefix + self._text)} ({time.perf_counter() - self._started:.1f} s)"
            )
            self._started = None


@contextmanager
def quiet_libraries() -> Iterator[io.StringIO]:
    """Capture what libraries print while benchbox works (ONNX Runtime's calibration notes, export warnings).

    The captured text is yielded, so a failure can still show it."""
    buffer = io.StringIO()
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(buffer):
            warnings.simplefilter("ignore")
            yield buffer
    finally:
        logging.disable(previous)
