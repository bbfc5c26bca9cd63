"""The `evledger` entry point as a user runs it: help everywhere, settings errors, doctor."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from projections.databases.postgres import PostgresDatabase, drop_schema
from projections.tracking import create_tracking
from tests.e2e.api.conftest import schema_dsn

EVLEDGER = str(Path(sys.executable).with_name("evledger"))


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EVLEDGER, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=120,
        check=False,
    )


def _commands() -> list[list[str]]:
    from typer.main import get_command

    from cli.main import app

    def walk(command: object, path: list[str]) -> list[list[str]]:
        found = [path]
        for name, sub in getattr(command, "commands", {}).items():
            found.extend(walk(sub, [*path, name]))
        return found

    return walk(get_command(app), [])


@pytest.mark.parametrize("command", _commands(), ids=lambda c: " ".join(c) or "evledger")
def test_every_command_has_help(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: evledger" in result.stdout


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EVLEDGER_KAFKA_BOOTSTRAP", "no-port-here"),
        ("EVLEDGER_PG_DSN", "host=x port"),
        ("EVLEDGER_KAFKA_REPLICATION_FACTOR", "three"),
        ("EVLEDGER_TOPIC_PREFIX", "has space"),
    ],
)
def test_a_bad_setting_is_one_clear_line(variable: str, value: str) -> None:
    result = run("settings", env={variable: value})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"evledger: bad setting: {variable}:")


def test_settings_mask_the_database_password() -> None:
    dsn = "postgresql://evledger:s3cret@127.0.0.1:5433/evledger"
    result = run("settings", "--format", "json", env={"EVLEDGER_PG_DSN": dsn})
    assert result.returncode == 0, result.stderr
    assert "s3cret" not in result.stdout
    assert "***" in result.stdout


def test_doctor_reaches_the_real_services(
    kafka_bootstrap: str, pg_dsn: str, tmp_path: Path
) -> None:
    # A schema of its own: read models other tests left in the shared one would be past
    # this fresh ledger's head, which doctor reports as a failure.
    schema = f"test_doctor_{uuid.uuid4().hex[:10]}"
    env = {
        "EVLEDGER_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "EVLEDGER_PG_DSN": schema_dsn(pg_dsn, schema),
        "EVLEDGER_DATA_DIR": str(tmp_path),
    }
    try:
        result = run("doctor", "--format", "csv", env=env)
    finally:
        drop_schema(pg_dsn, schema)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "service,where,ok,detail"
    services = [line.split(",")[0] for line in lines[1:]]
    # Kafka, then its brokers, the ledger partition and under-replicated partitions; the
    # databases; the ledger's one shard, its head and the projections' lag on it.
    assert services == [
        "kafka",
        "kafka brokers",
        "ledger partition",
        "under-replicated",
        "views",
        "duckdb",
        "ledger shard",
    ]
    assert [line.split(",")[2] for line in lines[1:]] == ["yes"] * len(services)
    # A ledger not written yet; no read models built.
    lag = "payment_history ?, refund_status ?, analytics ?"  # no tracking table yet
    assert lines[-1] == f'ledger shard,shard 0 of 1,yes,"head 0; lag: {lag}"'


def test_doctor_fails_read_models_past_the_ledger(
    kafka_bootstrap: str, pg_dsn: str, tmp_path: Path
) -> None:
    # Read models at 5 over a ledger at 0: another ledger's (a wrong topic prefix, say).
    schema = f"test_doctor_{uuid.uuid4().hex[:10]}"
    dsn = schema_dsn(pg_dsn, schema)
    try:
        db = PostgresDatabase(dsn)
        create_tracking(db, "payment_history", "billing")
        db.execute("UPDATE projection_tracking SET notification_id = 5")
        db.close()
        env = {
            "EVLEDGER_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "EVLEDGER_PG_DSN": dsn,
            "EVLEDGER_DATA_DIR": str(tmp_path),
        }
        result = run("doctor", "--format", "csv", env=env)
    finally:
        drop_schema(pg_dsn, schema)
    assert result.returncode != 0, result.stdout
    row = result.stdout.strip().splitlines()[-1]
    assert row.startswith("ledger shard,shard 0 of 1,NO,"), row
    assert "past the ledger's head 0: payment_history at 5" in row, row


def test_doctor_fails_when_kafka_is_unreachable(tmp_path: Path) -> None:
    env = {"EVLEDGER_KAFKA_BOOTSTRAP": "127.0.0.1:1", "EVLEDGER_DATA_DIR": str(tmp_path)}
    result = run("doctor", "--format", "csv", env=env)
    assert result.returncode == 1
    assert "kafka,127.0.0.1:1,NO" in result.stdout
