"""The readers' copy of the analytics file, on real DuckDB files: readers work while the
projector holds its file, see only committed batches, and never hold the projector up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from projections.analytics import Analytics
from projections.analytics_queries import open_read_only
from projections.analytics_snapshot import (
    SnapshotError,
    SnapshotPublisher,
    publish_snapshot,
    snapshot_path,
)
from projections.databases.duckdb import DuckDatabase
from projections.databases.errors import ReadModelDatabaseError


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _sessions(path: Path) -> int:
    reader = open_read_only(path)
    try:
        return int(reader.execute("SELECT count(*) AS n FROM fact_sessions")[0]["n"])
    finally:
        reader.close()


def _held_by_another_process(path: Path) -> bool:
    opened = subprocess.run(
        [sys.executable, "-c", f"import duckdb; duckdb.connect({str(path)!r}, read_only=True)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return opened.returncode != 0 and "lock" in opened.stderr


def _add(model: Analytics, key: str) -> None:
    with model.db.transaction():
        model.db.execute(
            "INSERT INTO fact_sessions (session_key, currency) VALUES (?, 'EUR')", [key]
        )
    assert model.publisher is not None
    model.publisher.changed()


def test_readers_read_the_copy_while_the_projector_holds_the_file(tmp_path: Path) -> None:
    live = tmp_path / "analytics.duckdb"
    clock = _Clock()
    db = DuckDatabase(live)
    model = Analytics(db, SnapshotPublisher(db, interval_s=10, clock=clock))
    model.create()
    model.after_batch(caught_up=True)
    assert snapshot_path(live).exists()
    assert _sessions(live) == 0

    _add(model, "S1")
    # Catching up: no copy until the interval has passed, and readers keep the last one.
    model.after_batch(caught_up=False)
    assert _sessions(live) == 0
    clock.now = 11
    model.after_batch(caught_up=False)
    assert _sessions(live) == 1

    # A reader keeps its copy open while the next one is published, and the projector
    # goes on writing its own file meanwhile.
    early = open_read_only(live)
    assert early.execute("SELECT count(*) AS n FROM fact_sessions")[0]["n"] == 1
    _add(model, "S2")
    model.after_batch(caught_up=True)
    assert early.execute("SELECT count(*) AS n FROM fact_sessions")[0]["n"] == 1
    # (DuckDB shares one open file per path within a process: a new reader here sees the
    # new copy once the old reader is closed; separate processes see it at once.)
    early.close()
    assert _sessions(live) == 2
    assert model.publisher is not None
    assert model.publisher.published == 3
    # Nothing changed: nothing copied.
    model.after_batch(caught_up=True)
    assert model.publisher.published == 3
    db.close()


def test_without_a_copy_readers_open_the_file_itself(tmp_path: Path) -> None:
    live = tmp_path / "analytics.duckdb"
    model = Analytics(DuckDatabase(live))
    model.create()
    model.db.close()
    assert not snapshot_path(live).exists()
    assert _sessions(live) == 0


def _copied_once_by_a_one_second_clock(tmp_path: Path) -> tuple[Analytics, SnapshotPublisher]:
    """A live model whose first copy is published, on a clock each reading of which is a
    second later: every copy "takes" one second."""
    ticks = iter(range(1_000))
    db = DuckDatabase(tmp_path / "analytics.duckdb")
    publisher = SnapshotPublisher(db, interval_s=0, clock=lambda: float(next(ticks)))
    model = Analytics(db, publisher)
    model.create()
    model.after_batch(caught_up=True)
    assert publisher.published == 1
    return model, publisher


def test_a_slow_copy_is_not_repeated_at_once(tmp_path: Path) -> None:
    model, publisher = _copied_once_by_a_one_second_clock(tmp_path)
    db = model.db
    _add(model, "S1")
    for _ in range(3):  # one, two, three seconds after a one-second copy: too soon
        model.after_batch(caught_up=True)
    assert publisher.published == 1
    model.after_batch(caught_up=True)  # four seconds after it
    assert publisher.published == 2
    assert _sessions(db.path) == 1
    db.close()


def test_a_copy_held_back_is_published_when_the_projector_finishes(tmp_path: Path) -> None:
    model, publisher = _copied_once_by_a_one_second_clock(tmp_path)
    db = model.db
    _add(model, "S1")
    model.after_batch(caught_up=True)  # too soon after the first copy: held back
    assert (publisher.published, _sessions(db.path)) == (1, 0)
    # `project --until-idle` ends here: readers must see what it wrote.
    model.finish()
    assert (publisher.published, _sessions(db.path)) == (2, 1)
    model.finish()  # nothing changed since: nothing copied
    assert publisher.published == 2
    db.close()


def _keyed_rows(db: DuckDatabase, rows: int, batch: int = 50_000) -> None:
    for start in range(0, rows, batch):
        with db.transaction():
            db.execute(
                "INSERT INTO fact_sessions (session_key, currency, customer_id, station_id)"
                " SELECT 'S-' || lpad(n::VARCHAR, 9, '0'), 'EUR', 'C-' || n % 30000,"
                f" 'ST-' || n % 40 FROM range({start}, {start + batch}) AS t(n)"
            )


def test_a_file_whose_key_index_outgrows_memory_is_copied_and_never_lost(
    tmp_path: Path,
) -> None:
    # 600,000 keyed sessions in 32 MiB: DuckDB's own COPY FROM DATABASE of them runs out of
    # memory while committing, and that invalidates the live database; a byte copy of the
    # checkpointed file does not need their key index in memory.
    db = DuckDatabase(tmp_path / "analytics.duckdb", memory_limit_mib=32)
    publisher = SnapshotPublisher(db, interval_s=0)
    model = Analytics(db, publisher)
    model.create()
    _keyed_rows(db, 600_000)
    model.after_batch(caught_up=True)
    assert publisher.published == 1
    assert _sessions(db.path) == 600_000
    # The live file is still this process's.
    assert _held_by_another_process(db.path)

    # Should a copy fail and invalidate the live database all the same (here, the old way
    # of copying), the next copy fails on it and the projector goes on with it reopened,
    # everything committed still there.
    # On the writer's one thread the old copy fails without invalidating; on two it does.
    db.execute("SET threads TO 2")
    db.execute(f"ATTACH '{tmp_path / 'other.duckdb'}' AS other")
    with pytest.raises(ReadModelDatabaseError, match="allocate"):
        db.execute("COPY FROM DATABASE analytics TO other")
    with pytest.raises(ReadModelDatabaseError, match="invalidated"):
        db.execute("SELECT 1")
    publisher.changed()
    model.after_batch(caught_up=True)
    assert publisher.published == 1
    _add(model, "S-late")
    model.after_batch(caught_up=True)
    assert publisher.published == 2
    assert _sessions(db.path) == 600_001
    db.close()


@pytest.mark.parametrize("beside", ["the file", "the link"])
def test_a_wal_left_beside_a_symlinked_file_or_its_link_stops_the_copy(
    tmp_path: Path, beside: str
) -> None:
    """Changes a checkpoint left in a WAL would be missing from the copy, wherever DuckDB
    keeps the WAL of a file opened through a symlink."""
    (tmp_path / "disk").mkdir()
    (tmp_path / "links").mkdir()
    live = tmp_path / "links" / "analytics.duckdb"
    live.symlink_to(Path("..") / "disk" / "analytics.duckdb")
    db = DuckDatabase(live)
    db.execute("CREATE TABLE t (v INTEGER)")
    publish_snapshot(db)
    place = live.resolve() if beside == "the file" else live
    wal = place.with_name(place.name + ".wal")
    wal.write_bytes(b"changes")  # as a checkpoint that could not fold them in left them
    try:
        with pytest.raises(SnapshotError, match="still holds changes"):
            publish_snapshot(db)
    finally:
        db.close()
