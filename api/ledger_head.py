"""The ledger's last notification id, for /readyz: how far each projection lags behind."""

from __future__ import annotations

import sqlite3
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cli.settings import Settings

# Records looked at before the end of the topic; transaction markers take offsets too.
_TAIL = 64


class LedgerUnreachable(RuntimeError):
    """The ledger cannot be read now; the message says why."""


class LedgerHead:
    """Reads only the ledger's end: the embedded SQLite file, or the Kafka topic's tail."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._consumer: Any = None

    def last_notification_id(self) -> int:
        if self._settings.kafka_bootstrap is None:
            return self._embedded()
        with self._lock:
            return self._kafka()

    def _embedded(self) -> int:
        from replay.sources import embedded_ledger_path

        path = embedded_ledger_path(self._settings)
        if not path.exists():
            return 0
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
                row = db.execute("SELECT MAX(rowid) FROM stored_events").fetchone()
        except sqlite3.Error as error:
            if "no such table" in str(error):
                return 0
            raise LedgerUnreachable(f"embedded ledger: {error}") from None
        return int(row[0] or 0)

    def _kafka(self) -> int:
        from kafka import TopicPartition
        from kafka.errors import KafkaError

        from store.records import HEADER_NOTIFICATION_ID

        topic = self._settings.ledger_topic
        partition = TopicPartition(topic, 0)
        try:
            consumer = self._kafka_consumer()
            if not consumer.partitions_for_topic(topic):
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
            raise LedgerUnreachable(f"Kafka ledger {topic!r}: {error}") from None

    def _kafka_consumer(self) -> Any:
        from kafka import KafkaConsumer

        if self._consumer is None:
            self._consumer = KafkaConsumer(
                bootstrap_servers=self._settings.kafka_bootstrap,
                group_id=None,
                enable_auto_commit=False,
                isolation_level="read_committed",
                fetch_max_wait_ms=20,
                request_timeout_ms=10_000,
                client_id="evledger-api",
            )
        return self._consumer

    def _reset(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def close(self) -> None:
        with self._lock:
            self._reset()
