"""The DuckDB swap's rename on real files and real processes: it refuses while any process
has either file open or a WAL holds changes, leaving both files as they were, and while it
holds the files no DuckDB opens them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from replay.duck_file_swap import SwapUnsupported, replace_database, unopened
from replay.home_duckdb import DuckHome
from replay.swap import LiveModelBusy
from tests.integration.replay.conftest import waiting_child


def _file(path: Path, value: int) -> Path:
    with duckdb.connect(str(path)) as connection:
        connection.execute("CREATE TABLE t (v INTEGER PRIMARY KEY)")
        connection.execute("INSERT INTO t VALUES (?)", [value])
    return path


def _value(path: Path) -> int:
    with duckdb.connect(str(path), read_only=True) as connection:
        row = connection.execute("SELECT v FROM t").fetchone()
    assert row is not None
    return int(row[0])


@contextmanager
def _opened_elsewhere(path: Path, *, read_only: bool) -> Iterator[None]:
    """Another process has ``path`` open until the block ends."""
    code = (
        "import duckdb, sys\n"
        f"c = duckdb.connect({str(path)!r}, read_only={read_only})\n"
        "print('open', flush=True)\n"
        "sys.stdin.read()\n"
    )
    with waiting_child(code, ready="open") as child:
        yield
        assert child.stdin is not None
        child.stdin.close()
        assert child.wait(timeout=30) == 0


@pytest.mark.parametrize("held", ["live", "new"])
@pytest.mark.parametrize("read_only", [True, False])
def test_a_file_another_process_has_open_is_not_replaced(
    tmp_path: Path, held: str, read_only: bool
) -> None:
    live, new = _file(tmp_path / "live.duckdb", 1), _file(tmp_path / "new.duckdb", 2)
    with (
        _opened_elsewhere(live if held == "live" else new, read_only=read_only),
        pytest.raises(LiveModelBusy, match="is open elsewhere"),
    ):
        replace_database(new, live)
    assert (_value(live), _value(new)) == (1, 2)
    replace_database(new, live)
    assert _value(live) == 2
    assert not new.exists()


def test_no_duckdb_opens_a_file_while_it_is_held(tmp_path: Path) -> None:
    live = _file(tmp_path / "live.duckdb", 1)
    opening = [sys.executable, "-c", f"import duckdb; duckdb.connect({str(live)!r})"]
    with unopened(live):
        refused = subprocess.run(opening, capture_output=True, text=True, check=False)
    assert refused.returncode != 0
    assert "lock" in refused.stderr
    assert subprocess.run(opening, capture_output=True, check=False).returncode == 0


def test_changes_left_in_a_wal_stop_the_rename(tmp_path: Path) -> None:
    """A WAL holds changes for the file it lies beside: DuckDB would replay them into the
    file that took its name."""
    live, new = _file(tmp_path / "live.duckdb", 1), _file(tmp_path / "new.duckdb", 2)
    with duckdb.connect(str(live)) as connection:
        connection.execute("PRAGMA disable_checkpoint_on_shutdown")
        connection.execute("SET wal_autocheckpoint = '1GB'")
        connection.execute("UPDATE t SET v = 3")
    assert (tmp_path / "live.duckdb.wal").stat().st_size > 0
    with pytest.raises(LiveModelBusy, match="not checkpointed"):
        replace_database(new, live)
    assert (_value(live), _value(new)) == (3, 2)


def test_a_system_without_open_file_description_locks_is_told_before_rebuilding(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "fcntl", None)  # as on Windows: no such module
    home = DuckHome(tmp_path / "analytics.duckdb", in_data_dir=True)
    with pytest.raises(SwapUnsupported, match="open file description locks"):
        home.rebuild_place("unsupported")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("beside", ["the file", "the link"])
def test_changes_in_a_wal_beside_a_symlinked_file_or_its_link_stop_the_rename(
    tmp_path: Path, beside: str
) -> None:
    """The live path a symlink: the WAL of changes made through it is looked for beside
    the file it names and beside the link, wherever this DuckDB version keeps it."""
    (tmp_path / "disk").mkdir()
    (tmp_path / "links").mkdir()
    live = _file(tmp_path / "disk" / "live.duckdb", 1)
    new = _file(tmp_path / "disk" / "new.duckdb", 2)
    link = tmp_path / "links" / "live.duckdb"
    link.symlink_to(Path("..") / "disk" / "live.duckdb")
    with duckdb.connect(str(link)) as connection:
        connection.execute("PRAGMA disable_checkpoint_on_shutdown")
        connection.execute("SET wal_autocheckpoint = '1GB'")
        connection.execute("UPDATE t SET v = 3")
    (wal,) = [p for p in (*live.parent.iterdir(), *link.parent.iterdir()) if p.suffix == ".wal"]
    assert wal.stat().st_size > 0
    wal.rename((live if beside == "the file" else link).with_name("live.duckdb.wal"))
    with pytest.raises(LiveModelBusy, match="not checkpointed"):
        replace_database(new, live, link)
    assert _value(new) == 2
