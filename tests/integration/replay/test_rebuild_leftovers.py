"""A rebuild killed outright (SIGKILL of it and its workers, as a machine crash or the OOM
killer would) leaves its full-size places behind: the rebuild's DuckDB file beside the live
one and its PostgreSQL schema. The next `evledger replay` removes them, saying so in one
line, and keeps the live models; the places of a rebuild still running are never touched
(replay/leftovers.py). Real processes, a real SIGKILL, the real broker and server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from bootstrap.settings import Settings
from domain.application import BillingApplication
from projections.databases.postgres import drop_schema
from tests.integration.replay.conftest import (
    create_schema,
    live_contents,
    pg_schemas,
    project_all,
    run_replay,
    settings_env,
    traffic_commands,
    write,
)
from tests.integration.replay.test_rebuild_orphans import alive

pytestmark = pytest.mark.kafka

# Generous: the processes are gone as soon as the kernel has reaped them.
_GONE_WITHIN_S = 30.0

# A rebuild on two cores (a worker per read-model database) that stops before its first
# swap, when every place is full, prints its processes' ids and waits on its stdin.
_REBUILD_THEN_WAIT = """
import multiprocessing, os, sys
from bootstrap import bootstrap
from bootstrap.read_models import READ_MODEL_NAMES
from bootstrap.settings import load_settings
from replay import rebuild as module
from replay import shard_processes

shard_processes.usable_cores = lambda: 2
swap = module._swap_group

def wait_then_swap(**arguments):
    if module._swap_group is wait_then_swap:
        module._swap_group = swap
        pids = [os.getpid(), *(child.pid for child in multiprocessing.active_children())]
        print(" ".join(str(pid) for pid in pids), flush=True)
        sys.stdin.readline()
    return swap(**arguments)

module._swap_group = wait_then_swap
report = module.rebuild(bootstrap(load_settings()), READ_MODEL_NAMES)
sys.exit(0 if report.all_swapped else 1)
"""


@pytest.fixture
def ledger(
    kafka_settings: Settings, writer: BillingApplication, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """A ledger of a day's traffic, projected; the settings in this process's environment,
    for the rebuild's child process."""
    write(writer, traffic_commands(seed=5))
    project_all(kafka_settings)
    for name, value in settings_env(kafka_settings).items():
        monkeypatch.setenv(name, value)
    return kafka_settings


@pytest.fixture
def rebuilding() -> Iterator[Callable[[], tuple[subprocess.Popen[str], list[int]]]]:
    """Starts the waiting rebuild: its process and its processes' ids (the rebuild's
    first). Any still running at the end are killed, by id."""
    started: list[tuple[subprocess.Popen[str], list[int]]] = []

    def start() -> tuple[subprocess.Popen[str], list[int]]:
        child = subprocess.Popen(
            [sys.executable, "-c", _REBUILD_THEN_WAIT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append((child, []))
        assert child.stdout is not None
        started[-1][1].extend(int(pid) for pid in child.stdout.readline().split())
        assert len(started[-1][1]) == 3, "the rebuild should run two workers"
        return started[-1]

    yield start
    for child, pids in started:
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        child.wait(timeout=_GONE_WITHIN_S)
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()


@dataclass(frozen=True)
class MidRebuild:
    """A rebuild waiting before its swap: the live models before it, its process and its
    processes' ids, its files and its tag."""

    before: dict[str, Any]
    child: subprocess.Popen[str]
    pids: list[int]
    files: set[str]
    tag: str


@pytest.fixture
def mid_rebuild(
    ledger: Settings, rebuilding: Callable[[], tuple[subprocess.Popen[str], list[int]]]
) -> MidRebuild:
    before = live_contents(ledger)
    child, pids = rebuilding()
    files = rebuild_files(ledger)
    return MidRebuild(before, child, pids, files, tag_of(files))


def rebuild_files(settings: Settings) -> set[str]:
    """The rebuild files beside the live analytics file (their lock files included)."""
    return {path.name for path in settings.data_dir.iterdir() if ".rebuild-" in path.name}


def rebuild_schemas(pg_dsn: str, tag: str) -> set[str]:
    return set(pg_schemas(pg_dsn, f"evledger_rebuild_{tag}"))


def tag_of(files: set[str]) -> str:
    (place,) = [name for name in files if name.endswith(".duckdb")]
    return place.removeprefix("analytics.rebuild-").removesuffix(".duckdb")


def wait_for_sessions_to_end(pg_dsn: str, schema: str) -> None:
    """Until the server has seen the killed rebuild's sessions go (it ends a session once
    it reads the end of its connection)."""
    deadline = time.monotonic() + _GONE_WITHIN_S
    with psycopg.connect(pg_dsn, autocommit=True) as connection:
        while time.monotonic() < deadline:
            row = connection.execute(
                "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [schema]
            ).fetchone()
            if row is not None and row[0]:
                connection.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [schema])
                return
            time.sleep(0.1)
    raise AssertionError(f"the killed rebuild's session on {schema} did not end")


def end_owner_session(pg_dsn: str, schema: str) -> None:
    """End the session holding rebuild ``schema``'s lock, as the server does for a killed
    process, an idle timeout or a restart, and wait until it is gone."""
    with psycopg.connect(pg_dsn, autocommit=True) as connection:
        ended = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
            " AND granted AND ((classid::bigint << 32) | objid::bigint)"
            " = hashtextextended(%s, 0)",
            [schema],
        ).fetchone()
    assert ended is not None and ended[0]
    wait_for_sessions_to_end(pg_dsn, schema)


