"""Analysts' access to the analytics database: one read-only SELECT, and the report."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from projections.databases.duckdb import DuckDatabase
from projections.databases.port import Row


class QueryRefused(ValueError):
    """Not a single read-only SELECT; the reason says what was sent instead."""


def check_select(statement: str) -> None:
    """Refuse anything but exactly one SELECT (WITH, FROM-first, DESCRIBE count as SELECT)."""
    import duckdb

    try:
        parsed = duckdb.extract_statements(statement)
    except duckdb.Error as error:
        raise QueryRefused(f"not valid SQL: {str(error).splitlines()[0]}") from None
    if len(parsed) != 1:
        raise QueryRefused(f"send exactly one statement, got {len(parsed)}")
    kind = parsed[0].type
    if kind != duckdb.StatementType.SELECT:
        raise QueryRefused(f"only SELECT queries are allowed here, got {kind.name}")


def open_read_only(path: Path) -> DuckDatabase:
    """The analytics file opened read-only, with no access to other files or the network."""
    if not path.exists():
        raise FileNotFoundError(f"no analytics database at {path}: run `evledger project` first")
    return DuckDatabase(path, read_only=True)


def run_select(db: DuckDatabase, statement: str) -> tuple[list[str], list[Row]]:
    """Run one checked SELECT; its column names (in order) and rows."""
    check_select(statement)
    rows = db.execute(statement.replace("{", "{{").replace("}", "}}"))
    columns = list(rows[0]) if rows else _columns_of(db, statement)
    return columns, rows


def _columns_of(db: DuckDatabase, statement: str) -> list[str]:
    described = db.execute(
        "DESCRIBE " + statement.replace("{", "{{").replace("}", "}}").rstrip().rstrip(";")
    )
    return [str(row["column_name"]) for row in described]


@dataclass(frozen=True)
class ReportSection:
    title: str
    query: str


REPORT: tuple[ReportSection, ...] = (
    ReportSection(
        "Trial balance check (debits = credits per currency)", "FROM trial_balance_check"
    ),
    ReportSection("Trial balance", "FROM trial_balance"),
    ReportSection("Revenue and energy by station and day", "FROM revenue_by_station_day"),
    ReportSection(
        "Peak usage (busiest weekday/hour slots)",
        "FROM peak_usage ORDER BY busiest_rank, weekday, local_hour LIMIT 10",
    ),
    ReportSection("Station utilisation", "FROM station_utilisation"),
    ReportSection("Revenue per kWh by tariff", "FROM pricing_by_tariff"),
    ReportSection("Revenue by price component", "FROM pricing_by_component"),
    ReportSection("Repeat customers", "FROM repeat_customers"),
    ReportSection("Top customers by spend", "FROM customer_behaviour LIMIT 10"),
    ReportSection("Refunds by station and reason", "FROM refunds_by_station_reason"),
    ReportSection("Most popular locations", "FROM popular_locations LIMIT 10"),
    ReportSection("Payment outcomes", "FROM payment_outcomes"),
)


@dataclass(frozen=True)
class ReportTable:
    title: str
    columns: list[str]
    rows: list[Row]


def build_report(db: DuckDatabase) -> list[ReportTable]:
    return [ReportTable(section.title, *run_select(db, section.query)) for section in REPORT]


def _cell(value: Any) -> str:
    return "" if value is None else html.escape(str(value))


def report_html(tables: list[ReportTable]) -> str:
    """A self-contained HTML page of the report's tables."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>evledger analytics</title>",
        "<style>body{font-family:sans-serif}table{border-collapse:collapse;margin-bottom:2em}"
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}</style></head><body>",
        "<h1>evledger analytics</h1><p>Amounts are in minor units of their currency.</p>",
    ]
    for table in tables:
        parts.append(f"<h2>{html.escape(table.title)}</h2><table><tr>")
        parts.extend(f"<th>{html.escape(column)}</th>" for column in table.columns)
        parts.append("</tr>")
        for row in table.rows:
            cells = "".join(f"<td>{_cell(row.get(column))}</td>" for column in table.columns)
            parts.append(f"<tr>{cells}</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
