"""The readers' copy that a rebuild's swap (or a projector) stages beside the analytics file
is removed by the next rebuild (as it starts, and at its swap) and by the projector's next
copy when the process that made it was killed, and kept while its process is alive
(projections/staging.py): real processes, a real SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bootstrap import bootstrap
from bootstrap.settings import Settings
from domain.application import BillingApplication
from projections.analytics_snapshot import snapshot_path
from replay.home_duckdb import DuckHome
from tests.integration.replay.conftest import (
    live_contents,
    project_all,
    run_replay,
    traffic_commands,
    waiting_child,
    write,
)

_STAGING = """
import sys
from pathlib import Path
from projections.analytics_snapshot import staged_snapshot
live = Path(sys.argv[1])
with staged_snapshot(live, live):
    print("staged", flush=True)
    sys.stdin.readline()
"""


@contextmanager
def staging(live: Path) -> Iterator[subprocess.Popen[str]]:
    """A process that has copied ``live`` into its staging file and waits to publish it."""
    with waiting_child(_STAGING, str(live), ready="staged") as child:
        yield child


def killed_while_staging(live: Path) -> Path:
    """The staging file a process killed while copying ``live`` left behind."""
    before = partials(live)
    with staging(live) as killed:
        killed.send_signal(signal.SIGKILL)
        assert killed.wait(timeout=30) == -signal.SIGKILL
    (left,) = partials(live) - before
    return left


def ledger_with_analytics(tmp_path: Path) -> Settings:
    settings = Settings.embedded_in(tmp_path / "data")
    app = BillingApplication(env=bootstrap(settings).ledger.environment())
    write(app, traffic_commands(seed=3))
    app.close()
    project_all(settings)
    return settings


def partials(live: Path) -> set[Path]:
    return set(live.parent.glob(f".{live.stem}.snapshot{live.suffix}.*.partial"))


def test_a_killed_process_s_copy_goes_with_the_next_rebuild_a_live_one_s_stays(
    tmp_path: Path,
) -> None:
    settings = ledger_with_analytics(tmp_path)
    before = live_contents(settings)
    live = settings.analytics_path
    abandoned = {killed_while_staging(live)}
    assert next(iter(abandoned)).stat().st_size == live.stat().st_size

    with staging(live) as alive:
        (staged,) = partials(live) - abandoned
        result = run_replay(settings, "rebuild")
        assert result.exit_code == 0, result.output
        assert partials(live) == {staged}  # the killed one's removed, the live one's kept
        assert live_contents(settings) == before
        assert alive.stdin is not None
        alive.stdin.write("\n")
        alive.stdin.flush()
        assert alive.wait(timeout=30) == 0
    assert partials(live) == set()


def test_a_copy_killed_during_a_rebuild_goes_at_its_swap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = ledger_with_analytics(tmp_path)
    live = settings.analytics_path
    left: list[Path] = []
    rebuild_place = DuckHome.rebuild_place
    rebuilding = os.getpid()  # the rebuild's worker processes inherit this patch

    def then_a_copy_killed(home: DuckHome, tag: str) -> object:
        place = rebuild_place(home, tag)  # its sweep done: the kill comes after
        if not left and os.getpid() == rebuilding:
            left.append(killed_while_staging(live))
        return place

    monkeypatch.setattr(DuckHome, "rebuild_place", then_a_copy_killed)
    result = run_replay(settings, "rebuild")
    assert result.exit_code == 0, result.output
    assert len(left) == 1
    assert partials(live) == set()


def test_a_copy_killed_is_removed_by_the_projector_s_next_copy(tmp_path: Path) -> None:
    settings = ledger_with_analytics(tmp_path)
    live = settings.analytics_path
    killed_while_staging(live)
    app = BillingApplication(env=bootstrap(settings).ledger.environment())
    write(app, traffic_commands(seed=4))
    app.close()
    published = snapshot_path(live).stat().st_mtime_ns
    project_all(settings)
    assert snapshot_path(live).stat().st_mtime_ns != published  # a copy was made
    assert partials(live) == set()
