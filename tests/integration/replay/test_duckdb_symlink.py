"""A symlinked EVLEDGER_DUCKDB_PATH (a link to a file on another disk) keeps its link
through a rebuild: the rebuilt file is made beside the file the link names and takes its
name there, and the readers' copy stays beside the link (replay/home_duckdb.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bootstrap import bootstrap
from bootstrap.settings import Settings
from domain.application import BillingApplication
from projections.analytics_snapshot import snapshot_path
from tests.integration.replay.conftest import (
    live_contents,
    project_all,
    run_replay,
    traffic_commands,
    write,
)


def test_a_rebuild_swaps_the_file_a_symlinked_path_names_and_keeps_the_link(
    tmp_path: Path,
) -> None:
    disk = tmp_path / "other-disk"
    disk.mkdir()
    (tmp_path / "links").mkdir()
    link = tmp_path / "links" / "analytics.duckdb"
    link.symlink_to(Path("..") / "other-disk" / "analytics-data.duckdb")  # relative, dangling
    settings = dataclasses.replace(Settings.embedded_in(tmp_path / "data"), duckdb_path=link)
    app = BillingApplication(env=bootstrap(settings).ledger.environment())
    write(app, traffic_commands(seed=7))
    app.close()
    project_all(settings)
    target = disk / "analytics-data.duckdb"
    assert target.is_file()
    before, replaced = live_contents(settings), target.stat().st_ino

    for _ in range(2):  # the second acts on the file the first swapped in, by the same link
        result = run_replay(settings, "rebuild")
        assert result.exit_code == 0, result.output
        assert result.output.count("swapped in") == 2

        assert link.is_symlink() and link.resolve() == target.resolve()
        assert target.stat().st_ino != replaced  # the rebuilt file took the name
        replaced = target.stat().st_ino
        assert live_contents(settings) == before
        assert sorted(p.name for p in disk.iterdir()) == ["analytics-data.duckdb"]
        copy = snapshot_path(link)
        assert sorted(p.name for p in link.parent.iterdir()) == ["analytics.duckdb", copy.name]
        assert copy.stat().st_size == target.stat().st_size  # the swapped-in file's copy
