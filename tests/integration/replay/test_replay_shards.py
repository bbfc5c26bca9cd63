"""Replay of a sharded Kafka ledger (3 shards): a rebuild replays each shard in a process of
its own, merges them into one rebuild place, one position per shard, equals the live models
and what one process projecting every shard builds, and swaps once; a failing shard
process swaps nothing; a snapshot cuts the ledger at one offset per shard."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from bootstrap import bootstrap
from bootstrap.read_models import READ_MODEL_NAMES
from bootstrap.settings import Settings
from demo.traffic import TrafficShape, generate
from projections.databases.postgres import drop_schema
from replay import rebuild as rebuild_module
from replay import shard_processes
from replay.point_in_time import PointInTime, build_snapshot
from replay.shard_processes import part_tag
from replay.targets import REBUILD_SCHEMA_PREFIX
from tests.integration.projections.test_sharded_projection import write_routed
from tests.integration.replay.conftest import (
    assert_killed_worker_swapped_nothing,
    create_schema,
    dsn_in_schema,
    live_contents,
    pg_schemas,
    project_all,
    rebuild_killing_a_worker,
    run_replay,
)
from tests.integration.replay.test_point_in_time_kafka import snapshot_contents
from tests.integration.store.conftest import delete_topics

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

SHARDS = 3


@pytest.fixture
def sharded(kafka_bootstrap: str, pg_dsn: str, tmp_path: Path) -> Iterator[Settings]:
    """A 3-shard Kafka ledger, PostgreSQL views in a fresh schema, DuckDB in tmp."""
    schema = f"test_replay_shards_{uuid.uuid4().hex[:10]}"
    create_schema(pg_dsn, schema)
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        pg_dsn=dsn_in_schema(pg_dsn, schema),
        topic_prefix=f"test.replay-shards.{uuid.uuid4().hex[:8]}",
        data_dir=tmp_path / "data",
        ledger_shards=SHARDS,
    )
    topics = bootstrap(settings).ledger.kafka("test").ledger_topics
    try:
        yield settings
    finally:
        drop_schema(pg_dsn, schema)
        delete_topics(kafka_bootstrap, [*topics, *(f"{topic}.snapshots" for topic in topics)])


def traffic() -> list[dict[str, Any]]:
    return generate(seed=5, shape=TrafficShape(stations=5, customers=60))


def one_process_contents(settings: Settings, pg_dsn: str, tmp_path: Path) -> dict[str, Any]:
    """The read models one process builds from every shard (the projector stepping the
    shards in turn), from nothing, in a schema and data dir of their own."""
    schema = f"test_one_process_{uuid.uuid4().hex[:10]}"
    create_schema(pg_dsn, schema)
    try:
        alone = Settings(
            kafka_bootstrap=settings.kafka_bootstrap,
            pg_dsn=dsn_in_schema(pg_dsn, schema),
            topic_prefix=settings.topic_prefix,
            data_dir=tmp_path / "one-process",
            ledger_shards=SHARDS,
        )
        project_all(alone)
        return live_contents(alone)
    finally:
        drop_schema(pg_dsn, schema)


def failed_on_broken_analytics(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, shard: int, run: Callable[[], Result]
) -> tuple[str, Path, str]:
    """Run a rebuild (``run``) whose analytics file for ``shard`` is not a DuckDB database,
    so the worker rebuilding it fails: the rebuild's tag, that file, and the one line the
    rebuild failed with."""
    tag = f"t{uuid.uuid4().hex[:9]}"
    monkeypatch.setattr(rebuild_module, "new_tag", lambda: tag)
    broken = settings.analytics_path.with_name(f"analytics.rebuild-{part_tag(tag, shard)}.duckdb")
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_bytes(b"not a database" * 1000)
    result = run()
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.splitlines()
    return tag, broken, line


def one_unit_per_shard(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rebuild as on two cores, whatever this machine has: a unit (and worker) per shard,
    each named by its shard alone."""
    monkeypatch.setattr(shard_processes, "usable_cores", lambda: 2)


