"""Read the raw records of a Kafka ledger topic, headers included, read_committed.

The auditor does not trust the store: no aggregate index, no record cache and no decoding
that could refuse a damaged record. Every committed record is returned as found.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from audit.scan import LedgerUnavailable, ScannedRecord
from store.kafka_clients import KafkaConnection
from store.records import (
    FORMAT_VERSION,
    HEADER_FORMAT,
    HEADER_HASH,
    HEADER_NOTIFICATION_ID,
    HEADER_ORIGINATOR_VERSION,
    HEADER_PREV_HASH,
    HEADER_TOPIC,
    RECORD_HEADERS,
)
from store.signing import HEADER_KEY_ID, HEADER_SIGNATURE, HEADER_SIGNED_FROM

_POLL_MS = 200


class KafkaLedgerScan:
    """The committed records of partition 0 of a ledger topic, from offset 0 to its end."""

    chain_origin = "recorded"

    def __init__(self, connection: KafkaConnection, topic: str, timeout_s: float = 30.0) -> None:
        self.connection = connection
        self.bootstrap_servers = connection.bootstrap_servers
        self.topic = topic
        self.timeout_s = timeout_s
        self._end_offset: int | None = None

    @property
    def description(self) -> str:
        return f"Kafka topic {self.topic!r} at {self.bootstrap_servers}"

    def size_hint(self) -> int | None:
        # Offsets, not records: transaction markers take offsets too, so it is an upper bound.
        return self._end_offset

    def _consumer(self) -> Any:
        from kafka.errors import KafkaError

        from store.kafka_login import KafkaLoginRefused

        try:
            return self.connection.consumer(
                group_id=None,
                enable_auto_commit=False,
                # Only committed transactions: what the ledger's readers are allowed to see.
                isolation_level="read_committed",
                auto_offset_reset="earliest",
                client_id="evledger-audit",
                request_timeout_ms=int(self.timeout_s * 1000) + 5000,
            )
        except KafkaLoginRefused as error:
            raise LedgerUnavailable(str(error)) from None
        except KafkaError as error:
            raise LedgerUnavailable(
                f"cannot reach Kafka at {self.bootstrap_servers} ({error}); check "
                "EVLEDGER_KAFKA_BOOTSTRAP and that the broker runs"
            ) from None

    def records(self) -> Iterator[ScannedRecord]:
        from kafka import TopicPartition

        consumer = self._consumer()
        try:
            partitions = consumer.partitions_for_topic(self.topic)
            if not partitions:
                raise LedgerUnavailable(
                    f"no ledger topic {self.topic!r} at {self.bootstrap_servers}; check "
                    "EVLEDGER_TOPIC_PREFIX"
                )
            if partitions != {0}:
                raise LedgerUnavailable(
                    f"topic {self.topic!r} has {len(partitions)} partitions; a ledger has one"
                )
            partition = TopicPartition(self.topic, 0)
            consumer.assign([partition])
            end = int(
                consumer.end_offsets([partition], timeout_ms=int(self.timeout_s * 1000))[partition]
            )
            self._end_offset = end
            consumer.seek_to_beginning(partition)
            position = 0
            deadline = time.monotonic() + self.timeout_s
            while consumer.position(partition) < end:
                if time.monotonic() > deadline:
                    raise LedgerUnavailable(
                        f"timed out reading {self.topic!r} at offset "
                        f"{consumer.position(partition)} of {end}"
                    )
                batches = consumer.poll(timeout_ms=_POLL_MS, max_records=2000)
                for message in batches.get(partition, ()):
                    if message.offset >= end:
                        return
                    deadline = time.monotonic() + self.timeout_s
                    position += 1
                    yield scanned_from_kafka(position, message)
        finally:
            consumer.close()


def scanned_from_kafka(position: int, message: Any) -> ScannedRecord:
    """A consumer record as a ScannedRecord; damage becomes its defect, never an exception."""
    headers: list[tuple[str, bytes]] = list(message.headers or [])
    found = dict(headers)
    defects = [
        f"header {name!r} appears {count} times"
        for name, count in Counter(name for name, _ in headers).items()
        if count > 1
    ]
    missing = [name for name in RECORD_HEADERS if name not in found]
    if missing:
        defects.append(f"lacks header {', '.join(repr(name) for name in missing)}")
    record_format = _text(found.get(HEADER_FORMAT))
    if record_format is not None and record_format != FORMAT_VERSION:
        defects.append(
            f"has record format {record_format!r}; this auditor reads {FORMAT_VERSION!r}"
        )
    notification_id = _integer(found.get(HEADER_NOTIFICATION_ID), HEADER_NOTIFICATION_ID, defects)
    version = _integer(found.get(HEADER_ORIGINATOR_VERSION), HEADER_ORIGINATOR_VERSION, defects)
    topic = _text(found.get(HEADER_TOPIC))
    key = _text(message.key)
    if key is None:
        defects.append("has no key (the originator id) or one that is not UTF-8")
    return ScannedRecord(
        position=position,
        offset=int(message.offset),
        notification_id=notification_id,
        originator_id=key or "",
        originator_version=version,
        topic=topic,
        state=message.value or b"",
        prev_hash=_digest(found.get(HEADER_PREV_HASH), HEADER_PREV_HASH, defects),
        hash=_digest(found.get(HEADER_HASH), HEADER_HASH, defects),
        recorded_at=datetime.fromtimestamp(message.timestamp / 1000, tz=UTC)
        if message.timestamp is not None and message.timestamp >= 0
        else None,
        defect="; ".join(defects) or None,
        key_id=_text(found.get(HEADER_KEY_ID)),
        signature=_signature(found.get(HEADER_SIGNATURE)),
        signed_from=_integer(found.get(HEADER_SIGNED_FROM), HEADER_SIGNED_FROM, defects),
    )


def _signature(raw: bytes | None) -> bytes | None:
    # A signature that is not hex is no signature: the audit names the record as unsigned.
    text = _text(raw)
    if text is None:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _integer(raw: bytes | None, name: str, defects: list[str]) -> int | None:
    text = _text(raw)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        defects.append(f"header {name!r} is not an integer: {text[:40]!r}")
        return None


def _digest(raw: bytes | None, name: str, defects: list[str]) -> bytes | None:
    text = _text(raw)
    if text is None:
        return None
    try:
        digest = bytes.fromhex(text)
    except ValueError:
        digest = b""
    if len(digest) != 32:
        defects.append(f"header {name!r} is not a 64-digit hex SHA-256: {text[:70]!r}")
        return None
    return digest
