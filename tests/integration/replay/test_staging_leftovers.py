"""The readers' copy that a rebuild's swap (or a projector) stages beside the analytics file
is removed by the next rebuild when the process that made it was killed, and kept while
its process is alive (projections/staging.py): real processes, a real SIGKILL."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bootstrap import bootstrap
from bootstrap.settings import Settings
from domain.application import BillingApplication
from tests.integration.replay.conftest import (
    live_contents,
    project_all,
    run_replay,
    traffic_commands,
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
    child = subprocess.Popen(
        [sys.executable, "-c", _STAGING, str(live)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "staged"
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=30)
        child.stdin.close()
        child.stdout.close()


def partials(live: Path) -> set[Path]:
    return set(live.parent.glob(f".{live.stem}.snapshot{live.suffix}.*.partial"))


def test_a_killed_process_s_copy_goes_with_the_next_rebuild_a_live_one_s_stays(
    tmp_path: Path,
) -> None:
    settings = Settings.embedded_in(tmp_path / "data")
    app = BillingApplication(env=bootstrap(settings).ledger.environment())
    write(app, traffic_commands(seed=3))
    app.close()
    project_all(settings)
    before = live_contents(settings)
    live = settings.analytics_path

    with staging(live) as killed:
        killed.send_signal(signal.SIGKILL)
        assert killed.wait(timeout=30) == -signal.SIGKILL
    abandoned = partials(live)
    assert len(abandoned) == 1
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
