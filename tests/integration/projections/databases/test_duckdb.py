"""The DuckDB adapter (analytics) against the Database contract; busy means another
process holds the file, which DuckDB allows one writer at a time."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

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


def test_a_released_buffer_holds_no_pages_and_keeps_its_limit(tmp_path: Path) -> None:
    """A scan fills the buffer up to the limit; released, it holds (next to) nothing, and
    the next scan may fill it again."""
    db = DuckDatabase(tmp_path / "analytics.duckdb", memory_limit_mib=32)
    db.execute(
        "CREATE TABLE t AS SELECT i, md5(i::VARCHAR) || md5((i * 7)::VARCHAR) AS k"
        " FROM range(1000000) r(i)"
    )
    db.execute("CHECKPOINT")
    db.close()

    def buffered_mib() -> int:
        rows = db.execute("SELECT sum(memory_usage_bytes) // 1048576 AS mib FROM duckdb_memory()")
        return int(rows[0]["mib"])

    assert sum(1 for _ in db.stream("SELECT * FROM t")) == 1_000_000
    assert buffered_mib() >= 16
    db.release_buffer()
    assert buffered_mib() <= 4
    assert db.execute("SELECT current_setting('memory_limit') AS v")[0]["v"] == "32.0 MiB"
    assert sum(1 for _ in db.stream("SELECT * FROM t")) == 1_000_000
    assert buffered_mib() >= 16
    db.close()


@pytest.mark.parametrize("limit_mib", [None, 19251])
def test_a_released_buffer_gets_back_its_exact_limit(tmp_path: Path, limit_mib: int | None) -> None:
    """The configured limit, not its rounded display (19251 MiB shows as 18.7 GiB, set
    back 18.6 GiB), or DuckDB's default when none is configured."""
    db = DuckDatabase(tmp_path / "analytics.duckdb", memory_limit_mib=limit_mib)

    before = db.execute("SELECT current_setting('memory_limit') AS v")[0]["v"]
    for _ in range(3):
        db.release_buffer()
    assert db.execute("SELECT current_setting('memory_limit') AS v")[0]["v"] == before
    db.close()


def test_a_writer_opening_as_the_file_is_replaced_gets_the_new_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB opens the file before it locks it: a rebuild's rename just after the open
    (replayed here right after DuckDB's first connect) must not leave the writer on the
    replaced file."""
    import duckdb

    live, new = tmp_path / "analytics.duckdb", tmp_path / "rebuilt.duckdb"
    for path, value in ((live, 1), (new, 2)):
        with duckdb.connect(str(path)) as connection:
            connection.execute("CREATE TABLE t AS SELECT ? AS v", [value])
    connect = duckdb.connect
    renames = [new]

    def connect_then_rename(*args: Any, **kwargs: Any) -> Any:
        connection = connect(*args, **kwargs)
        if renames:
            os.replace(renames.pop(), live)
        return connection

    monkeypatch.setattr(duckdb, "connect", connect_then_rename)
    db = DuckDatabase(live)
    assert db.execute("SELECT v FROM t") == [{"v": 2}]
    db.close()
