"""Read committed ledger records by offset (read_committed), with an LRU cache of recent ones."""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import OperationalError

from store.kafka_clients import KafkaConnection
from store.ledger_fetch import Fetched, use_ledger_records
from store.records import LedgerRecord

DEFAULT_CACHE_RECORDS = 20_000
# Records per poll of a read.
POLL_RECORDS = 2000


class LedgerReadError(OperationalError):
    """A record the index points at could not be read from the topic in time.

    An OperationalError, like the writer's: the ledger is unavailable, the message is not
    wrong, so the application raises it instead of dead-lettering the message.
    """


# A record not built yet: LedgerRecord.linked's arguments, built when first read. The
# writer's process answers a commit with every record's offset and hash, and ingest reads a
# few of a batch's thousand records back (the aggregates later batches fast-forward or
# load): building them all in the answers' thread was CPU that the domain's thread, under
# the same GIL, then lacked.
Unbuilt = tuple[bytes, int, str, int, str, bytes, bytes]


class RecordCache:
    """The most recently written or read records by offset, bounded in count."""

    def __init__(self, max_records: int = DEFAULT_CACHE_RECORDS) -> None:
        self._max_records = max_records
        self._records: OrderedDict[int, LedgerRecord | Unbuilt] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, offset: int) -> LedgerRecord | None:
        with self._lock:
            record = self._records.get(offset)
            if record is None:
                return None
            self._records.move_to_end(offset)
            if type(record) is tuple:
                record = self._records[offset] = LedgerRecord.linked(*record)
            return record  # type: ignore[return-value]

    def put(self, offset: int, record: LedgerRecord) -> None:
        self.put_many(((offset, record),))

    def put_many(self, records: Iterable[tuple[int, LedgerRecord | Unbuilt]]) -> None:
        """``put`` each (offset, record or Unbuilt), under one lock (a commit's records)."""
        if self._max_records <= 0:
            return
        with self._lock:
            cached = self._records
            for offset, record in records:
                if offset in cached:
                    cached.move_to_end(offset)
                cached[offset] = record  # a new offset goes to the end
            while len(cached) > self._max_records:
                cached.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


class LedgerReader:
    """Reads the one-partition ledger topic at given offsets; safe to share between threads.

    Kafka consumers are not thread-safe, so each read borrows one from a small pool.
    """

    def __init__(
        self,
        connection: KafkaConnection,
        topic: str,
        cache: RecordCache | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.connection = connection
        self.topic = topic
        self.cache = cache or RecordCache()
        self.timeout_s = timeout_s
        self._pool: list[Any] = []
        self._pool_lock = threading.Lock()
        self._closed = False
        # Per pooled consumer, the offset its next poll continues from without a seek.
        self._resume: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()

    def _new_consumer(self) -> Any:
        from kafka import TopicPartition

        consumer = self.connection.consumer(
            group_id=None,
            enable_auto_commit=False,
            # Guarantee 3: records of open or aborted transactions are never returned.
            isolation_level="read_committed",
            # Reads near the end of the topic should return what there is, not wait for more.
            fetch_max_wait_ms=20,
            client_id="evledger-reader",
        )
        # Its polls return (offset, LedgerRecord) pairs parsed from the fetched bytes.
        use_ledger_records(consumer)
        consumer.assign([TopicPartition(self.topic, 0)])
        return consumer

    @contextmanager
    def _consumer(self) -> Iterator[Any]:
        from kafka.errors import KafkaError

        with self._pool_lock:
            if self._closed:
                raise LedgerReadError("ledger reader is closed")
            consumer = self._pool.pop() if self._pool else None
        try:
            if consumer is None:
                consumer = self._new_consumer()
            yield consumer
        except KafkaError as error:
            # A broker down or a leader being elected: the ledger is unavailable for now,
            # which callers must tell apart from a bad message (see LedgerReadError).
            if consumer is not None:
                consumer.close()
            raise LedgerReadError(f"reading {self.topic!r} failed: {error!r}") from error
        except BaseException:
            if consumer is not None:
                consumer.close()
            raise
        with self._pool_lock:
            if self._closed:
                consumer.close()
            else:
                self._pool.append(consumer)

    def close(self) -> None:
        with self._pool_lock:
            self._closed = True
            pool, self._pool = self._pool, []
        for consumer in pool:
            consumer.close()

    def end_offset(self) -> int:
        """The last stable offset: every committed record lies before it."""
        from kafka import TopicPartition

        partition = TopicPartition(self.topic, 0)
        with self._consumer() as consumer:
            offsets = consumer.end_offsets([partition], timeout_ms=int(self.timeout_s * 1000))
            return int(offsets[partition])

    def read(self, offsets: Sequence[int], remember: bool = True) -> dict[int, LedgerRecord]:
        """The records at the given offsets (each must be a committed ledger record); those
        fetched are cached unless ``remember`` is False (a scan reads each record once, and
        caching it would push out the aggregates' records that are read again)."""
        found: dict[int, LedgerRecord] = {}
        missing: set[int] = set()
        for offset in offsets:
            record = self.cache.get(offset)
            if record is None:
                missing.add(offset)
            else:
                found[offset] = record
        if missing:
            for offset, record in self._fetch(min(missing), max(missing) + 1, missing):
                found[offset] = record
                if remember:
                    self.cache.put(offset, record)
            if not missing.issubset(found):
                raise LedgerReadError(
                    f"offsets {sorted(missing - found.keys())[:5]} of {self.topic!r} are not "
                    "committed ledger records"
                )
        return found

    def scan(self, start: int, end: int) -> Iterator[tuple[int, LedgerRecord]]:
        """Every committed record with start <= offset < end, in offset order."""
        yield from self._fetch(start, end, None)

    def _fetch(
        self, start: int, end: int, wanted: set[int] | None
    ) -> Iterator[tuple[int, LedgerRecord]]:
        from kafka import TopicPartition

        partition = TopicPartition(self.topic, 0)
        remaining = None if wanted is None else set(wanted)
        with self._consumer() as consumer:
            # A seek drops whatever the consumer fetched ahead (and has it re-validate its
            # position): a read that goes on where the last one stopped skips it.
            if self._resume.pop(consumer, None) != start:
                consumer.seek(partition, start)
            deadline = time.monotonic() + self.timeout_s
            while (position := consumer.position(partition)) < end:
                if remaining is not None and not remaining:
                    break
                if time.monotonic() > deadline:
                    raise LedgerReadError(
                        f"timed out reading {self.topic!r} offsets {start}..{end - 1}"
                    )
                # Never more records than offsets left before `end`: records polled past it
                # would be parsed, dropped here, and fetched and parsed again by the next read.
                wanted_now = max(1, min(POLL_RECORDS, end - position))
                batches = consumer.poll(timeout_ms=200, max_records=wanted_now)
                fetched: list[Fetched] = batches.get(partition, [])
                for offset, record in fetched:
                    if offset >= end:
                        return
                    if remaining is not None:
                        if offset not in remaining:
                            continue
                        remaining.discard(offset)
                    # Any progress pushes the deadline: a long catch-up is not a timeout.
                    deadline = time.monotonic() + self.timeout_s
                    yield offset, record
            # Every record polled was yielded or passed over: the next read may go on here.
            self._resume[consumer] = consumer.position(partition)
