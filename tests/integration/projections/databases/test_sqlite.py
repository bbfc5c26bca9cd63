"""The SQLite adapter (the embedded default's views) against the Database contract."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from projections.databases.errors import MissingTable
from projections.databases.port import Database
from projections.databases.sqlite import SqliteDatabase, stored_table
from tests.integration.projections.databases.contract import DatabaseTestCase


class TestSqliteDatabase(DatabaseTestCase):
    def create_database(self, request: pytest.FixtureRequest, tmp_path: Path) -> Database:
        return SqliteDatabase(tmp_path / "views.sqlite3")

    def unavailable_database(self, request: pytest.FixtureRequest, tmp_path: Path) -> Database:
        directory = tmp_path / "a-directory"
        directory.mkdir()
        return SqliteDatabase(directory)

    @contextmanager
    def held_elsewhere(
        self, db: Database, request: pytest.FixtureRequest, tmp_path: Path
    ) -> Iterator[Database]:
        assert isinstance(db, SqliteDatabase)
        with db.transaction():  # holds the file's write lock
            yield SqliteDatabase(db.path, busy_timeout_s=0.2)


def test_stored_table_gives_the_stored_values_unconverted(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "views.sqlite3")
    db.execute(
        "CREATE TABLE t (k {text} PRIMARY KEY, at {ts}, amount {decimal},"
        " doubled {bigint} GENERATED ALWAYS AS (length(k) * 2))"
    )
    moment = datetime(2026, 3, 2, 10, tzinfo=UTC)
    db.execute("INSERT INTO t (k, at, amount) VALUES (?, ?, ?)", ["a", db.param(moment), "1.50"])
    db.close()
    columns, rows = stored_table(db.path, "t")
    assert columns == ["k", "at", "amount"]  # the generated column is computed, not copied
    assert rows == [("a", "2026-03-02T10:00:00.000000+00:00", "1.50")]


def test_stored_table_of_a_missing_table_says_so(tmp_path: Path) -> None:
    SqliteDatabase(tmp_path / "views.sqlite3").execute("CREATE TABLE other (k {text})")
    with pytest.raises(MissingTable, match="no such table: t"):
        stored_table(tmp_path / "views.sqlite3", "t")
