"""One ledger topic in this process: its index, its reader and its (lazily started) writer."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from store.admin import TopicSpec, ensure_topic
from store.index import DEFAULT_CACHE_KIB, AggregateIndex, index_file
from store.kafka_clients import KafkaConnection
from store.reader import DEFAULT_CACHE_RECORDS, LedgerReader, RecordCache
from store.records import LedgerRecord
from store.signing import LedgerSigner
from store.writer import (
    DEFAULT_MAX_EVENTS_PER_TRANSACTION,
    DEFAULT_TIMEOUT_S,
    LedgerWriter,
    PendingCommit,
    SideRecord,
    WriterBase,
    catch_up,
)
from store.writer_process import ProcessLedgerWriter, WriterSpec

# A process without a healthy writer of its own looks for other processes' commits at most
# this often: reads in between use the index as it is, so a projector or an ingest process
# re-reading duplicates pays no Kafka round trip per read, and sees another process's
# commit at most this much later. The writer's version checks never depend on it: they
# run on the index its own recovery and commits keep current.
REFRESH_INTERVAL_S = 0.05


@dataclass(frozen=True)
class LedgerConfig:
    """Everything that identifies and tunes one ledger topic's store."""

    connection: KafkaConnection
    topic: str
    transactional_id: str
    index_dir: Path | None = None
    contiguous_versions: bool = True
    create_topic: bool = True
    replication_factor: int = 1
    min_insync_replicas: int = 1
    cache_records: int = DEFAULT_CACHE_RECORDS
    index_cache_kib: int = DEFAULT_CACHE_KIB
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_events_per_transaction: int = DEFAULT_MAX_EVENTS_PER_TRANSACTION
    # Signs every record the writer writes (store/signing.py); None writes unsigned records.
    signer: LedgerSigner | None = None
    # The writer runs in a child process (store/writer_process.py), on another core than
    # its callers; otherwise in a thread of this process.
    writer_process: bool = False


