"""Terminal output: record tables, problems and warnings, progress bars and steps, quiet libraries (rich).

Every console has markup off for data (names, paths, messages are escaped) and emoji codes off, so a name such
as `nosuchmod:x` prints as written.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
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


def print_cost_table(rows, title: str = "What each precision costs") -> None:
    """The cost table(s): per model x engine, each set's metrics at the baseline and Δ [95 % CI] per precision."""
    from rich.table import Table

    from benchbox.reports.tables import cost_row_label, cost_tables, delta_text

    for group in cost_tables(rows):
        name = f"{group['model']} · {group['engine']} on {group['device']} (vs {group['baseline']})"
        table = Table(title=escape(f"{title}: {name}"))
        for column in ("set", "metric", group["baseline"].split("/")[-1]):
            table.add_column(escape(column), overflow="fold")
        for precision in group["precisions"]:
            table.add_column(escape(precision), overflow="fold")
            table.add_column(escape(f"Δ {precision} [95% CI]"), overflow="fold")
        table.add_column("n", overflow="fold")
        for entry in group["rows"]:
            where, metric = cost_row_label(entry)
            cells = [where, metric, _short(entry["baseline_value"])]
            n = ""
            for precision in group["precisions"]:
                row = entry["cells"].get(precision)
                if row is None:
                    cells += ["", ""]
                    continue
                cells += [_short(row.value), delta_text(row)]
                n = row.n_text
            table.add_row(*(escape(c) for c in cells), escape(n))
        console.print(table)


def _short(value) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}" if abs(value) < 1e5 else f"{value:.3g}"


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


PLAIN_EVERY = 30.0  # seconds between progress lines when output is not a terminal (a CI log, a file)


@contextmanager
def progress_bars(every: float | None = None) -> Iterator:
    """Yield a callback(label, done, total) that drives one rich progress bar per label on a terminal, and plain
    progress lines (label, done/total, rate, ETA) at least every 30 s plus one summary line per label elsewhere:
    a ten-minute eval redirected to a file used to write nothing until it ended."""
    if not err_console.is_terminal:
        with plain_progress(every or PLAIN_EVERY) as update:
            yield update
        return
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


class _Activity:
    """What is running now, for the plain progress lines: labelled counters and named steps."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tasks: dict[str, dict] = {}
        self.step: tuple[str, float] | None = None

    def update(self, label: str, done: int, total: int) -> dict | None:
        now = time.monotonic()
        with self.lock:
            task = self.tasks.setdefault(
                label, {"start": now, "first": done, "done": done, "total": total, "finished": False}
            )
            task.update(done=done, total=total, at=now)
            if total and done >= total and not task["finished"]:
                task["finished"] = True
                return dict(task)
        return None

    def lines(self) -> list[str]:
        now = time.monotonic()
        with self.lock:
            return [_progress_line(label, t, now) for label, t in self.tasks.items() if not t["finished"]]


ACTIVITY = _Activity()


def _progress_line(label: str, task: dict, now: float, final: bool = False) -> str:
    elapsed = max(now - task["start"], 1e-9)
    rate = (task["done"] - task["first"]) / elapsed
    total = task["total"]
    text = f"{label}: {task['done']}/{total}" if total else f"{label}: {task['done']}"
    if final:
        return f"done {text} in {elapsed:.0f} s ({rate:.1f}/s)"
    eta = f", ETA {(total - task['done']) / rate:.0f} s" if rate > 0 and total else ""
    return f"{text} ({rate:.1f}/s{eta})"


@contextmanager
def plain_progress(every: float = PLAIN_EVERY) -> Iterator:
    """Plain progress lines on stderr: every `every` seconds what is running, and a line when a label finishes."""
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(every):
            for line in ACTIVITY.lines():
                err_console.print(line, markup=False, highlight=False)

    def update(label: str, done: int, total: int) -> None:
        finished = ACTIVITY.update(label, done, total)
        if finished is not None:
            err_console.print(_progress_line(label, finished, time.monotonic(), final=True), markup=False)

    thread = threading.Thread(target=tick, name="benchbox-progress", daemon=True)
    thread.start()
    try:
        yield update
    finally:
        stop.set()
        thread.join(timeout=1)
        with ACTIVITY.lock:
            ACTIVITY.tasks.clear()


class Steps:
    """Announce the steps of a long command on stderr, with the time each took (`export` runs for minutes); in a
    log, say at least every 30 s that a long step is still running."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self._started: float | None = None
        self._text = ""
        self._ticker: _StepTicker | None = None

    def __call__(self, text: str) -> None:
        self.done()
        self._text, self._started = text, time.perf_counter()
        ACTIVITY.step = (self.prefix + text, time.monotonic())
        err_console.print(f"[cyan]…[/cyan] {escape(self.prefix + text)}")
        if not err_console.is_terminal:
            self._ticker = _StepTicker()

    def done(self) -> None:
        if self._started is not None:
            err_console.print(
                f"[green]✓[/green] {escape(self.prefix + self._text)} ({time.perf_counter() - self._started:.1f} s)"
            )
            self._started = None
            ACTIVITY.step = None
            if self._ticker is not None:
                self._ticker.stop()
                self._ticker = None


class _StepTicker:
    """While a long step runs with no counter (an export, a calibration), say so at least every 30 s in a log."""

    def __init__(self, every: float = PLAIN_EVERY) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), name="benchbox-step", daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            step = ACTIVITY.step
            if step is not None:
                err_console.print(f"still working: {step[0]} ({time.monotonic() - step[1]:.0f} s)", markup=False)

    def stop(self) -> None:
        self._stop.set()


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
