"""A rebuild whose process dies (killed, or ended by SIGTERM: the CLI has no handler for
it) leaves no worker process behind: idle workers waiting for checksum tasks see the end of
the task pipe and end, instead of waiting for ever under PID 1.

The rebuild runs in a process of its own (the embedded default: no services), stopped in
its swap once its workers have rebuilt and checksummed everything; this test kills it."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bootstrap import bootstrap
from bootstrap.settings import Settings
from domain.application import BillingApplication
from tests.integration.replay.conftest import project_all, traffic_commands, write

# Generous: the workers end as soon as they see the end of the pipe.
_GONE_WITHIN_S = 30.0
_REPO = Path(__file__).resolve().parents[3]


def rebuild_then_hang(data_dir: str) -> None:
    """In the child process: a real rebuild on two cores, which prints its workers' ids on
    the first swap (once it has collected that group's checksums) and then waits for ever,
    for the test to kill it."""
    from bootstrap.read_models import READ_MODEL_NAMES
    from replay import rebuild as rebuild_module
    from replay import shard_processes

    shard_processes.usable_cores = lambda: 2
    swap = rebuild_module._swap_group

    def swap_then_hang(**arguments: Any) -> Any:
        swap(**arguments)
        pids = [child.pid for child in multiprocessing.active_children()]
        print(" ".join(str(pid) for pid in pids), flush=True)
        while True:
            time.sleep(60)

    rebuild_module._swap_group = swap_then_hang
    rebuild_module.rebuild(bootstrap(Settings.embedded_in(Path(data_dir))), READ_MODEL_NAMES)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie left for a parent that does not reap is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings.embedded_in(tmp_path_factory.mktemp("orphans") / "data")
    app = BillingApplication(env=bootstrap(settings).ledger.environment())
    write(app, traffic_commands())
    app.close()
    project_all(settings)
    return settings


@pytest.fixture
def workers() -> Iterator[list[int]]:
    """The worker ids the test saw: any still running at the end are killed (by id)."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_no_worker_outlives_a_killed_rebuild(
    ledger: Settings, workers: list[int], sig: signal.Signals
) -> None:
    code = (
        "import sys; from tests.integration.replay.test_rebuild_orphans import "
        "rebuild_then_hang; rebuild_then_hang(sys.argv[1])"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code, str(ledger.data_dir)],
        cwd=_REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        workers.extend(int(pid) for pid in parent.stdout.readline().split())
        assert len(workers) == 2, "the rebuild should run two workers"
        assert all(alive(pid) for pid in workers)
        parent.send_signal(sig)
        assert parent.wait(_GONE_WITHIN_S) == -sig
        deadline = time.monotonic() + _GONE_WITHIN_S
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [pid for pid in workers if alive(pid)] == []
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
