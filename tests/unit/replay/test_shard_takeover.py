"""Rebuild workers that die, with real processes and real SIGKILLs (replay/shard_processes.py):
one that dies before its first unit fails the rebuild in one line (never a wait for ever),
and once the parent has taken a dead worker's checksum tasks over no live worker opens a
place again (the parent may hold the live side next). The read-model homes are stand-ins
that write down which process opens what: the workers' bookkeeping is under test here, the
real databases in tests/integration/replay/test_rebuild_groups.py."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from replay import shard_processes
from replay.shard_processes import ShardRebuildFailed, ShardWorkers, Unit


class _Opened:
    def close(self) -> None:
        pass


class _Home:
    """Writes a line to ``log`` each time a process opens one of its places."""

    def __init__(self, log: Path) -> None:
        self.log = log

    def _opens(self, what: str) -> _Opened:
        with self.log.open("a") as out:
            out.write(f"{os.getpid()} {what}\n")
        return _Opened()

    def live_reader(self) -> _Opened:
        return self._opens("live")

    def rebuild_place(self, tag: str) -> None:
        return None

    def reader(self, place: Any) -> _Opened:
        return self._opens("rebuilt")

    def fingerprint(self, db: Any, table: str) -> None:
        return None


class _Group:
    def __init__(self, names: list[str], log: Path) -> None:
        self.names = names
        self.home = _Home(log)


class _Site:
    def __init__(self, log: Path) -> None:
        self.log = log

    def shard_names(self) -> list[str]:
        return ["only"]

    def groups(self, names: Any) -> list[_Group]:
        return [_Group(["views"], self.log), _Group(["analytics"], self.log)]

    def for_another_process(self) -> _Site:
        return self

    def ledger_source(self, shard: str) -> contextlib.nullcontext[None]:
        # The units under test are stand-ins that never ask the shared read for a batch.
        return contextlib.nullcontext()


def _first_worker() -> bool:
    return multiprocessing.current_process().name.endswith("-0")


def _workers(monkeypatch: pytest.MonkeyPatch, log: Path, unit_seconds: list[float]) -> Any:
    """Two workers of one unit each, unit ``i`` taking ``unit_seconds[i]``."""

    def rebuild_unit(job: Any, unit: int, counters: Any) -> None:
        time.sleep(unit_seconds[unit])

    monkeypatch.setattr(shard_processes, "_rebuild_unit", rebuild_unit)
    monkeypatch.setattr(shard_processes, "tracked_positions", lambda db: {})
    monkeypatch.setattr(shard_processes, "usable_cores", lambda: 2)
    site: Any = _Site(log)  # the part of a ReplaySite the workers use
    return ShardWorkers(site, ["views", "analytics"], "t", 10, [Unit(0, 0), Unit(0, 1)])


def test_a_worker_killed_before_its_first_unit_fails_the_rebuild_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    in_worker = shard_processes._Tasks.in_worker

    def killed_at_start(tasks: Any) -> None:
        if _first_worker():
            os.kill(os.getpid(), signal.SIGKILL)
        in_worker(tasks)

    monkeypatch.setattr(shard_processes._Tasks, "in_worker", killed_at_start)
    workers = _workers(monkeypatch, tmp_path / "opened", [0.5, 0.5])
    ended: list[BaseException] = []

    def wait() -> None:
        try:
            workers.wait()
        except BaseException as error:  # handed to the test's thread
            ended.append(error)

    waiting = threading.Thread(target=wait, daemon=True)
    try:
        waiting.start()
        waiting.join(30)
        assert not waiting.is_alive(), "the rebuild waits for ever for a dead worker"
    finally:
        workers.close()
    assert [type(error) for error in ended] == [ShardRebuildFailed]
    assert str(ended[0]) == "rebuilding views from only failed: its process was killed by SIGKILL"


def test_no_worker_opens_a_place_once_the_parent_took_a_dead_worker_s_tasks_over(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Worker 0, done first, takes the first task and is killed checksumming it; worker 1,
    still rebuilding, would take the second one (still queued) after the parent collected
    every checksum itself and went on to hold the live side."""
    log = tmp_path / "opened"

    def killed_checksumming(db: Any, table: str, *fingerprints: Any) -> str:
        if _first_worker():
            os.kill(os.getpid(), signal.SIGKILL)
        return f"sum of {table}"

    monkeypatch.setattr(shard_processes, "table_checksum", killed_checksumming)
    parent = os.getpid()
    with _workers(monkeypatch, log, [0.2, 2.0]) as workers:
        ticket = workers.ask_checksums(1, ["t1", "t2", "t3", "t4"], live=True)
        sums, _ = workers.collect_checksums(ticket)
        collected = len(log.read_text().splitlines())
        workers.wait()
        time.sleep(0.5)  # time for worker 1 to take the queued task
        after = log.read_text().splitlines()[collected:]
    assert sums == {table: f"sum of {table}" for table in ["t1", "t2", "t3", "t4"]}
    assert [line for line in after if not line.startswith(f"{parent} ")] == []
