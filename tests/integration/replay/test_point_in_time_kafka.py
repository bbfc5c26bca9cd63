"""Point in time on the real services: --until-offset (a Kafka offset) and --as-of (a
recording time) build exactly the read models of the ledger prefix they name, into a
snapshot the query commands can be pointed at; the live models are left alone."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bootstrap import bootstrap
from bootstrap.read_models import READ_MODEL_NAMES
from bootstrap.settings import Settings
from domain.application import BillingApplication
from projections.databases.postgres import drop_schema
from replay.point_in_time import PointBeyondLedger, PointInTime, build_snapshot
from store.recorders import KafkaApplicationRecorder
from tests.integration.replay.conftest import (
    contents,
    create_schema,
    dsn_in_schema,
    pg_schemas,
    prefix_contents,
    run_replay,
    traffic_commands,
    write,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def snapshot_contents(settings: Settings, label: str, pg_dsn: str) -> dict[str, object]:
    """Read the snapshot the way a user would: the DSN's search_path and the DuckDB path
    the replay command printed."""
    pointed = Settings(
        pg_dsn=dsn_in_schema(pg_dsn, f"snapshot_{label}"),
        duckdb_path=settings.data_dir / "snapshots" / label / "analytics.duckdb",
        data_dir=settings.data_dir,
    )
    models = bootstrap(pointed).read_models()
    try:
        return contents(models)
    finally:
        for model in models:
            model.db.close()


def test_until_offset_and_as_of_build_the_prefix_models(
    kafka_settings: Settings, writer: BillingApplication, pg_dsn: str, tmp_path: Path
) -> None:
    commands = traffic_commands()
    cut = len(commands) * 2 // 5
    prefix_head = write(writer, commands[:cut])
    time.sleep(0.05)
    moment = datetime.now(UTC)
    time.sleep(0.05)
    head = write(writer, commands[cut:])
    assert 500 < prefix_head < head
    recorder = writer.recorder
    assert isinstance(recorder, KafkaApplicationRecorder)
    index = recorder.ledger.index
    first_after = index.notifications(prefix_head + 1, 1)[0].offset
    # Just below the next event: a transaction marker's offset, not a record's.
    offset = first_after - 1
    assert index.notifications(prefix_head, 1)[0].offset < offset

    expected_schema = f"test_prefix_{uuid.uuid4().hex[:10]}"
    create_schema(pg_dsn, expected_schema)
    tag = uuid.uuid4().hex[:8]
    labels = (f"offset_{tag}", f"time_{tag}")
    try:
        (tmp_path / "expected").mkdir()
        expected_settings = Settings(
            pg_dsn=dsn_in_schema(pg_dsn, expected_schema), data_dir=tmp_path / "expected"
        )
        expected = prefix_contents(kafka_settings, prefix_head, expected_settings, READ_MODEL_NAMES)

        result = run_replay(
            kafka_settings, "snapshot", "--until-offset", str(offset), "--into", labels[0]
        )
        assert result.exit_code == 0, result.output
        prefix_offset = index.notifications(prefix_head, 1)[0].offset
        assert f"= ledger notification {prefix_head} at offset {prefix_offset}," in result.output
        assert f"-csearch_path=snapshot_{labels[0]}" in result.output
        assert snapshot_contents(kafka_settings, labels[0], pg_dsn) == expected

        report = build_snapshot(
            bootstrap(kafka_settings), READ_MODEL_NAMES, PointInTime(as_of=moment), labels[1]
        )
        assert report.position == prefix_head
        assert report.last_recorded_at is not None and report.last_recorded_at <= moment
        assert snapshot_contents(kafka_settings, labels[1], pg_dsn) == expected

        # An offset past the end of the ledger is refused.
        with pytest.raises(PointBeyondLedger, match="ends at offset"):
            build_snapshot(
                bootstrap(kafka_settings), ["refund_status"], PointInTime(until_offset=10**9)
            )
        # The live models were never created.
        assert kafka_settings.pg_dsn is not None
        assert not kafka_settings.analytics_path.exists()
        live = bootstrap(kafka_settings).read_models(["payment_history"])[0]
        assert live.db.execute(
            "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema ="
            " current_schema()"
        ) == [{"n": 0}]
        live.db.close()
    finally:
        drop_schema(pg_dsn, expected_schema)
        for label in labels:
            drop_schema(pg_dsn, f"snapshot_{label}")
    assert pg_schemas(pg_dsn, f"snapshot_%_{tag}") == []


def test_an_offset_inside_a_command_snapshots_up_to_the_command_before(
    kafka_settings: Settings, writer: BillingApplication
) -> None:
    from domain.session import ChargingSession
    from projections.runner import LedgerSource
    from replay.ledger_prefix import ends_a_command
    from tests.unit.projections.scenario import commands as scenario

    for command in scenario():
        writer.handle(command)  # one Kafka transaction per command
    recorder = writer.recorder
    assert isinstance(recorder, KafkaApplicationRecorder)
    ledger = LedgerSource.of(writer).read_after(0, 10_000)
    stopped = next(e for e in ledger if isinstance(e.event, ChargingSession.Stopped))
    previous_end = max(
        e.notification_id
        for e in ledger
        if ends_a_command(e) and e.notification_id < stopped.notification_id
    )
    offset_of = {
        n.notification_id: n.offset for n in recorder.ledger.index.notifications(1, 10_000)
    }
    label = f"mid_{uuid.uuid4().hex[:8]}"
    assert kafka_settings.pg_dsn is not None
    try:
        report = build_snapshot(
            bootstrap(kafka_settings),
            READ_MODEL_NAMES,
            PointInTime(until_offset=offset_of[stopped.notification_id]),
            label,
        )
        assert (report.position, report.offset) == (previous_end, offset_of[previous_end])
        assert report.checksums["refund_status"]  # built
    finally:
        drop_schema(kafka_settings.pg_dsn, f"snapshot_{label}")
