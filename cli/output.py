"""Output shared by the commands: query results as a table, JSON or CSV, amounts of money
for people, and progress bars on stderr."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from cli.safe_text import csv_cell, plain

# rich is imported when a table or a bar is shown: `--help`, JSON and CSV start without it.
if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID


def __getattr__(name: str) -> Any:
    """``cli.output.Console`` is rich's Console, imported when first asked for (the progress
    bar makes its console through this name, so a test can show it on a fake terminal)."""
    if name != "Console":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from rich.console import Console

    return Console


class LazyConsole:
    """A rich Console made on first use, for a module-level ``console`` of a command module
    (importing rich would cost every command's start-up)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def render(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    output_format: OutputFormat,
    title: str | None = None,
) -> None:
    """Print rows to stdout; JSON and CSV keep exact values (no float rounding of money)."""
    if output_format is OutputFormat.json:
        # dumps, not dump: dump streams through json's Python encoder, ten times slower.
        picked = [{c: row.get(c) for c in columns} for row in rows]
        sys.stdout.write(json.dumps(picked, default=str))
        sys.stdout.write("\n")
    elif output_format is OutputFormat.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([csv_cell(row.get(c)) for c in columns])
    else:
        from rich.console import Console
        from rich.table import Table

        # Cells hold upstream strings: rich Text, so "[/]" or "[link=...]" is shown, not run.
        table = Table(title=None if title is None else plain(title))
        for column in columns:
            table.add_column(plain(column))
        for row in rows:
            table.add_row(*(plain(row.get(c)) for c in columns))
        Console().print(table)


def format_amounts(by_currency: Mapping[str, int]) -> str:
    """Minor-unit totals per currency for people: "30,683.38 EUR, 1,200 JPY" in major
    units; a code outside the currency table in minor units, said so; "none" if empty."""
    if not by_currency:
        return "none"
    return ", ".join(
        _amount(amount, currency)
        for currency, amount in sorted(by_currency.items(), key=lambda item: str(item[0]))
    )


def _amount(minor: int, currency: str) -> str:
    from domain.errors import UnknownCurrencyError
    from domain.money import Money

    try:
        major = Money(minor, currency).to_major()
    except UnknownCurrencyError:
        return f"{minor:,} minor units of unknown currency {currency!r}"
    return f"{major:,} {currency}"


class ProgressBar:
    """One bar of a progress display; ``update`` moves it (nothing shows when disabled)."""

    def __init__(self, display: Progress, task: TaskID) -> None:
        self._display = display
        self._task = task

    def update(self, completed: int, total: int | None = None, note: str | None = None) -> None:
        """``completed`` of ``total`` (None: unchanged), with a free text ``note``."""
        changes: dict[str, Any] = {}
        if note is not None:
            changes["note"] = note
        self._display.update(self._task, completed=completed, total=total, **changes)


@contextmanager
def progress(
    description: str,
    total: int | None = None,
    *,
    unit: str = "items",
    enabled: bool = True,
    transient: bool = False,
) -> Iterator[ProgressBar]:
    """A progress bar on stderr: description, bar, done/total, a free note (counters),
    rate in ``unit``/s, elapsed and time left. Shown only when ``enabled`` and stderr is a
    terminal, so logs and pipes stay clean; ``transient`` clears it when done."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class _Rate(ProgressColumn):
        """Items per second (rich's own speed columns count bytes)."""

        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            shown = "--" if speed is None else f"{speed:,.0f}"
            return Text(f"{shown} {unit}/s", "cyan")

    make_console = globals().get("Console") or __getattr__("Console")
    console = make_console(stderr=True)
    display = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        _Rate(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
        disable=not (enabled and console.is_terminal),
    )
    with display:
        yield ProgressBar(display, display.add_task(description, total=total, note=""))
