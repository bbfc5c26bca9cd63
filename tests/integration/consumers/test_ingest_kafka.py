"""Ingest on the real broker: exact ledger, double delivery, SIGKILL mid-batch, dead letters.

The ingest consumer runs as `evledger ingest` in a subprocess, as in production. The
expected ledger is the same traffic applied in memory to the same domain application.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kafka import TopicPartition

from consumers.dead_letter import DeadLetter
from consumers.ingest import FETCH_PARTITION_BYTES
from demo.traffic import TrafficShape, generate
from store.kafka_clients import KafkaConnection
from tests.kafka_topics import read_topic
from tests.ledger_compare import expected_ledger, kafka_ledger_rows

__all__ = ["expected_ledger", "kafka_ledger"]  # the cluster tests use them from here

EVLEDGER = str(Path(sys.executable).with_name("evledger"))
SHAPE = TrafficShape(stations=5, customers=60)


@pytest.fixture(scope="module")
def traffic() -> list[dict[str, Any]]:
    return generate(seed=11, shape=SHAPE)


def write_jsonl(path: Path, messages: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(message) + "\n" for message in messages))
    return path


def publish(env: dict[str, str], path: Path) -> None:
    result = subprocess.run(
        [EVLEDGER, "publish", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def ingest(env: dict[str, str], *extra: str) -> dict[str, int]:
    result = subprocess.run(
        [EVLEDGER, "ingest", "--until-idle", "--format", "json", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (counters,) = json.loads(result.stdout)
    return dict(counters)


def kafka_ledger(env: dict[str, str]) -> list[tuple[Any, ...]]:
    return kafka_ledger_rows(
        env["EVLEDGER_KAFKA_BOOTSTRAP"],
        env["EVLEDGER_TOPIC_PREFIX"],
        Path(env["EVLEDGER_DATA_DIR"]) / "reader",
    )


def test_a_day_of_traffic_gives_exactly_the_expected_ledger(
    env: dict[str, str], traffic: list[dict[str, Any]], tmp_path: Path, kafka_bootstrap: str
) -> None:
    publish(env, write_jsonl(tmp_path / "day.jsonl", traffic))
    counters = ingest(env)
    assert counters["consumed"] == len(traffic)
    assert counters["applied"] == len(traffic)
    assert counters["dead_lettered"] == 0
    expected = expected_ledger(traffic)
    assert len(expected) > 3 * len(traffic)
    assert kafka_ledger(env) == expected


def test_every_message_delivered_twice_changes_the_ledger_once(
    env: dict[str, str], traffic: list[dict[str, Any]], tmp_path: Path, kafka_bootstrap: str
) -> None:
    # Each message twice in a row, then the whole day again.
    doubled = [m for message in traffic for m in (message, message)]
    publish(env, write_jsonl(tmp_path / "doubled.jsonl", doubled))
    publish(env, write_jsonl(tmp_path / "again.jsonl", traffic))
    counters = ingest(env)
    assert counters["consumed"] == 3 * len(traffic)
    assert counters["applied"] == len(traffic)
    assert counters["duplicates"] == 2 * len(traffic)
    assert kafka_ledger(env) == expected_ledger(traffic)


def ledger_high_watermark(bootstrap: str, topic: str) -> int:
    consumer = KafkaConnection(bootstrap).consumer(isolation_level="read_uncommitted")
    try:
        partition = TopicPartition(topic, 0)
        return int(consumer.end_offsets([partition]).get(partition, 0))
    finally:
        consumer.close()


def test_sigkill_mid_batch_then_restart_leaves_the_ledger_as_without_the_kill(
    env: dict[str, str], traffic: list[dict[str, Any]], tmp_path: Path, kafka_bootstrap: str
) -> None:
    publish(env, write_jsonl(tmp_path / "day.jsonl", traffic))
    expected = expected_ledger(traffic)
    ledger_topic = f"{env['EVLEDGER_TOPIC_PREFIX']}.ledger"
    killed_at = []
    # Kill when the ledger log (in-flight transactions included) passes each mark, so every
    # kill lands mid-stream: inside a ledger transaction, or between it and the offsets.
    for fraction in (0.1, 0.3, 0.5, 0.7, 0.9):
        mark = int(len(expected) * fraction)
        process = subprocess.Popen(
            [EVLEDGER, "ingest", "--until-idle", "--batch-size", "7", "--format", "json"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            high = ledger_high_watermark(kafka_bootstrap, ledger_topic)
            if high >= mark:
                process.send_signal(signal.SIGKILL)
                killed_at.append(high)
                break
            time.sleep(0.02)
        process.wait(timeout=30)
    assert len(killed_at) == 5, f"ingest finished before a kill: {killed_at}"
    assert killed_at == sorted(killed_at)
    ingest(env)
    assert kafka_ledger(env) == expected


BAD_MESSAGES: list[tuple[bytes, str, str]] = [
    (
        b'{"type": "payment.captured", "event_id": "x", "occurred_at": "2026-03-0',
        "",
        "invalid JSON",
    ),
    (
        b'{"type": "payment.captured", "event_id": "bad-1", "occurred_at": '
        b'"2026-03-02T10:00:00Z", "payment_id": "P1", "amount_minor": "12.00"}',
        "amount_minor",
        "valid integer",
    ),
    (
        b'{"type": "payment.captured", "event_id": "bad-2", "occurred_at": '
        b'"2026-03-02T10:00:00Z", "payment_id": "P1", "amount_minor": -500}',
        "amount_minor",
        "greater than or equal",
    ),
    (
        b'{"type": "payment.captured", "occurred_at": "2026-03-02T10:00:00Z", '
        b'"payment_id": "P1", "amount_minor": 5}',
        "event_id",
        "Field required",
    ),
    (
        b'{"type": "session.started", "event_id": "bad-3", "occurred_at": '
        b'"2026-03-02T10:00:00Z", "session_id": "", "station_id": "ST", "connector_id": "1", '
        b'"customer_id": "C", "tariff_id": "T", "meter_start_wh": 0}',
        "session_id",
        "at least 1",
    ),
    (b'{"type": "session.teleported", "event_id": "bad-4"}', "type", "unknown message type"),
    (bytes(range(256)) * 4, "", "not UTF-8"),
    (
        b'{"type": "payment.captured", "event_id": "big", "note": "'
        + b"x" * (10 * 1024 * 1024)
        + b'"}',
        "occurred_at",
        "Field required",
    ),
]


def test_bad_messages_land_in_the_dead_letter_topic_and_ingest_keeps_going(
    env: dict[str, str], traffic: list[dict[str, Any]], tmp_path: Path, kafka_bootstrap: str
) -> None:
    prefix = env["EVLEDGER_TOPIC_PREFIX"]
    good = traffic[:40]
    lines = [json.dumps(m).encode() for m in good[:20]]
    lines += [raw for raw, _, _ in BAD_MESSAGES]
    lines += [json.dumps(m).encode() for m in good[20:]]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"".join(line.replace(b"\n", b" ") + b"\n" for line in lines))
    publish(env, path)

    counters = ingest(env)

    assert counters["consumed"] == len(good) + len(BAD_MESSAGES)
    assert counters["dead_lettered"] == len(BAD_MESSAGES)
    assert counters["applied"] == len(good)
    letters = [
        DeadLetter.from_headers(r.key, r.value, list(r.headers))
        for r in read_topic(kafka_bootstrap, f"{prefix}.ingest.dlq")
    ]
    assert len(letters) == len(BAD_MESSAGES)
    for letter, (raw, field, reason) in zip(letters, BAD_MESSAGES, strict=True):
        assert letter.value == raw.replace(b"\n", b" ")
        assert (letter.field, reason in letter.reason) == (field, True), letter.reason
        assert letter.source_topic == f"{prefix}.ingest"
        assert letter.source_offset >= 20
    assert kafka_ledger(env) == expected_ledger(good)


def test_a_message_larger_than_a_fetch_is_consumed_in_turn(
    env: dict[str, str], traffic: list[dict[str, Any]], tmp_path: Path
) -> None:
    """Ingest's fetches are small (their size bounds its memory); a larger message still
    comes through, alone in its fetch, and is judged like any other."""
    big = {**traffic[3], "type": "x" * (3 * FETCH_PARTITION_BYTES)}
    lines = [json.dumps(m) for m in traffic[:10]] + [json.dumps(big)]
    lines += [json.dumps(m) for m in traffic[10:20]]
    publish(env, write_jsonl_lines(tmp_path / "big.jsonl", lines))

    counters = ingest(env)

    assert (counters["consumed"], counters["dead_lettered"]) == (21, 1)
    assert kafka_ledger(env) == expected_ledger(traffic[:20])


def write_jsonl_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path
