"""The rebuild places of a file database are owned through a lock file beside them
(replay/file_leftovers.py): a lock file nobody holds takes its rebuild's files with it,
one held, or missing (an earlier version's rebuild, which may be running), leaves them."""

from __future__ import annotations

import threading
from pathlib import Path

from replay.file_leftovers import RebuildFiles


def test_places_without_their_lock_file_are_an_earlier_version_s_and_stay(
    tmp_path: Path,
) -> None:
    """A rebuild of a version before the lock files may still be running: its file has no
    lock file, and nothing says it is abandoned."""
    live = tmp_path / "analytics.duckdb"
    files = RebuildFiles(live, ".duckdb")
    earlier = files.place("0123456789")
    earlier.write_bytes(b"x" * 10)
    with files.owner("abcdefabcd"):
        files.place("abcdefabcd").write_bytes(b"y" * 20)
        assert files.remove_abandoned() == []  # its owner is alive
    assert files.remove_abandoned() == []  # its owner removed its lock file: not a leftover
    assert earlier.exists()


def test_a_lock_file_nobody_holds_takes_its_rebuild_s_files_with_it(tmp_path: Path) -> None:
    """What a killed rebuild of a sharded ledger leaves: its lock file, which nobody holds,
    its place with a WAL and another shard's place; the live file and its other rebuilds
    stay."""
    live = tmp_path / "analytics.duckdb"
    live.write_bytes(b"live")
    sizes = {
        ".analytics.rebuild-0123456789.duckdb.lock": 0,
        "analytics.rebuild-0123456789.duckdb": 300,
        "analytics.rebuild-0123456789.duckdb.wal": 20,
        "analytics.rebuild-0123456789_1.duckdb": 100,
    }
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(b"x" * size)
    files = RebuildFiles(live, ".duckdb")
    with files.owner("abcdefabcd"):
        files.place("abcdefabcd").write_bytes(b"y")
        removed = files.remove_abandoned()
        assert [(Path(gone.where).name, gone.size_bytes) for gone in removed] == [
            ("analytics.rebuild-0123456789.duckdb", 320),
            ("analytics.rebuild-0123456789_1.duckdb", 100),
        ]
        assert sorted(path.name for path in tmp_path.iterdir()) == [
            ".analytics.rebuild-abcdefabcd.duckdb.lock",
            "analytics.duckdb",
            "analytics.rebuild-abcdefabcd.duckdb",
        ]


def test_a_running_rebuild_s_journals_coming_and_going_never_fail_a_sweep(tmp_path: Path) -> None:
    """DuckDB's WAL comes and goes with its checkpoints while the rebuild runs: a sweep
    beside it measures nothing of a place whose owner is alive."""
    live = tmp_path / "analytics.duckdb"
    live.write_bytes(b"x")
    files = RebuildFiles(live, ".duckdb")
    stop = threading.Event()
    with files.owner("aaaaaaaaaa"):
        place = files.place("aaaaaaaaaa")
        place.write_bytes(b"y" * 100)
        wal = Path(f"{place}.wal")

        def checkpoints() -> None:
            while not stop.is_set():
                wal.write_bytes(b"w")
                wal.unlink(missing_ok=True)

        churning = threading.Thread(target=checkpoints)
        churning.start()
        try:
            for _ in range(3000):
                assert files.remove_abandoned() == []
        finally:
            stop.set()
            churning.join()
        assert place.exists()


def test_an_owner_that_cannot_remove_its_places_leaves_its_lock_file_for_the_next(
    tmp_path: Path,
) -> None:
    """A place the rebuild could not remove stays owned by its lock file (nobody holds it
    any more), so the next sweep takes it once it can."""
    live = tmp_path / "views.sqlite3"
    files = RebuildFiles(live, ".sqlite3")
    with files.owner("bbbbbbbbbb"):
        stuck = files.place("bbbbbbbbbb")
        stuck.mkdir()  # which unlink cannot remove
        (stuck / "inside").write_bytes(b"z")
    lock = tmp_path / ".views.rebuild-bbbbbbbbbb.sqlite3.lock"
    assert lock.exists() and stuck.exists()
    assert files.remove_abandoned() == []  # still stuck: kept, said in a warning
    assert lock.exists()
    (stuck / "inside").unlink()
    stuck.rmdir()
    stuck.write_bytes(b"q" * 7)
    assert [(gone.where, gone.size_bytes) for gone in files.remove_abandoned()] == [(str(stuck), 7)]
    assert sorted(tmp_path.iterdir()) == []