# Two cores: a unit per shard; six: a unit per shard and group, merged alike.
@pytest.mark.parametrize("cores", [2, 6])
def test_rebuild_of_three_shards_equals_live_and_swaps_once(
    sharded: Settings, pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cores: int
) -> None:
    monkeypatch.setattr(shard_processes, "usable_cores", lambda: cores)
    messages = traffic()
    half = len(messages) // 2
    first = write_routed(sharded, messages[:half])
    project_all(sharded)
    # The live models are behind on every shard: the rebuild catches them up to compare.
    # The second half's refunds of first-half payments reach a shard without their payment
    # (its publisher forgot their sessions): a refund row then takes its payment's session
    # from another shard's rows, which the merge of the shards' places must join again.
    sizes = write_routed(sharded, messages[half:])
    assert len(sizes) == SHARDS
    assert all(size > before for size, before in zip(sizes, first, strict=True))

    result = run_replay(sharded, "rebuild")

    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout.splitlines()[0])
    assert rows and all(row["equal"] == "yes" for row in rows)
    assert {row["position"] for row in rows} == {sum(sizes)}
    assert f"replayed {sum(sizes):,} ledger events" in result.stderr
    assert result.stderr.count("swapped in") == 2  # the views' group and analytics, once each
    # One position per shard, each at its shard's head, in the live tracking table.
    root = bootstrap(sharded)
    for model in root.read_models(READ_MODEL_NAMES):
        try:
            assert [model.for_shard(p).position() for p in range(SHARDS)] == sizes
        finally:
            model.db.close()
    after = live_contents(sharded)
    project_all(sharded)  # nothing left to project: the swapped-in models are complete
    assert live_contents(sharded) == after
    assert after == one_process_contents(sharded, pg_dsn, tmp_path)


