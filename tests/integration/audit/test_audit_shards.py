"""The auditor's tools on a sharded Kafka ledger (3 shards): verify checks every shard and
names the shard of a tampered record; trail finds an id on its shard; export writes one
export per shard, which verify checks shard by shard (naming a tampered one) and whose
manifests anchor their shards' chains."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap import bootstrap
from bootstrap.settings import Settings
from cli.audit import app
from demo.traffic import TrafficShape, generate
from store.admin import TopicSpec, ensure_topic
from store.kafka_clients import KafkaConnection
from tests.integration.audit.test_audit_kafka import Raw, edit_value, read_raw, runner
from tests.integration.projections.test_sharded_projection import write_routed
from tests.integration.store.conftest import delete_topics

pytestmark = [pytest.mark.kafka]

SHARDS = 3


@pytest.fixture(scope="module")
def sharded(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"test.audit-shards.{uuid.uuid4().hex[:8]}",
        data_dir=tmp_path_factory.mktemp("shards"),
        ledger_shards=SHARDS,
    )
    topics = bootstrap(settings).ledger.kafka("test").ledger_topics
    try:
        write_routed(settings, generate(seed=23, shape=TrafficShape(stations=5, customers=60)))
        yield settings
    finally:
        delete_topics(kafka_bootstrap, [*topics, *(f"{topic}.snapshots" for topic in topics)])


def env(settings: Settings, prefix: str | None = None) -> dict[str, str | None]:
    return {
        "EVLEDGER_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "EVLEDGER_TOPIC_PREFIX": prefix or settings.topic_prefix,
        "EVLEDGER_LEDGER_SHARDS": str(SHARDS),
    }


def copy_shards(settings: Settings, shards: list[list[Raw]]) -> str:
    """Each shard's records written to the same shard of a new prefix; returns it."""
    assert settings.kafka_bootstrap is not None
    prefix = f"{settings.topic_prefix}-copy-{uuid.uuid4().hex[:6]}"
    producer = KafkaConnection(settings.kafka_bootstrap).producer(acks="all")
    for shard, records in enumerate(shards):
        topic = f"{prefix}.ledger" if shard == 0 else f"{prefix}.ledger.{shard}"
        ensure_topic(KafkaConnection(settings.kafka_bootstrap), TopicSpec(topic))
        for _, key, value, headers in records:
            producer.send(topic, key=key, value=value, headers=headers, partition=0)
    producer.flush()
    producer.close()
    return prefix


def shard_records(settings: Settings) -> list[list[Raw]]:
    assert settings.kafka_bootstrap is not None
    topics = bootstrap(settings).ledger.kafka("test").ledger_topics
    return [read_raw(settings.kafka_bootstrap, topic) for topic in topics]


def test_verify_checks_every_shard(sharded: Settings) -> None:
    result = runner.invoke(app, ["verify", "--format", "json"], env=env(sharded))
    assert result.exit_code == 0, result.output
    checks = {row["check"]: row["result"] for row in json.loads(result.stdout)}
    for shard, records in enumerate(shard_records(sharded)):
        assert checks[f"shard {shard} records"] == len(records) > 0
        assert checks[f"shard {shard} notification ids"] == f"contiguous 1..{len(records)}"


def test_verify_names_the_shard_of_a_tampered_record(sharded: Settings) -> None:
    shards = shard_records(sharded)
    at = len(shards[2]) // 2
    tampered = [*shards[2][:at], edit_value(shards[2][at]), *shards[2][at + 1 :]]
    prefixes = [copy_shards(sharded, [*shards[:2], tampered]), copy_shards(sharded, shards)]
    try:
        result = runner.invoke(app, ["verify", "--format", "json"], env=env(sharded, prefixes[0]))
        assert result.exit_code == 1, result.output
        assert f"audit failed at offset {at}, notification id" in result.stderr
        assert f"shard 2: Kafka topic '{prefixes[0]}.ledger.2'" in result.stderr
        # An untouched copy of the same shards verifies.
        assert runner.invoke(app, ["verify"], env=env(sharded, prefixes[1])).exit_code == 0
    finally:
        assert sharded.kafka_bootstrap is not None
        delete_topics(
            sharded.kafka_bootstrap,
            [f"{prefix}.ledger{tail}" for prefix in prefixes for tail in ("", ".1", ".2")],
        )


def test_trail_finds_a_payment_on_its_shard(sharded: Settings) -> None:
    payment = next(
        m["payment_id"]
        for m in generate(seed=23, shape=TrafficShape(stations=5, customers=60))
        if m["type"] == "payment.captured"
    )
    result = runner.invoke(app, ["trail", payment, "--format", "json"], env=env(sharded))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)
    missing = runner.invoke(app, ["trail", "P-none"], env=env(sharded))
    assert missing.exit_code == 1


def test_export_writes_one_export_per_shard_and_verify_names_a_tampered_shard(
    sharded: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["export", "--format", "jsonl", "--out", str(out)], env=env(sharded)
    )
    assert result.exit_code == 0, result.output
    records = shard_records(sharded)
    for shard in range(SHARDS):
        manifest = json.loads((out / f"shard-{shard}" / "manifest.json").read_text())
        assert (manifest["shard"], manifest["shards"], manifest["count"]) == (
            shard,
            SHARDS,
            len(records[shard]),
        )
        assert f"shard {shard}: exported {len(records[shard])} records" in result.stdout
    offline = {"EVLEDGER_KAFKA_BOOTSTRAP": None}
    result = runner.invoke(app, ["verify", "--export", str(out), "--format", "json"], env=offline)
    assert result.exit_code == 0, result.output
    checks = {row["check"]: row["result"] for row in json.loads(result.stdout)}
    assert [checks[f"shard {shard} records"] for shard in range(SHARDS)] == [
        len(shard) for shard in records
    ]

    # Each shard's manifest anchors its own shard's chain; a hash anchor names its shard.
    last_2 = json.loads((out / "shard-2" / "manifest.json").read_text())["last_hash"]
    anchored = runner.invoke(
        app,
        ["verify", "--anchor", str(out / "shard-1"), "--expect-last-hash", last_2, "--shard", "2"],
        env=env(sharded),
    )
    assert anchored.exit_code == 0, anchored.output
    elsewhere = runner.invoke(
        app, ["verify", "--expect-last-hash", last_2, "--shard", "1"], env=env(sharded)
    )
    assert elsewhere.exit_code == 1, elsewhere.output
    assert "shard 1: " in elsewhere.stderr and "does not contain" in elsewhere.stderr
    unnamed = runner.invoke(app, ["verify", "--expect-last-hash", last_2], env=env(sharded))
    assert unnamed.exit_code == 2 and "give --shard" in unnamed.stderr

    # A record of shard 2's export swapped with the next: verify names shard 2.
    ledger = out / "shard-2" / "ledger.jsonl"
    lines = ledger.read_text().splitlines()
    lines[10], lines[11] = lines[11], lines[10]
    ledger.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["verify", "--export", str(out)], env=offline)
    assert result.exit_code == 1, result.output
    assert "audit failed at " in result.stderr and "notification id 12" in result.stderr
    assert f"(shard 2: export {out / 'shard-2'}" in result.stderr

    # A shard's export taken away is missed, not overlooked.
    (out / "shard-1" / "manifest.json").unlink()
    result = runner.invoke(app, ["verify", "--export", str(out)], env=offline)
    assert result.exit_code == 2 and "shard-1 is not an export" in result.stderr
