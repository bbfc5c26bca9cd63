"""`evledger publish` on the real broker: what it reports as published the broker has
acknowledged (and kafka-python's accumulator, which has no memory bound, never holds more
than one stretch of the file), and a message the broker refuses stops it in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from kafka import TopicPartition
from kafka.admin import NewTopic

from consumers.producer import PublishRefused, publish_file
from demo.traffic import TrafficShape, generate
from store.kafka_clients import KafkaConnection

pytestmark = pytest.mark.kafka

EVLEDGER = str(Path(sys.executable).with_name("evledger"))


def end_offset(connection: KafkaConnection, topic: str) -> int:
    consumer = connection.consumer()
    try:
        partition = TopicPartition(topic, 0)
        return int(consumer.end_offsets([partition])[partition])
    finally:
        consumer.close()


def create(connection: KafkaConnection, topic: str, **configs: str) -> None:
    admin = connection.admin()
    try:
        admin.create_topics([NewTopic(topic, 1, 1, topic_configs=configs)])
    finally:
        admin.close()


def test_progress_counts_what_the_broker_acknowledged(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    connection = KafkaConnection(kafka_bootstrap)
    topic = f"{prefix}.ingest"
    create(connection, topic)
    messages = generate(seed=5, shape=TrafficShape(stations=2, customers=10))[:250]
    upstream = tmp_path / "upstream.jsonl"
    upstream.write_text("".join(json.dumps(message) + "\n" for message in messages))
    seen: list[tuple[int, int]] = []

    report = publish_file(
        upstream,
        connection,
        topic,
        on_progress=lambda sent: seen.append((sent, end_offset(connection, topic))),
        acknowledged_every=100,
    )

    assert report.published == 250
    # Each report comes once the broker holds every message counted in it.
    assert seen == [(100, 100), (200, 200), (250, 250)]


def test_a_message_the_broker_refuses_stops_publishing_in_one_line(
    kafka_bootstrap: str, prefix: str, env: dict[str, str], tmp_path: Path
) -> None:
    connection = KafkaConnection(kafka_bootstrap)
    topic = f"{prefix}.ingest"
    create(connection, topic, **{"max.message.bytes": "2000"})  # the broker's own limit
    small = json.dumps({"type": "tariff.published", "note": "x"})
    large = json.dumps({"type": "tariff.published", "note": "x" * 5000})
    upstream = tmp_path / "upstream.jsonl"
    upstream.write_text("\n".join([small] * 3 + [large] + [small] * 3) + "\n")

    with pytest.raises(PublishRefused, match=r"refused \d+ send\(s\) among messages 1\.\.7 "):
        publish_file(upstream, connection, topic, acknowledged_every=100)

    command = subprocess.run(
        [EVLEDGER, "publish", str(upstream)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert command.returncode == 1, command.stderr
    last = command.stderr.strip().splitlines()[-1]
    assert last.startswith("evledger: Kafka refused ") and " among messages 1..7 of " in last
    assert "Traceback" not in command.stderr
