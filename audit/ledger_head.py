"""The ledger's last notification id, read cheaply and often (a server's /readyz measures
each projection's lag with it): the embedded SQLite file, or the Kafka topic's tail."""

from __future__ import annotations

import sqlite3
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from store.kafka_clients import KafkaConnection

# Records looked at before the end of the topic; transaction markers take offsets too.
_TAIL = 64


class LedgerUnreachable(RuntimeError):
    """The ledger cannot be read now; the message says why."""


class LedgerHead(ABC):
    """Where the ledger ends, asked again and again by one long-lived process."""

    @abstractmethod
    def last_notification_id(self) -> int:
        """The highest notification id committed (0: an empty ledger)."""

    def close(self) -> None:  # noqa: B027 - only the Kafka head holds a connection
        """Let go of any connection held between questions."""


class SqliteLedgerHead(LedgerHead):
    """The embedded default's ledger file, opened read-only for each question."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def last_notification_id(self) -> int:
        if not self.path.exists():
            return 0
        try:
            with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5) as db:
                row = db.execute("SELECT MAX(rowid) FROM stored_events").fetchone()
        except sqlite3.Error as error:
            if "no such table" in str(error):
                return 0
            raise LedgerUnreachable(f"embedded ledger: {error}") from None
        return int(row[0] or 0)


class KafkaLedgerHead(LedgerHead):
    """The ledger topic's last committed records, read by one kept consumer."""

    def __init__(self, connection: KafkaConnection, topic: str) -> None:
        self.connection = connection
        self.topic = topic
        self._lock = threading.Lock()
        self._consumer: Any = None

    def last_notification_id(self) -> int:
        with self._lock:
            return self._read_tail()

    def _read_tail(self) -> int:
        from kafka import TopicPartition
        from kafka.errors import KafkaError

        from store.records import HEADER_NOTIFICATION_ID

        partition = TopicPartition(self.topic, 0)
        try:
            consumer = self._kafka_consumer()
            if not consumer.partitions_for_topic(self.topic):
                return 0
            consumer.assign([partition])
            end = int(consumer.end_offsets([partition], timeout_ms=5000)[partition])
            start = max(0, end - _TAIL)
            while True:
                consumer.seek(partition, start)
                last = 0
                while consumer.position(partition) < end:
                    records = consumer.poll(timeout_ms=1000, max_records=_TAIL * 2)
                    if not records:
                        break
                    for record in records.get(partition, ()):
                        headers = dict(record.headers or [])
                        if HEADER_NOTIFICATION_ID in headers:
                            last = max(last, int(headers[HEADER_NOTIFICATION_ID]))
                if last or start == 0:
                    return last
                start = max(0, start - _TAIL * 16)
        except KafkaError as error:
            self._reset()
            raise LedgerUnreachable(f"Kafka ledger {self.topic!r}: {error}") from None

    def _kafka_consumer(self) -> Any:
        if self._consumer is None:
            self._consumer = self.connection.consumer(
                group_id=None,
                enable_auto_commit=False,
                isolation_level="read_committed",
                fetch_max_wait_ms=20,
                request_timeout_ms=10_000,
                client_id="evledger-ledger-head",
            )
        return self._consumer

    def _reset(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def close(self) -> None:
        with self._lock:
            self._reset()
