"""The DuckDB adapter (analytics) against the Database contract; busy means another
process holds the file, which DuckDB allows one writer at a time."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest

from projections.databases.duckdb import DuckDatabase
from projections.databases.port import Database, upsert
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


def test_upserted_decimals_round_to_the_column_scale_and_text_stays_text(tmp_path: Path) -> None:
    """Rows reach DuckDB as an Arrow table whose decimals are text: the stored values are
    those a bound Decimal gives (rounded half away from zero to the column's scale)."""
    db = DuckDatabase(tmp_path / "analytics.duckdb")
    db.execute("CREATE TABLE t (k {text} PRIMARY KEY, rate {decimal}, n {bigint}, note {text})")
    rows = {
        ("a",): {"rate": Decimal("0.1234565"), "n": 1, "note": "12"},
        ("b",): {"rate": Decimal("-1E+3"), "n": None, "note": None},
        ("c",): {"rate": 7, "n": -(2**63), "note": "x"},
    }
    upsert(db, "t", ["k"], rows)
    stored = {row["k"]: row for row in db.execute("SELECT * FROM t")}
    assert stored["a"] == {"k": "a", "rate": Decimal("0.123457"), "n": 1, "note": "12"}
    assert stored["b"] == {"k": "b", "rate": Decimal("-1000"), "n": None, "note": None}
    assert stored["c"] == {"k": "c", "rate": Decimal("7"), "n": -(2**63), "note": "x"}
    db.close()
