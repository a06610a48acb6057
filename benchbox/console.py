"""Terminal output: record tables, problems and warnings, progress bars (rich)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape

console = Console(stderr=False, width=None if sys.stdout.isatty() else 150)
err_console = Console(stderr=True, soft_wrap=True)


def format_value(record: dict[str, Any]) -> str:
    value = record.get("value")
    if value is None:
        return "—"
    if record["metric"] == "mcnemar_p":
        return f"{value:.3g}"
    text = f"{value:.2f}" if abs(value) < 1e5 else f"{value:.3g}"
    ci = record.get("ci95")
    if ci and ci[0] is not None:
        text += f" [{ci[0]:.2f}, {ci[1]:.2f}]"
    return text


def print_records(records: Iterable[dict[str, Any]], title: str = "Results", extra_column: str | None = None) -> None:
    """One row per record; `extra_column` adds a record field (e.g. batch_size) before the metric."""
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    columns = ["engine", "precision", "set", "variant", "metric", "value [95% CI]", "n", "flags"]
    if extra_column:
        columns.insert(4, extra_column)
    for column in columns:
        table.add_column(column, overflow="fold")
    for r in records:
        row = [
            str(r.get("engine") or ""),
            str(r.get("precision") or ""),
            str(r.get("testset") or ""),
            str(r.get("variant") or ""),
            r["metric"],
            format_value(r),
            str(r.get("n") or ""),
            ",".join(r.get("flags") or []),
        ]
        if extra_column:
            row.insert(4, str(r.get(extra_column) or ""))
        table.add_row(*row)
    console.print(table)


def print_notes(
    problems: list[str],
    warnings: list[str],
    unreadable: dict[str, list],
    missing: list[str],
    failures: list[str],
) -> None:
    for label, files in unreadable.items():
        console.print(f"[yellow]{label}: {len(files)} unreadable file(s) skipped and not scored:[/yellow]")
        for path, error in files[:10]:
            console.print(f"  {path}: {error}", markup=False)
        if len(files) > 10:
            console.print(f"  … and {len(files) - 10} more (all listed in --json)")
    for warning in warnings:
        console.print(f"[bold red]WARNING:[/bold red] {escape(warning)}")
    for problem in problems:
        console.print(f"[yellow]layout:[/yellow] {escape(problem)}")
    if missing:
        console.print(f"[yellow]not found (skipped):[/yellow] {', '.join(missing)}")
    for failure in failures:
        console.print(f"[red]failed cell:[/red] {escape(failure)}")


@contextmanager
def progress_bars():
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
            tasks[label] = progress.add_task(label, total=total)
        progress.update(tasks[label], completed=done, total=total)

    with progress:
        yield update
