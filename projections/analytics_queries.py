"""Analysts' access to the analytics database: one read-only SELECT."""

from __future__ import annotations

from pathlib import Path

from projections.analytics_snapshot import reader_path
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
    """The analytics file opened read-only, with no access to other files or the network:
    the copy the projector publishes for readers when there is one (so a reader never
    holds the projector's file), else the file itself."""
    from projections.databases.errors import DatabaseBusy

    if not path.exists():
        raise FileNotFoundError(f"no analytics database at {path}: run `evledger project` first")
    db = DuckDatabase(reader_path(path), read_only=True)
    try:
        db.execute("SELECT 1 AS ready")
    except DatabaseBusy:
        # Between a projector's start and its first published copy it holds the only file.
        db.close()
        raise FileNotFoundError(
            f"no analytics database to read at {path} yet: the projector has not published "
            "its readers' copy (it does after its first batch); try again in a moment"
        ) from None
    return db


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
