"""Fixtures for the rebuild and point-in-time tests: a fresh ledger topic, PostgreSQL
schema and data dir per test, a ledger written from generated traffic, and ways to read
every read model's content for comparison."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from bootstrap import bootstrap
from bootstrap.read_models import READ_MODEL_NAMES
from bootstrap.settings import Settings
from cli import replay as replay_commands
from domain.application import BillingApplication
from domain.commands import Command
from projections.databases.postgres import drop_schema
from projections.read_model import ReadModel
from projections.runner import LedgerSource, Projector
from tests.integration.store.conftest import delete_topics


def traffic_commands(days: int = 1, seed: int = 11) -> list[Command]:
    """Realistic upstream traffic as the domain's commands, in upstream order."""
    from consumers.contract import parse_message
    from consumers.translate import to_command
    from demo.traffic import TrafficShape, generate

    messages = generate(seed, TrafficShape(days=days))
    return [to_command(parse_message(json.dumps(message).encode())) for message in messages]


def write(app: BillingApplication, commands: Sequence[Command], batch: int = 200) -> int:
    """Apply the commands to the ledger; the last notification id afterwards."""
    for start in range(0, len(commands), batch):
        app.handle_batch(commands[start : start + batch])
    return app.recorder.max_notification_id() or 0


def contents(models: Sequence[ReadModel]) -> dict[str, Any]:
    """Every model's position and rows, in key order: equal contents, equal models."""
    return {model.name: (model.position(), model.snapshot()) for model in models}


def live_contents(settings: Settings, names: Sequence[str] = READ_MODEL_NAMES) -> dict[str, Any]:
    models = bootstrap(settings).read_models(names)
    try:
        return contents(models)
    finally:
        for model in models:
            model.db.close()


def project_all(settings: Settings, names: Sequence[str] = READ_MODEL_NAMES) -> None:
    """The live projector, run once to the ledger's end."""

    with bootstrap(settings).projector(names) as runner:
        runner.run_until_idle()


def prefix_contents(
    source_settings: Settings, last_id: int, target: Settings, names: Sequence[str]
) -> dict[str, Any]:
    """The read models of a ledger that holds only events 1..last_id: the events are
    copied into a fresh SQLite ledger and projected there by the ordinary projector."""
    from eventsourcing.persistence import StoredEvent

    reader = BillingApplication(env=bootstrap(source_settings).ledger.environment())
    notifications = reader.recorder.select_notifications(start=1, limit=last_id)
    reader.close()
    assert [n.id for n in notifications] == list(range(1, last_id + 1))
    copy = BillingApplication(
        env={
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(target.data_dir / "prefix-ledger.sqlite3"),
        }
    )
    stored = [
        StoredEvent(n.originator_id, n.originator_version, n.topic, n.state) for n in notifications
    ]
    for start in range(0, len(stored), 500):
        copy.recorder.insert_events(stored[start : start + 500])
    models = bootstrap(target).read_models(names)
    try:
        runner = Projector(LedgerSource.of(copy), models, batch_size=5000)
        runner.create()
        runner.run_until_idle()
        return contents(models)
    finally:
        copy.close()
        for model in models:
            model.db.close()


def dsn_in_schema(dsn: str, schema: str) -> str:
    """The DSN with its search_path set to ``schema``: how queries are pointed at one."""
    from psycopg.conninfo import make_conninfo

    return make_conninfo(dsn, options=f"-c search_path={schema}")


def create_schema(dsn: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')


def settings_env(settings: Settings) -> dict[str, str]:
    values = {
        "EVLEDGER_DATA_DIR": str(settings.data_dir),
        "EVLEDGER_TOPIC_PREFIX": settings.topic_prefix,
    }
    if settings.kafka_bootstrap:
        values["EVLEDGER_KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap
    if settings.pg_dsn:
        values["EVLEDGER_PG_DSN"] = settings.pg_dsn
    if settings.duckdb_path:
        values["EVLEDGER_DUCKDB_PATH"] = str(settings.duckdb_path)
    if settings.ledger_shards > 1:
        values["EVLEDGER_LEDGER_SHARDS"] = str(settings.ledger_shards)
    return values


def run_replay(settings: Settings, command: str, *arguments: str) -> Result:
    """`evledger replay COMMAND ARGUMENTS` with the settings in the environment."""
    return CliRunner().invoke(
        replay_commands.app,
        [command, "--no-progress", "--format", "json", *arguments],
        env=settings_env(settings),
    )


def pg_schemas(dsn: str, prefix: str) -> list[str]:
    import psycopg

    with psycopg.connect(dsn) as connection:
        rows = connection.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", [prefix + "%"]
        ).fetchall()
    return [str(row[0]) for row in rows]


@pytest.fixture
def live_schema(pg_dsn: str) -> Iterator[str]:
    schema = f"test_rebuild_{uuid.uuid4().hex[:10]}"
    create_schema(pg_dsn, schema)
    yield schema
    drop_schema(pg_dsn, schema)


@pytest.fixture
def kafka_settings(
    kafka_bootstrap: str, pg_dsn: str, live_schema: str, topic_name: str, tmp_path: Path
) -> Iterator[Settings]:
    """Kafka ledger, PostgreSQL views in a fresh schema (via the DSN), DuckDB in tmp."""
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        pg_dsn=dsn_in_schema(pg_dsn, live_schema),
        topic_prefix=topic_name,
        data_dir=tmp_path / "data",
    )
    yield settings
    delete_topics(kafka_bootstrap, [settings.ledger_topic, f"{settings.ledger_topic}.snapshots"])


@pytest.fixture
def writer(kafka_settings: Settings) -> Iterator[BillingApplication]:
    app = BillingApplication(env=bootstrap(kafka_settings).ledger.environment())
    yield app
    app.close()


@contextmanager
def waiting_child(code: str, *arguments: str, ready: str) -> Iterator[subprocess.Popen[str]]:
    """A Python process running ``code`` that has printed ``ready`` and waits on its stdin
    until the caller lets it go; killed if it is still running when the block ends."""
    child = subprocess.Popen(
        [sys.executable, "-c", code, *arguments],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline().strip() == ready
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=30)
        child.stdin.close()
        child.stdout.close()


def rebuild_killing_a_worker(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, killed: Callable[[Any], bool]
) -> Result:
    """`evledger replay rebuild` whose worker SIGKILLs itself (as the kernel's OOM killer
    would, mid-work) when it starts a unit ``killed`` picks; the workers are forked from
    this process, so they run the patched function."""
    from replay import shard_processes

    rebuild_unit = shard_processes._rebuild_unit

    def killing(job: Any, unit: int, counters: Any) -> None:
        if killed(job.all_units[unit]):
            os.kill(os.getpid(), signal.SIGKILL)
        rebuild_unit(job, unit, counters)

    monkeypatch.setattr(shard_processes, "_rebuild_unit", killing)
    return run_replay(settings, "rebuild")


def assert_killed_worker_swapped_nothing(
    result: Result, settings: Settings, before: dict[str, Any], worker: str
) -> None:
    """The rebuild failed in one line naming the killed ``worker``; nothing swapped or left."""
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        f"evledger: rebuilding {worker} failed: its process was killed by SIGKILL; "
        "nothing was swapped\n"
    )
    assert live_contents(settings) == before
    assert not list(settings.data_dir.glob("*.rebuild-*"))