def test_a_failing_shard_process_fails_the_rebuild_and_swaps_nothing(
    sharded: Settings, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = traffic()
    write_routed(sharded, messages[: len(messages) // 2])
    project_all(sharded)
    write_routed(sharded, messages[len(messages) // 2 :])
    before = live_contents(sharded)
    one_unit_per_shard(monkeypatch)
    # Shard 2's own analytics file is not a DuckDB database: its process cannot open it.
    tag, broken, line = failed_on_broken_analytics(
        sharded, monkeypatch, 2, lambda: run_replay(sharded, "rebuild")
    )

    topic = bootstrap(sharded).ledger.kafka("test").shard_topic(2)
    assert line.startswith(f"evledger: rebuilding shard 2 ({topic}) failed: ")
    assert str(broken) in line and line.endswith("; nothing was swapped")
    assert live_contents(sharded) == before
    # Every place of the rebuild is gone: the merged one, each shard's, the broken file.
    assert not list(sharded.data_dir.glob("*.rebuild-*"))
    assert not pg_schemas(pg_dsn, f"{REBUILD_SCHEMA_PREFIX}{tag}")


def test_rebuild_of_three_shards_catches_a_tampered_live_model(sharded: Settings) -> None:
    import psycopg

    write_routed(sharded, traffic())
    project_all(sharded)
    assert sharded.pg_dsn is not None
    with psycopg.connect(sharded.pg_dsn, autocommit=True) as connection:
        connection.execute(
            "UPDATE payment_history SET captured_minor = COALESCE(captured_minor, 0) + 1"
            " WHERE payment_key = (SELECT MIN(payment_key) FROM payment_history)"
        )
    before = live_contents(sharded, ["payment_history"])

    result = run_replay(sharded, "rebuild", "--projection", "payment_history")

    assert result.exit_code == 1, result.output
    assert "checksums differ for payment_history.payment_history" in result.stderr
    assert live_contents(sharded, ["payment_history"]) == before


def test_a_killed_shard_process_fails_the_rebuild_naming_its_shard(
    sharded: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_routed(sharded, traffic())
    project_all(sharded)
    before = live_contents(sharded)
    one_unit_per_shard(monkeypatch)
    result = rebuild_killing_a_worker(sharded, monkeypatch, lambda unit: unit.shard == 2)
    topic = bootstrap(sharded).ledger.kafka("test").shard_topic(2)
    assert_killed_worker_swapped_nothing(result, sharded, before, f"shard 2 ({topic})")


def test_a_rebuild_over_current_live_models_catches_a_tampered_analytics_table(
    sharded: Settings,
) -> None:
    import duckdb

    write_routed(sharded, traffic())
    project_all(sharded)
    # The live models stand at every shard's head: the workers checksum the live analytics
    # before it is held, and those checksums count (nothing moved it since).
    result = run_replay(sharded, "rebuild")
    assert result.exit_code == 0, result.output
    assert all(row["equal"] == "yes" for row in json.loads(result.stdout.splitlines()[0]))
    connection = duckdb.connect(str(sharded.analytics_path))
    try:
        connection.execute(
            "UPDATE fact_sessions SET energy_wh = energy_wh + 1"
            " WHERE session_key = (SELECT MIN(session_key) FROM fact_sessions)"
        )
    finally:
        connection.close()
    before = live_contents(sharded, ["analytics"])

    result = run_replay(sharded, "rebuild", "--projection", "analytics")

    assert result.exit_code == 1, result.output
    assert "checksums differ for analytics.fact_sessions" in result.stderr
    assert live_contents(sharded, ["analytics"]) == before


def test_a_snapshot_cuts_each_shard_at_its_own_offset(sharded: Settings, pg_dsn: str) -> None:
    messages = traffic()
    half = write_routed(sharded, messages[: len(messages) // 2])
    project_all(sharded)
    expected = live_contents(sharded)
    time.sleep(0.05)
    moment = datetime.now(UTC)
    time.sleep(0.05)
    heads = write_routed(sharded, messages[len(messages) // 2 :])
    tag = uuid.uuid4().hex[:8]
    labels = (f"asof_{tag}", f"offsets_{tag}")
    try:
        report = build_snapshot(
            bootstrap(sharded), READ_MODEL_NAMES, PointInTime(as_of=moment), labels[0]
        )
        # Each shard is cut at its own last command recorded by then: one offset each.
        assert [cut.position for cut in report.cuts] == half
        assert report.position == sum(half) and report.offset is None
        assert all(cut.offset is not None for cut in report.cuts)
        assert snapshot_contents(sharded, labels[0], pg_dsn) == expected

        offsets = ",".join(str(cut.offset) for cut in report.cuts)
        result = run_replay(sharded, "snapshot", "--until-offset", offsets, "--into", labels[1])
        assert result.exit_code == 0, result.output
        assert "one offset per shard" in result.stderr
        assert f"--until-offset {offsets} gives the same cut" in result.stderr
        assert snapshot_contents(sharded, labels[1], pg_dsn) == expected
        # Each snapshot model holds one position per shard, at the cut.
        pointed = Settings(pg_dsn=dsn_in_schema(pg_dsn, f"snapshot_{labels[1]}"))
        (history,) = bootstrap(pointed).read_models(["payment_history"])
        try:
            assert [history.for_shard(p).position() for p in range(SHARDS)] == half
        finally:
            history.db.close()

        # One offset for three shards names no cut: refused in one line, nothing built.
        result = run_replay(sharded, "snapshot", "--until-offset", "5", "--into", "one")
        assert result.exit_code == 1, result.output
        assert "has 3 shard(s)" in result.stderr and "one offset per shard" in result.stderr
        assert sum(heads) > sum(half)
    finally:
        for label in labels:
            drop_schema(pg_dsn, f"snapshot_{label}")
