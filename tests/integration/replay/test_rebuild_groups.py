"""A one-shard rebuild on two cores, on the real services: each database group (the views
in PostgreSQL, analytics in DuckDB) is projected by a worker process of its own, and the
rebuild gives the same checksums and swaps as one process doing it all; a failing or
killed group worker swaps nothing, and the one line says which group it was rebuilding."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from bootstrap import bootstrap
from bootstrap.read_models import READ_MODEL_NAMES
from bootstrap.settings import Settings
from domain.application import BillingApplication
from replay import rebuild as rebuild_module
from replay import shard_processes
from replay.rebuild import RebuildReport, rebuild
from replay.targets import REBUILD_SCHEMA_PREFIX
from tests.integration.replay.conftest import (
    assert_killed_worker_swapped_nothing,
    live_contents,
    pg_schemas,
    project_all,
    rebuild_killing_a_worker,
    run_replay,
    traffic_commands,
    write,
)
from tests.integration.replay.test_rebuild_kafka import table_oid
from tests.integration.replay.test_replay_shards import failed_on_broken_analytics

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

VIEWS_WORKER = "payment_history, refund_status from the ledger"


def cores(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    """Rebuild as on a machine with ``count`` usable cores (the units and workers follow)."""
    monkeypatch.setattr(shard_processes, "usable_cores", lambda: count)


def checksums(report: RebuildReport) -> dict[tuple[str, str], tuple[Any, Any]]:
    return {
        (c.projection, c.table): (
            None if c.live is None else (c.live.rows, c.live.digest),
            (c.rebuilt.rows, c.rebuilt.digest),
        )
        for outcome in report.outcomes
        for c in outcome.comparisons
    }


def live_models_behind(settings: Settings, writer: BillingApplication) -> int:
    """Half the traffic projected, the other half written after: the ledger's head."""
    commands = traffic_commands()
    write(writer, commands[: len(commands) // 2])
    project_all(settings)
    return write(writer, commands[len(commands) // 2 :])


def test_a_one_shard_rebuild_projects_each_group_in_its_own_process(
    kafka_settings: Settings,
    writer: BillingApplication,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    head = live_models_behind(kafka_settings, writer)
    # Which process rebuilt which unit: the workers are forked, so they run this wrapper.
    log = tmp_path / "units.log"
    rebuild_unit = shard_processes._rebuild_unit

    def logged(job: Any, unit: int, counters: Any) -> None:
        with log.open("a") as out:
            out.write(f"{os.getpid()} {job.all_units[unit].group}\n")
        rebuild_unit(job, unit, counters)

    monkeypatch.setattr(shard_processes, "_rebuild_unit", logged)

    # Other tests' rebuilds share the database: only this one's schemas must be gone.
    others = set(pg_schemas(kafka_settings.pg_dsn or "", REBUILD_SCHEMA_PREFIX))
    cores(monkeypatch, 1)
    alone = rebuild(bootstrap(kafka_settings), READ_MODEL_NAMES)
    assert not log.exists()  # one unit, rebuilt in this process
    after_one = live_contents(kafka_settings)
    oid = table_oid(kafka_settings, "payment_history")

    cores(monkeypatch, 2)
    apart = rebuild(bootstrap(kafka_settings), READ_MODEL_NAMES)

    units = [line.split() for line in log.read_text().splitlines()]
    assert sorted(group for _, group in units) == ["0", "1"]
    assert len({pid for pid, _ in units}) == 2 and str(os.getpid()) not in {p for p, _ in units}
    assert alone.all_swapped and apart.all_swapped
    assert alone.events == apart.events == head
    assert [o.positions for o in apart.outcomes] == [o.positions for o in alone.outcomes]
    # Every table compared and equal, with the same checksums either way.
    sums = checksums(apart)
    assert len(sums) == 16 and sums == checksums(alone)
    assert all(live == rebuilt for live, rebuilt in sums.values())
    assert table_oid(kafka_settings, "payment_history") != oid  # swapped in again
    assert live_contents(kafka_settings) == after_one
    assert set(pg_schemas(kafka_settings.pg_dsn or "", REBUILD_SCHEMA_PREFIX)) <= others
    assert not list(kafka_settings.data_dir.glob("*.rebuild-*"))


def test_a_failing_group_worker_swaps_nothing_and_says_which(
    kafka_settings: Settings, writer: BillingApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    live_models_behind(kafka_settings, writer)
    before = live_contents(kafka_settings)
    oid = table_oid(kafka_settings, "payment_history")
    cores(monkeypatch, 2)
    # The analytics rebuild file is not a DuckDB database: its worker cannot open it.
    tag, broken, line = failed_on_broken_analytics(
        kafka_settings, monkeypatch, 0, lambda: run_replay(kafka_settings, "rebuild")
    )

    assert line.startswith("evledger: rebuilding analytics from the ledger failed: ")
    assert str(broken) in line and line.endswith("; nothing was swapped")
    # Neither group swapped: the views' worker had done its part, but nothing is swapped
    # before every group is rebuilt.
    assert table_oid(kafka_settings, "payment_history") == oid
    assert live_contents(kafka_settings) == before
    assert not list(kafka_settings.data_dir.glob("*.rebuild-*"))
    assert pg_schemas(kafka_settings.pg_dsn or "", f"{REBUILD_SCHEMA_PREFIX}{tag}") == []


def test_a_killed_group_worker_fails_the_rebuild_naming_its_group(
    kafka_settings: Settings, writer: BillingApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(writer, traffic_commands())
    project_all(kafka_settings)
    before = live_contents(kafka_settings)
    cores(monkeypatch, 2)
    result = rebuild_killing_a_worker(kafka_settings, monkeypatch, lambda unit: unit.group == 0)
    assert_killed_worker_swapped_nothing(result, kafka_settings, before, VIEWS_WORKER)


def test_workers_killed_after_the_views_swapped_leave_their_checksums_to_the_rebuild(
    kafka_settings: Settings, writer: BillingApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every worker killed once its units are done: the rebuild checksums what is left
    itself and swaps the other group in too."""
    commands = traffic_commands()
    write(writer, commands[: len(commands) // 2])
    project_all(kafka_settings)
    cores(monkeypatch, 2)
    oid = table_oid(kafka_settings, "payment_history")
    swap_group = rebuild_module._swap_group

    def workers_killed_before_analytics(**arguments: Any) -> Any:
        if arguments["group"].names == ("analytics",):
            # The rebuild's workers only: the ledger writer's process is a child too, and a
            # write sent before its answers' thread saw it killed fails with
            # WriterUnavailable (a race of this test, about one run in six, not of the
            # rebuild).
            for worker in multiprocessing.active_children():
                if worker.name.startswith("evledger-rebuild-"):
                    os.kill(worker.pid or 0, signal.SIGKILL)
            # The ledger moved: the workers' early checksums of analytics no longer count,
            # so the compare asks for them again.
            write(writer, commands[len(commands) // 2 :])
        return swap_group(**arguments)

    monkeypatch.setattr(rebuild_module, "_swap_group", workers_killed_before_analytics)

    report = rebuild(bootstrap(kafka_settings), READ_MODEL_NAMES)

    assert report.all_swapped
    assert table_oid(kafka_settings, "payment_history") != oid  # the views were swapped
    assert not [outcome.mismatched for outcome in report.outcomes if outcome.mismatched]
    assert not list(kafka_settings.data_dir.glob("*.rebuild-*"))


def test_a_worker_killed_while_checksumming_leaves_its_task_to_the_rebuild(
    kafka_settings: Settings,
    writer: BillingApplication,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The first worker to take a checksum task (after its unit) SIGKILLs itself, as the
    OOM killer would: the task it announced is checksummed by the rebuild, which swaps."""
    write(writer, traffic_commands())
    project_all(kafka_settings)
    before = live_contents(kafka_settings)
    cores(monkeypatch, 2)
    checksum = shard_processes.table_checksum
    killed = tmp_path / "killed"
    rebuilding = os.getpid()  # the workers are forked from this process: patched too

    def killed_once(*arguments: Any, **named: Any) -> Any:
        if os.getpid() != rebuilding:
            try:
                os.close(os.open(killed, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return checksum(*arguments, **named)

    monkeypatch.setattr(shard_processes, "table_checksum", killed_once)

    result = run_replay(kafka_settings, "rebuild")

    assert killed.exists()
    assert result.exit_code == 0, result.output
    assert "swapped in payment_history, refund_status" in result.stderr
    assert "swapped in analytics" in result.stderr
    assert live_contents(kafka_settings) == before
    assert not list(kafka_settings.data_dir.glob("*.rebuild-*"))
