"""The SQLite adapter (the embedded default's views) against the Database contract."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from projections.databases.port import Database
from projections.databases.sqlite import SqliteDatabase
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
