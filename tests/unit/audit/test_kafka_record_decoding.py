"""A consumer record becomes a ScannedRecord; a damaged one keeps what can be read and says
what is wrong, instead of raising like the store's decoder."""

from __future__ import annotations

from eventsourcing.persistence import StoredEvent
from kafka.consumer.fetcher import ConsumerRecord

from audit.kafka_scan import scanned_from_kafka
from store.records import GENESIS_HASH, LedgerRecord


def consumer_record(
    headers: list[tuple[str, bytes]], key: bytes | None = b"agg-1"
) -> ConsumerRecord:
    return ConsumerRecord(
        "t", 0, None, 41, 1_700_000_000_000, 0, key, b'{"a":1}', headers, None, 0, 0, 0
    )


def good_headers() -> list[tuple[str, bytes]]:
    record = LedgerRecord.chained(GENESIS_HASH, 1, StoredEvent("agg-1", 1, "m:A.B", b'{"a":1}'))
    return record.headers()


def test_a_good_record_is_read_whole() -> None:
    scanned = scanned_from_kafka(3, consumer_record(good_headers()))
    assert scanned.defect is None
    assert (scanned.position, scanned.offset, scanned.notification_id) == (3, 41, 1)
    assert scanned.prev_hash == GENESIS_HASH
    assert scanned.content_hash(GENESIS_HASH) == scanned.hash
    assert scanned.recorded_at is not None and scanned.recorded_at.year == 2023


def test_a_missing_or_repeated_header_and_a_bad_digest_are_defects() -> None:
    headers = [h for h in good_headers() if h[0] != "evledger.topic"]
    headers.append(("evledger.notification_id", b"2"))
    headers = [(n, b"zz" if n == "evledger.prev_hash" else v) for n, v in headers]
    scanned = scanned_from_kafka(1, consumer_record(headers, key=None))
    assert scanned.defect is not None
    for words in (
        "'evledger.topic'",
        "'evledger.notification_id' appears 2 times",
        "'evledger.prev_hash' is not a 64-digit hex",
        "has no key",
    ):
        assert words in scanned.defect
    assert scanned.topic is None and scanned.prev_hash is None


def test_a_foreign_format_is_a_defect() -> None:
    headers = [(n, b"9" if n == "evledger.format" else v) for n, v in good_headers()]
    scanned = scanned_from_kafka(1, consumer_record(headers))
    assert scanned.defect is not None and "record format '9'" in scanned.defect
