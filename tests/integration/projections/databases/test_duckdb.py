"""The DuckDB adapter (analytics) against the Database contract; busy means another
process holds the file, which DuckDB allows one writer at a time."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from projections.databases.duckdb import DuckDatabase
from projections.databases.port import Database
from tests.integration.projections.databases.contract import DatabaseTestCase

_HOLD = "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); input()"


class TestDuckDatabase(DatabaseTestCase):
    def create_database(self, request: pytest.FixtureRequest, tmp_path: Path) -> Database:
        return DuckDatabase(tmp_path / "analytics.duckdb")

    def unavailable_database(self, request: pytest.FixtureRequest, tmp_path: Path) -> Database:
        directory = tmp_path / "a-directory"
        directory.mkdir()
        return DuckDatabase(directory)

    @contextmanager
    def held_elsewhere(
        self, db: Database, request: pytest.FixtureRequest, tmp_path: Path
    ) -> Iterator[Database]:
        assert isinstance(db, DuckDatabase)
        db.close()  # this process lets go; another one takes the file
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLD, str(db.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "held\n"
            yield DuckDatabase(db.path)
        finally:
            holder.communicate("\n", timeout=30)