def test_a_killed_rebuild_s_places_go_with_the_next_replay(
    ledger: Settings, pg_dsn: str, mid_rebuild: MidRebuild
) -> None:
    before, pids, files, tag = (
        mid_rebuild.before,
        mid_rebuild.pids,
        mid_rebuild.files,
        mid_rebuild.tag,
    )
    schema = f"evledger_rebuild_{tag}"
    assert rebuild_schemas(pg_dsn, tag) == {schema}
    place = ledger.data_dir / f"analytics.rebuild-{tag}.duckdb"
    assert place.stat().st_size > 0
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + _GONE_WITHIN_S
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in pids if alive(pid)] == []
    assert rebuild_files(ledger) == files  # left behind, full size
    assert rebuild_schemas(pg_dsn, tag) == {schema}
    wait_for_sessions_to_end(pg_dsn, schema)

    result = run_replay(ledger, "rebuild")

    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.stderr.splitlines() if "killed rebuilds" in line]
    assert line.startswith("evledger: removed what killed rebuilds left behind, ")
    assert f"schema {schema} (" in line and f"{place} (" in line and " MiB" in line
    assert rebuild_files(ledger) == set()
    assert rebuild_schemas(pg_dsn, tag) == set()
    assert live_contents(ledger) == before


def test_a_running_rebuild_s_places_are_left_alone(
    ledger: Settings, pg_dsn: str, mid_rebuild: MidRebuild
) -> None:
    before, child, files, tag = (
        mid_rebuild.before,
        mid_rebuild.child,
        mid_rebuild.files,
        mid_rebuild.tag,
    )

    second = run_replay(ledger, "rebuild")  # starts, rebuilds and swaps meanwhile

    assert second.exit_code == 0, second.output
    assert "killed rebuilds" not in second.stderr
    assert files <= rebuild_files(ledger)
    assert rebuild_schemas(pg_dsn, tag) == {f"evledger_rebuild_{tag}"}
    # The first rebuild goes on from its places, untouched, and swaps them in.
    assert child.stdin is not None
    child.stdin.write("\n")
    child.stdin.flush()
    assert child.wait(timeout=120) == 0
    assert rebuild_files(ledger) == set()
    assert rebuild_schemas(pg_dsn, tag) == set()
    assert live_contents(ledger) == before


def test_a_rebuild_schema_goes_with_its_shards_and_retired_ones_and_an_unmarked_one_stays(
    pg_dsn: str,
) -> None:
    """The owner's session ends (as a killed process's does): its schema, its shard's and
    the swap's retired one go, the marked one last; a rebuild schema made
    by an earlier version has no mark and stays, as its rebuild may be running."""
    from replay.postgres_leftovers import rebuild_owner, remove_abandoned

    schema = f"evledger_rebuild_{uuid.uuid4().hex[:10]}"
    earlier = f"evledger_rebuild_{uuid.uuid4().hex[:10]}"
    create_schema(pg_dsn, earlier)
    try:
        with rebuild_owner(pg_dsn, schema):
            for name in (f"{schema}_1", f"{schema}_retired"):
                create_schema(pg_dsn, name)
            with psycopg.connect(pg_dsn, autocommit=True) as connection:
                connection.execute(
                    f'CREATE TABLE "{schema}_1".part AS SELECT generate_series(1, 10000) AS n'
                )
            assert [gone for gone in remove_abandoned(pg_dsn) if schema in gone.where] == []
            end_owner_session(pg_dsn, schema)  # as a killed process's ends
        removed = [gone for gone in remove_abandoned(pg_dsn) if schema in gone.where]
        assert [gone.where for gone in removed] == [
            f"schema {schema}_1",
            f"schema {schema}_retired",
            f"schema {schema}",
        ]
        assert removed[0].size_bytes > 100_000 and removed[2].size_bytes == 0
        assert pg_schemas(pg_dsn, schema) == []
        assert pg_schemas(pg_dsn, earlier) == [earlier]
    finally:
        for name in (earlier, schema, f"{schema}_1", f"{schema}_retired"):
            drop_schema(pg_dsn, name)


def test_a_rebuild_owner_drops_its_schemas_as_it_ends(pg_dsn: str) -> None:
    """A rebuild that fails before it made (and registered) its places leaves nothing: the
    owner drops its marked schema, and its shards', itself."""
    from replay.postgres_leftovers import rebuild_owner

    schema = f"evledger_rebuild_{uuid.uuid4().hex[:10]}"
    try:
        with pytest.raises(RuntimeError, match="failed early"), rebuild_owner(pg_dsn, schema):
            create_schema(pg_dsn, f"{schema}_1")
            raise RuntimeError("the rebuild failed early")
        assert pg_schemas(pg_dsn, schema) == []
    finally:
        for name in (schema, f"{schema}_1"):
            drop_schema(pg_dsn, name)


def test_a_rebuild_whose_lock_session_ended_knows_it_no_longer_owns_its_places(
    pg_dsn: str,
) -> None:
    """The server ended the owner's idle session (an idle timeout, a restart, a pooler's
    reconnect): the check before a merge or swap fails in one line, and the schema is
    left to the next sweep rather than dropped by a process that no longer owns it."""
    from replay.postgres_leftovers import rebuild_owner, remove_abandoned
    from replay.targets import RebuildOwnershipLost

    schema = f"evledger_rebuild_{uuid.uuid4().hex[:10]}"
    try:
        with rebuild_owner(pg_dsn, schema) as still_owned:
            still_owned()
            end_owner_session(pg_dsn, schema)
            with pytest.raises(RebuildOwnershipLost, match=schema):
                still_owned()
        assert pg_schemas(pg_dsn, schema) == [schema]
        assert [gone.where for gone in remove_abandoned(pg_dsn) if schema in gone.where] == [
            f"schema {schema}"
        ]
    finally:
        drop_schema(pg_dsn, schema)
