"""Guarantee 7 on the real services: a rebuild of every read model from the Kafka ledger
equals the live models (a checksum per table says so) and is swapped in; a tampered live
model is caught and kept; a live projector running in another process survives the swap."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from bootstrap import bootstrap
from bootstrap.read_models import READ_MODEL_NAMES
from bootstrap.settings import Settings
from domain.application import BillingApplication
from projections.databases.postgres import drop_schema
from projections.payment_history import HistoryFilter, query_history
from projections.refund_status import query_refunds
from replay.rebuild import rebuild
from replay.targets import REBUILD_SCHEMA_PREFIX
from tests.integration.replay.conftest import (
    create_schema,
    dsn_in_schema,
    live_contents,
    pg_schemas,
    prefix_contents,
    project_all,
    run_replay,
    traffic_commands,
    write,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[3]
VIEWS = ["payment_history", "refund_status"]


def table_oid(settings: Settings, table: str) -> int:
    assert settings.pg_dsn is not None
    with psycopg.connect(settings.pg_dsn) as connection:
        row = connection.execute("SELECT to_regclass(%s)::oid", [table]).fetchone()
    assert row is not None and row[0] is not None
    return int(row[0])


def queries(settings: Settings) -> tuple[object, object]:
    db = bootstrap(settings).views_database()
    try:
        history = query_history(db, HistoryFilter(limit=10_000)).rows
        refunds = query_refunds(db, limit=10_000, now=None)
        for row in refunds:
            row.pop("age")  # measured against the clock
        return history, refunds
    finally:
        db.close()


def test_rebuild_equals_live_swaps_and_catches_tampering(
    kafka_settings: Settings, writer: BillingApplication, pg_dsn: str
) -> None:
    head = write(writer, traffic_commands())
    assert head > 1500
    project_all(kafka_settings)
    before = live_contents(kafka_settings)
    answers = queries(kafka_settings)
    oid = table_oid(kafka_settings, "payment_history")

    report = rebuild(bootstrap(kafka_settings), READ_MODEL_NAMES)

    assert report.all_swapped and report.events == head
    comparisons = [c for outcome in report.outcomes for c in outcome.comparisons]
    assert len(comparisons) == 16  # every table of every read model: rejected messages, CDRs
    assert all(c.live is not None and c.live.matches(c.rebuilt) for c in comparisons)
    assert all(
        outcome.positions == dict.fromkeys(outcome.projections, head) for outcome in report.outcomes
    )
    # Swapped, not left in place: the table is a new one, with the same rows.
    assert table_oid(kafka_settings, "payment_history") != oid
    assert live_contents(kafka_settings) == before
    assert queries(kafka_settings) == answers
    assert pg_schemas(pg_dsn, REBUILD_SCHEMA_PREFIX) == []

    # Tamper with the live payment history: the checksum must catch it and keep the live.
    assert kafka_settings.pg_dsn is not None
    with psycopg.connect(kafka_settings.pg_dsn, autocommit=True) as connection:
        connection.execute(
            "UPDATE payment_history SET captured_minor = COALESCE(captured_minor, 0) + 1"
            " WHERE payment_key = (SELECT MIN(payment_key) FROM payment_history)"
        )
    tampered = live_contents(kafka_settings, VIEWS)
    # Every group rebuilt side by side (worker processes; the rebuild process fingerprints
    # the live PostgreSQL tables itself while they checksum the rebuilt ones): caught too.
    report = rebuild(bootstrap(kafka_settings), READ_MODEL_NAMES)
    unequal = [
        (c.projection, c.table)
        for outcome in report.outcomes
        for c in outcome.comparisons
        if c.live is None or not c.live.matches(c.rebuilt)
    ]
    assert unequal == [("payment_history", "payment_history")]
    assert [outcome.swapped for outcome in report.outcomes] == [False, True]
    assert live_contents(kafka_settings, VIEWS) == tampered
    result = run_replay(kafka_settings, "rebuild", "--projection", "payment_history")
    assert result.exit_code == 1, result.output
    assert "checksums differ for payment_history.payment_history:" in result.output
    rows = json.loads(result.stdout.splitlines()[0])
    unequal = [(row["projection"], row["table"]) for row in rows if row["equal"] != "yes"]
    assert unequal == [("payment_history", "payment_history")]
    assert live_contents(kafka_settings, VIEWS) == tampered
    assert pg_schemas(pg_dsn, REBUILD_SCHEMA_PREFIX) == []

    # The live model is known bad: --force swaps the correct one in.
    result = run_replay(kafka_settings, "rebuild", "--projection", "payment_history", "--force")
    assert result.exit_code == 0, result.output
    assert "forced" in result.output
    assert live_contents(kafka_settings) == before


def _start_live_projector(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("EVLEDGER_")}
    env.update(
        EVLEDGER_KAFKA_BOOTSTRAP=str(settings.kafka_bootstrap),
        EVLEDGER_PG_DSN=str(settings.pg_dsn),
        EVLEDGER_TOPIC_PREFIX=settings.topic_prefix,
        EVLEDGER_DATA_DIR=str(settings.data_dir / "live-projector"),
        PYTHONPATH=str(REPO),
    )
    command = [sys.executable, "-c", "from cli.main import app; app()", "project"]
    command += ["--batch-size", "50"]
    for name in VIEWS:
        command += ["--projection", name]
    return subprocess.Popen(
        command, env=env, cwd=REPO, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )


def test_rebuild_while_a_live_projector_runs_and_events_arrive(
    kafka_settings: Settings, writer: BillingApplication, pg_dsn: str, tmp_path: Path
) -> None:
    commands = traffic_commands()
    half = len(commands) // 2
    write(writer, commands[:half])
    project_all(kafka_settings, VIEWS)
    log = tmp_path / "live-projector.log"
    live = _start_live_projector(kafka_settings, log)
    written_after_swap = threading.Event()
    swapped = threading.Event()

    def keep_writing() -> None:
        batches = [commands[start : start + 10] for start in range(half, len(commands), 10)]
        for batch in batches[:-5]:
            writer.handle_batch(batch)
            if swapped.is_set():
                written_after_swap.set()
            time.sleep(0.05)
        # However long the rebuild takes on a busy machine, the last events arrive after
        # the swap: the race between live writes and the swap is always exercised.
        swapped.wait(timeout=300)
        for batch in batches[-5:]:
            writer.handle_batch(batch)
            written_after_swap.set()

    feeder = threading.Thread(target=keep_writing)
    try:
        feeder.start()
        # Rebuild only once the live projector is seen applying the new events.
        started_at = live_contents(kafka_settings, ["payment_history"])["payment_history"][0]
        deadline = time.monotonic() + 30
        while (
            live_contents(kafka_settings, ["payment_history"])["payment_history"][0] == started_at
        ):
            assert time.monotonic() < deadline and live.poll() is None, log.read_text()
            time.sleep(0.05)
        report = rebuild(bootstrap(kafka_settings), VIEWS, batch_size=200)
        swapped.set()
        assert live.poll() is None, "the live projector was not running across the swap"
        assert report.all_swapped
        assert all(c.equal and c.live is not None for o in report.outcomes for c in o.comparisons)
        feeder.join(timeout=120)
        assert written_after_swap.is_set(), "the swap came after the last event: no race tested"
        head = writer.recorder.max_notification_id() or 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            positions = {name: live_contents(kafka_settings, [name])[name][0] for name in VIEWS}
            if set(positions.values()) == {head}:
                break
            assert live.poll() is None, log.read_text()
            time.sleep(0.2)
        assert set(positions.values()) == {head}, positions
    finally:
        live.send_signal(signal.SIGTERM)
        live.wait(timeout=30)
        feeder.join(timeout=120)
    assert live.returncode == 0, log.read_text()

    # The live model now equals a clean rebuild of the whole ledger in another schema.
    clean_schema = f"test_clean_{uuid.uuid4().hex[:10]}"
    create_schema(pg_dsn, clean_schema)
    try:
        clean = Settings(pg_dsn=dsn_in_schema(pg_dsn, clean_schema), data_dir=tmp_path / "clean")
        (tmp_path / "clean").mkdir()
        expected = prefix_contents(kafka_settings, head, clean, VIEWS)
    finally:
        drop_schema(pg_dsn, clean_schema)
    assert live_contents(kafka_settings, VIEWS) == expected