class Ledger:
    """The store behind the recorders of one topic.

    Reading needs no writer: a process that only reads (a projector, the CLI) never fences
    the one that writes. The writer starts on the first insert.
    """

    def __init__(self, config: LedgerConfig) -> None:
        self.config = config
        if config.create_topic:
            ensure_topic(
                config.connection,
                TopicSpec(config.topic, config.replication_factor, config.min_insync_replicas),
                timeout_ms=int(config.timeout_s * 1000),
            )
        self._temp_dir: str | None = None
        if config.index_dir is None:
            # No data dir: a throwaway index, rebuilt from the topic by the next process.
            self._temp_dir = tempfile.mkdtemp(prefix="evledger-index-")
            index_dir = Path(self._temp_dir)
        else:
            index_dir = config.index_dir
            index_dir.mkdir(parents=True, exist_ok=True)
        file = index_file(index_dir, config.topic)
        self.index = AggregateIndex(file.path, config.index_cache_kib, synced=file.synced)
        self.reader = LedgerReader(
            config.connection,
            config.topic,
            RecordCache(config.cache_records),
            timeout_s=config.timeout_s,
        )
        self._writer: WriterBase | None = None
        self._writer_lock = threading.Lock()
        self._catch_up_lock = threading.Lock()
        self._last_catch_up = -REFRESH_INTERVAL_S
        self._listeners: set[threading.Event] = set()
        self._listeners_lock = threading.Lock()

    # --- writing -----------------------------------------------------------------------

    @property
    def writer(self) -> WriterBase:
        with self._writer_lock:
            if self._writer is None:
                writer = (
                    self._process_writer() if self.config.writer_process else self._thread_writer()
                )
                writer.start()
                self._writer = writer
            return self._writer

    def _thread_writer(self) -> LedgerWriter:
        config = self.config
        return LedgerWriter(
            config.connection,
            config.topic,
            config.transactional_id,
            self.index,
            self.reader,
            contiguous_versions=config.contiguous_versions,
            timeout_s=config.timeout_s,
            max_events_per_transaction=config.max_events_per_transaction,
            on_commit=self._notify_listeners,
            catch_up_lock=self._catch_up_lock,
            signer=config.signer,
        )

    def _process_writer(self) -> ProcessLedgerWriter:
        config = self.config
        spec = WriterSpec(
            connection=config.connection,
            topic=config.topic,
            transactional_id=config.transactional_id,
            index_path=Path(self.index.path),
            index_synced=self.index.synced,
            index_cache_kib=config.index_cache_kib,
            contiguous_versions=config.contiguous_versions,
            timeout_s=config.timeout_s,
            max_events_per_transaction=config.max_events_per_transaction,
            signer=config.signer,
        )
        return ProcessLedgerWriter(spec, self.reader.cache, on_commit=self._notify_listeners)

    def insert(self, stored_events: Sequence[StoredEvent]) -> list[int]:
        return self.writer.insert(stored_events)

    def commit_batches(
        self,
        batches: Sequence[Sequence[StoredEvent]],
        offsets: Mapping[Any, Any] | None = None,
        group_metadata: Any = None,
        side_records: Sequence[SideRecord] = (),
    ) -> list[list[int]]:
        """See LedgerWriter.commit_batches: batches, consumer offsets and records for other
        topics in one transaction."""
        return self.writer.commit_batches(batches, offsets, group_metadata, side_records)

    def submit(self, request: PendingCommit) -> PendingCommit:
        """As commit_batches, returning at once: the request's ``result()`` waits for it."""
        return self.writer.submit(request)

    # --- reading -----------------------------------------------------------------------

    def refresh(self) -> None:
        """Bring the index up to the topic's committed end, unless this process's own
        healthy writer already guarantees it is (no other writer can commit unfenced), or
        a catch-up started less than REFRESH_INTERVAL_S ago."""
        writer = self._writer
        if writer is not None and writer.healthy:
            return
        with self._catch_up_lock:
            started = time.monotonic()
            if started - self._last_catch_up < REFRESH_INTERVAL_S:
                return
            catch_up(self.index, self.reader)
            self._last_catch_up = started

    def events(
        self,
        originator_id: str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[LedgerRecord]:
        self.refresh()
        indexed = self.index.events(originator_id, gt=gt, lte=lte, desc=desc, limit=limit)
        records = self.reader.read([entry.offset for entry in indexed])
        return [records[entry.offset] for entry in indexed]

    def notifications(
        self, first_id: int, limit: int, stop: int | None = None, topics: Sequence[str] = ()
    ) -> list[LedgerRecord]:
        self.refresh()
        indexed = self.index.notifications(first_id, limit, stop, topics)
        records = self.reader.read([entry.offset for entry in indexed], remember=False)
        return [records[entry.offset] for entry in indexed]

    def max_notification_id(self) -> int | None:
        self.refresh()
        return self.index.last_notification_id()

    def last_uuid_versions(self, originator_ids: Sequence[UUID]) -> dict[UUID, int]:
        """The last version of each of these aggregates that has events: one index query
        for many ids."""
        self.refresh()
        return self.index.last_uuid_versions(originator_ids)

    # --- subscriptions -----------------------------------------------------------------

    def listen(self, event: threading.Event) -> None:
        with self._listeners_lock:
            self._listeners.add(event)

    def unlisten(self, event: threading.Event) -> None:
        with self._listeners_lock:
            self._listeners.discard(event)

    def _notify_listeners(self) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener.set()

    def close(self) -> None:
        with self._writer_lock:
            if self._writer is not None:
                self._writer.close()
        self.reader.close()
        self.index.close()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)


# Two Application instances in one process with the same settings share one Ledger, hence
# one writer: racing saves meet in one version check and the loser gets IntegrityError
# (two writers with one transactional id would fence each other instead).
_registry: dict[tuple[str, str], tuple[Ledger, int]] = {}
_registry_lock = threading.Lock()


def acquire_ledger(config: LedgerConfig, make: Callable[[LedgerConfig], Ledger] = Ledger) -> Ledger:
    """The process's Ledger for this bootstrap and topic, created on first use."""
    key = (config.connection.bootstrap_servers, config.topic)
    with _registry_lock:
        if key in _registry:
            ledger, users = _registry[key]
            _registry[key] = (ledger, users + 1)
            return ledger
        ledger = make(config)
        _registry[key] = (ledger, 1)
        return ledger


def release_ledger(ledger: Ledger) -> None:
    """Give a Ledger back; the last user closes it (stopping its writer)."""
    key = (ledger.config.connection.bootstrap_servers, ledger.config.topic)
    with _registry_lock:
        entry = _registry.get(key)
        if entry is None or entry[0] is not ledger:
            return
        users = entry[1] - 1
        if users > 0:
            _registry[key] = (ledger, users)
            return
        del _registry[key]
    ledger.close()
