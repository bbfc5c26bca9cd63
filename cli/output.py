"""Rendering of query results as a table, JSON or CSV, for every query command."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.table import Table


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
        json.dump([{c: row.get(c) for c in columns} for row in rows], sys.stdout, default=str)
        sys.stdout.write("\n")
    elif output_format is OutputFormat.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    else:
        table = Table(title=title)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
        Console().print(table)
