"""The auditor's tools against a real Kafka ledger built from a generated day of traffic:
verify passes on it, and finds tampered copies at the right offset; trail and export."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from audit.kafka_scan import KafkaLedgerScan
from bootstrap import bootstrap
from bootstrap.settings import Settings
from cli.audit import app
from domain.application import BillingApplication
from store.admin import TopicSpec, ensure_topic
from store.kafka_clients import KafkaConnection
from tests.integration.store.conftest import delete_topics
from tests.kafka_topics import read_topic
from tests.unit.audit.conftest import apply_traffic, refunded_payment

pytestmark = [pytest.mark.kafka]

runner = CliRunner()
Raw = tuple[int, bytes | None, bytes | None, list[tuple[str, bytes]]]


@dataclass
class KafkaLedger:
    bootstrap: str
    prefix: str
    messages: list[dict[str, Any]]
    records: list[Raw]  # (offset, key, value, headers) as committed
    topics: list[str]

    def env(self, prefix: str | None = None) -> dict[str, str | None]:
        return {
            "EVLEDGER_KAFKA_BOOTSTRAP": self.bootstrap,
            "EVLEDGER_TOPIC_PREFIX": prefix or self.prefix,
        }


def read_raw(bootstrap: str, topic: str) -> list[Raw]:
    return [
        (message.offset, message.key, message.value, list(message.headers))
        for message in read_topic(bootstrap, topic)
    ]


def copy_to(ledger: KafkaLedger, records: list[Raw]) -> str:
    """Write records to a new ledger topic (offsets 0, 1, ...); returns its prefix."""

    prefix = f"{ledger.prefix}-copy-{uuid.uuid4().hex[:6]}"
    topic = f"{prefix}.ledger"
    ensure_topic(KafkaConnection(ledger.bootstrap), TopicSpec(topic))
    ledger.topics.append(topic)
    producer = KafkaConnection(ledger.bootstrap).producer(acks="all", linger_ms=5)
    for _, key, value, headers in records:
        producer.send(topic, key=key, value=value, headers=headers, partition=0)
    producer.flush()
    producer.close()
    return prefix


@pytest.fixture(scope="module")
def kafka_ledger(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KafkaLedger]:
    prefix = f"test.audit.{uuid.uuid4().hex[:8]}"
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=prefix,
        data_dir=tmp_path_factory.mktemp("kafka"),
    )
    topics = [settings.ledger_topic, f"{settings.ledger_topic}.snapshots"]
    try:
        application = BillingApplication(env=bootstrap(settings).ledger.environment())
        try:
            messages = apply_traffic(application, seed=23)
        finally:
            application.close()
        ledger = KafkaLedger(
            kafka_bootstrap,
            prefix,
            messages,
            read_raw(kafka_bootstrap, settings.ledger_topic),
            topics,
        )
        yield ledger
    finally:
        delete_topics(kafka_bootstrap, topics)


def verify(env: dict[str, str | None]) -> Any:
    return runner.invoke(app, ["verify", "--format", "json"], env=env)


def test_verify_passes_on_the_ledger(kafka_ledger: KafkaLedger) -> None:
    result = verify(kafka_ledger.env())
    assert result.exit_code == 0, result.output
    checks = {row["check"]: row["result"] for row in json.loads(result.stdout)}
    count = len(kafka_ledger.records)
    assert checks["records"] == count
    assert checks["notification ids"] == f"contiguous 1..{count}"
    assert checks["hash chain"].startswith(f"verified: {count} records")
    # Transactions leave markers between records: offsets are not notification ids.
    assert kafka_ledger.records[-1][0] > count - 1


def edit_header(raw: Raw, name: str, value: bytes) -> Raw:
    offset, key, record_value, headers = raw
    return offset, key, record_value, [(n, value if n == name else v) for n, v in headers]


def edit_value(raw: Raw) -> Raw:
    offset, key, value, headers = raw
    assert value is not None
    return offset, key, value.replace(b'"timestamp"', b'"timestamp" ', 1), headers


TAMPERINGS: dict[str, Callable[[list[Raw]], tuple[list[Raw], int, str]]] = {
    # name: records -> (tampered records, offset in the copy where verify must stop, words)
    "edited value": lambda r: ([*r[:300], edit_value(r[300]), *r[301:]], 300, "content"),
    "edited header": lambda r: (
        [*r[:301], edit_header(r[301], "evledger.originator_version", b"7"), *r[302:]],
        301,
        "content",
    ),
    "edited hash": lambda r: (
        [*r[:302], edit_header(r[302], "evledger.hash", b"ab" * 32), *r[303:]],
        302,
        "content",
    ),
    "deleted record": lambda r: ([*r[:303], *r[304:]], 303, "removed"),
    "swapped records": lambda r: ([*r[:304], r[305], r[304], *r[306:]], 304, "removed, moved"),
    "missing header": lambda r: (
        [*r[:305], (r[305][0], r[305][1], r[305][2], r[305][3][:-1]), *r[306:]],
        305,
        "lacks header 'evledger.hash'",
    ),
}


@pytest.mark.parametrize("tampering", list(TAMPERINGS))
def test_verify_finds_a_tampered_copy_at_the_right_offset(
    kafka_ledger: KafkaLedger, tampering: str
) -> None:
    tampered, offset, words = TAMPERINGS[tampering](kafka_ledger.records)
    prefix = copy_to(kafka_ledger, tampered)
    result = verify(kafka_ledger.env(prefix))
    assert result.exit_code == 1, result.output
    assert f"audit failed at offset {offset}, notification id" in result.stderr
    assert words in result.stderr
    problems = json.loads(result.stdout)
    assert problems[0]["where"].startswith(f"offset {offset},")


def test_an_untouched_copy_verifies(kafka_ledger: KafkaLedger) -> None:
    prefix = copy_to(kafka_ledger, kafka_ledger.records)
    result = verify(kafka_ledger.env(prefix))
    assert result.exit_code == 0, result.output


def test_trail_of_a_payment_shows_session_capture_and_refunds_in_order(
    kafka_ledger: KafkaLedger,
) -> None:
    payment_id, refund_id = refunded_payment(kafka_ledger.messages)
    result = runner.invoke(app, ["trail", payment_id, "--format", "json"], env=kafka_ledger.env())
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    events = [row["event"] for row in rows]
    for earlier, later in [
        ("ChargingSession.Started", "Payment.Captured"),
        ("Payment.Authorised", "Payment.Captured"),
        ("Payment.Captured", "Refund.Requested"),
        ("Refund.Requested", "Refund.Issued"),
    ]:
        assert events.index(earlier) < events.index(later)
    assert {row["id"] for row in rows if row["kind"] == "refund"} >= {refund_id}
    offsets = [row["offset"] for row in rows]
    assert None not in offsets and offsets == sorted(offsets)
    assert all(row["recorded_at"] and row["notification_id"] for row in rows)
    captured = next(row for row in rows if row["event"] == "Payment.Captured")
    assert "captured_minor=" in captured["details"]


@pytest.mark.parametrize("file_format", ["parquet", "jsonl"])
def test_export_loads_in_a_fresh_duckdb_with_the_topics_hashes(
    kafka_ledger: KafkaLedger, tmp_path: Path, file_format: str
) -> None:
    out = tmp_path / "export"
    result = runner.invoke(
        app, ["export", "--format", file_format, "--out", str(out)], env=kafka_ledger.env()
    )
    assert result.exit_code == 0, result.output
    reader = "read_parquet" if file_format == "parquet" else "read_json_auto"
    connection = duckdb.connect()
    rows = connection.execute(
        f"SELECT kafka_offset, notification_id, hash FROM {reader}(?) ORDER BY notification_id",
        [str(out / f"ledger.{file_format}")],
    ).fetchall()
    connection.close()
    expected = [
        (
            offset,
            int(dict(headers)["evledger.notification_id"]),
            dict(headers)["evledger.hash"].decode(),
        )
        for offset, _, _, headers in kafka_ledger.records
    ]
    assert rows == expected
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["count"] == len(expected)
    assert manifest["last_hash"] == expected[-1][2]
    assert manifest["chain_computed_records"] == 0
    # Offline: no Kafka settings at all.
    result = runner.invoke(
        app, ["verify", "--export", str(out)], env={"EVLEDGER_KAFKA_BOOTSTRAP": None}
    )
    assert result.exit_code == 0, result.output


def test_the_raw_scan_reads_every_committed_record(kafka_ledger: KafkaLedger) -> None:
    scan = KafkaLedgerScan(KafkaConnection(kafka_ledger.bootstrap), f"{kafka_ledger.prefix}.ledger")
    scanned = list(scan.records())
    assert [r.offset for r in scanned] == [r[0] for r in kafka_ledger.records]
    assert all(r.defect is None for r in scanned)


def test_verify_of_a_missing_topic_is_one_clear_line(kafka_ledger: KafkaLedger) -> None:
    result = verify(kafka_ledger.env(f"{kafka_ledger.prefix}-absent"))
    assert result.exit_code == 2
    assert "no ledger topic" in result.stderr
