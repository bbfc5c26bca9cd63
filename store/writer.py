"""The single fenced transactional writer of a ledger topic, with group commit."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent

from store.index import AggregateIndex, IndexConflict
from store.kafka_clients import KafkaConnection
from store.ledger_send import queue_ledger_records
from store.reader import LedgerReader
from store.records import LedgerRecord
from store.signing import LedgerSigner

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_EVENTS_PER_TRANSACTION = 5000

MAX_REQUEST_BYTES = 17 * 1024 * 1024


class WriterFenced(OperationalError):
    """Another writer with the same transactional id took over this ledger.

    Raised by the insert that found out and by every later one: a fenced writer never
    writes again. Nothing it acknowledged is lost (it was committed); restart the process,
    or let the newer writer carry on.
    """


class WriterUnavailable(OperationalError):
    """A transaction failed or timed out; none of its events were acknowledged.

    If a commit timed out, its outcome is unknown until the writer recovers (it re-reads
    the topic before the next transaction), so the caller should retry its command on
    fresh state, where a version conflict tells it the events did land.
    """


class LedgerCorrupted(RuntimeError):
    """The topic's notification ids or hash chain do not follow on: an event is missing."""


def catch_up(
    index: AggregateIndex, reader: LedgerReader, apply_every: int = 5000, *, settled: bool = False
) -> int:
    """Index every committed record the index lacks; return the new position.

    Safe beside other processes catching up into the same index file: whoever applies a
    record first wins and the others skip it. Rebuilds from offset 0 when the index belongs
    to an older incarnation of the topic. `settled` says every transaction on the topic is
    complete (the writer has just run init_transactions): only then does a topic shorter
    than the index prove it was recreated.
    """
    for _attempt in range(_CATCH_UP_ATTEMPTS - 1):
        try:
            return _catch_up_once(index, reader, apply_every, settled)
        except IndexConflict as conflict:
            # Another process reset or advanced the index under us: start from its state.
            logger.info("catching up %r again: %s", reader.topic, conflict)
    return _catch_up_once(index, reader, apply_every, settled)


_CATCH_UP_ATTEMPTS = 5


def _catch_up_once(
    index: AggregateIndex, reader: LedgerReader, apply_every: int, settled: bool
) -> int:
    # The index's state first, then the topic's end: the index holds only committed
    # records, so the end read afterwards lies at or beyond its position. It may still
    # lie before it, for a moment, while the markers of a transaction that another process
    # has just committed and indexed are written (the end is the last stable offset):
    # that is no reason to forget anything, because the index never shrinks for a topic.
    state = index.state()
    end = reader.end_offset()
    if end <= state.position:
        if end < state.position and settled:
            logger.warning("%r is shorter than its index: rebuilding the index", reader.topic)
            index.reset()
            return _catch_up_once(index, reader, apply_every, settled)
        return state.position
    expected_id = state.last_notification_id + 1
    expected_prev = state.last_hash
    pending: list[tuple[int, LedgerRecord]] = []
    first = True
    for offset, record in reader.scan(state.position, end):
        if first and state.position > 0 and record.prev_hash != state.last_hash:
            # Every committed record before the position is indexed, so the first one after
            # it follows the indexed chain, unless the topic was recreated under its name.
            logger.warning("%r was recreated: rebuilding its index", reader.topic)
            index.reset()
            return _catch_up_once(index, reader, apply_every, settled)
        first = False
        if record.notification_id != expected_id or record.prev_hash != expected_prev:
            raise LedgerCorrupted(
                f"{reader.topic!r} offset {offset}: notification id {record.notification_id} "
                f"(expected {expected_id}) or prev_hash does not follow on"
            )
        expected_id += 1
        expected_prev = record.hash
        pending.append((offset, record))
        if len(pending) >= apply_every:
            index.apply(pending, offset + 1)
            pending = []
    index.apply(pending, end)
    return end


@dataclass(frozen=True)
class SideRecord:
    """A record for another topic (a dead letter, say) committed with the ledger's events:
    no notification id, no chain link, just in the same transaction."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]] = ()


@dataclass
class PendingCommit:
    """One caller's unit of work: its batches go into one transaction, all or nothing.
    ``result()`` waits for the writer's answer."""

    batches: Sequence[Sequence[StoredEvent]]
    offsets: Mapping[Any, Any] | None = None
    group_metadata: Any = None
    side_records: Sequence[SideRecord] = ()
    # Called (in the writer thread) once the answer is in: the writer process sends it on.
    on_done: Callable[[PendingCommit], None] | None = None
    done: threading.Event = field(default_factory=threading.Event)
    ids: list[list[int]] | None = None
    error: BaseException | None = None
    # The committed ledger records (offset, record) of this request's batches, in order:
    # filled where the records are made (the thread writer, the writer's process); the
    # process writer's parent leaves it empty and keeps them unbuilt in its record cache.
    committed: list[tuple[int, LedgerRecord]] = field(default_factory=list)

    @property
    def event_count(self) -> int:
        return sum(len(batch) for batch in self.batches)

    def finish(self, ids: list[list[int]] | None, error: BaseException | None) -> None:
        self.ids = ids
        self.error = error
        self.done.set()
        if self.on_done is not None:
            self.on_done(self)

    def result(self) -> list[list[int]]:
        """The notification ids by batch, once committed; raises what the commit raised."""
        self.done.wait()
        if self.error is not None:
            raise self.error
        assert self.ids is not None
        return self.ids


class WriterBase(ABC):
    """What a ledger topic's writer offers, wherever it runs: a thread of this process
    (LedgerWriter) or a child process (store/writer_process.py). ``submit`` queues one
    request; the rest is built on it."""

    topic: str
    _fenced: WriterFenced | None

    @abstractmethod
    def start(self) -> None:
        """Fence any older writer and index what it committed; then accept requests."""

    @abstractmethod
    def close(self) -> None:
        """Finish what was queued, then stop."""

    @property
    @abstractmethod
    def healthy(self) -> bool:
        """Whether the index is current without reading the topic: this writer is the
        only one and its last transaction's outcome is known."""

    @abstractmethod
    def submit(self, request: PendingCommit) -> PendingCommit:
        """Queue a request (see commit_batches) and return at once; its ``result()`` waits."""

    @property
    def fenced(self) -> bool:
        return self._fenced is not None

    def insert(self, stored_events: Sequence[StoredEvent]) -> list[int]:
        """Append one batch atomically; return its notification ids."""
        return self.commit_batches([stored_events])[0]

    def commit_batches(
        self,
        batches: Sequence[Sequence[StoredEvent]],
        offsets: Mapping[Any, Any] | None = None,
        group_metadata: Any = None,
        side_records: Sequence[SideRecord] = (),
    ) -> list[list[int]]:
        """Append several batches, and optionally commit consumer offsets and records for
        other topics, in one transaction.

        This is Kafka's consume-transform-produce: pass the ingest consumer's next offsets
        ({TopicPartition: OffsetAndMetadata}) and `consumer.group_metadata()`, and the
        offsets (and side records, e.g. dead letters) are committed if and only if the
        batches are. All or nothing: one conflicting batch raises IntegrityError and nothing
        is written. No batches at all commits just the offsets and side records.

        Requests are grouped into shared transactions; if one fails at commit (its consumer
        left its group, say), the whole transaction aborts and every request in it gets
        WriterUnavailable: none of them was acknowledged, so each caller retries.
        """
        return self.submit(PendingCommit(batches, offsets, group_metadata, side_records)).result()

    def _admit(self, request: PendingCommit) -> None:
        """Refuse a request no writer may take, or any once this one was fenced."""
        if (request.offsets is None) != (request.group_metadata is None):
            raise ValueError("offsets and group_metadata go together")
        if any(record.topic == self.topic for record in request.side_records):
            raise ValueError(f"side records cannot go to the ledger topic {self.topic!r}")
        if self._fenced is not None:
            raise self._fenced


class LedgerWriter(WriterBase):
    """Appends stored events to the ledger topic, numbering and chaining them.

    One writer per ledger partition, fenced by its Kafka transactional id: starting a
    writer aborts the older writer's open transaction and makes its next write fail with
    WriterFenced. A thread drains a queue of requests and commits many of them in one
    Kafka transaction (group commit), then wakes their callers.
    """

    def __init__(
        self,
        connection: KafkaConnection,
        topic: str,
        transactional_id: str,
        index: AggregateIndex,
        reader: LedgerReader,
        *,
        contiguous_versions: bool = True,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_events_per_transaction: int = DEFAULT_MAX_EVENTS_PER_TRANSACTION,
        on_commit: Callable[[], None] | None = None,
        catch_up_lock: threading.Lock | None = None,
        signer: LedgerSigner | None = None,
    ) -> None:
        self.connection = connection
        self.topic = topic
        self.transactional_id = transactional_id
        self.index = index
        self.reader = reader
        self.contiguous_versions = contiguous_versions
        self.timeout_s = timeout_s
        self.max_events_per_transaction = max_events_per_transaction
        self._on_commit = on_commit
        # Signs each transaction's records, so an auditor can tell them from appended ones.
        self._signer = signer
        # Shared with the Ledger's refresh(): one catch-up at a time in this process.
        self._catch_up_lock = catch_up_lock or threading.Lock()
        self._requests: queue.Queue[PendingCommit | None] = queue.Queue()
        self._held_over: PendingCommit | None = None
        self._producer: Any = None
        self._fenced: WriterFenced | None = None
        self._needs_recovery = False
        self._next_id = 1
        self._last_hash = b""
        self._thread: threading.Thread | None = None
        self._stopping = False
        # Committed Kafka transactions, for seeing how well group commit groups.
        self.transactions_committed = 0

    # --- the callers' side -------------------------------------------------------------

    def start(self) -> None:
        """Fence any older writer, index what it committed, and start the writer thread."""
        self._recover()
        self._thread = threading.Thread(
            target=self._run, name=f"ledger-writer-{self.topic}", daemon=True
        )
        self._thread.start()

    @property
    def healthy(self) -> bool:
        return (
            self._thread is not None
            and self._fenced is None
            and not self._needs_recovery
            and not self._stopping
        )

    def submit(self, request: PendingCommit) -> PendingCommit:
        """Queue a request (see commit_batches) and return at once; its ``result()`` waits."""
        self._admit(request)
        if self._thread is None or self._stopping:
            raise WriterUnavailable(f"writer of {self.topic!r} is not running")
        self._requests.put(request)
        return request

    def close(self) -> None:
        if self._thread is not None and not self._stopping:
            self._stopping = True
            self._requests.put(None)
            self._thread.join()
        if self._producer is not None:
            self._close_producer()

    # --- the writer thread -------------------------------------------------------------

    def _run(self) -> None:
        while True:
            group = self._next_group()
            if group is None:
                break
            try:
                self._write(group)
            except BaseException as error:  # pragma: no cover - a bug must not hang callers
                logger.exception("ledger writer failed")
                for request in group:
                    if not request.done.is_set():
                        request.finish(None, WriterUnavailable(f"writer failed: {error!r}"))
        # Wake anyone who queued behind the close.
        while True:
            try:
                left = self._requests.get_nowait()
            except queue.Empty:
                break
            if left is not None:
                left.finish(None, WriterUnavailable(f"writer of {self.topic!r} closed"))

    def _next_group(self) -> list[PendingCommit] | None:
        """Block for one request, then take whatever else is queued, up to the size cap."""
        first = self._held_over or self._requests.get()
        self._held_over = None
        if first is None:
            return None
        group = [first]
        events = first.event_count
        has_offsets = first.offsets is not None
        while events < self.max_events_per_transaction:
            try:
                request = self._requests.get_nowait()
            except queue.Empty:
                break
            if request is None:
                self._requests.put(None)
                break
            if request.offsets is not None and has_offsets:
                # One offsets commit per transaction keeps each group's offsets unambiguous.
                self._held_over = request
                break
            has_offsets = has_offsets or request.offsets is not None
            group.append(request)
            events += request.event_count
        return group

    def _write(self, group: list[PendingCommit]) -> None:
        if self._fenced is not None:
            for request in group:
                request.finish(None, self._fenced)
            return
        if self._needs_recovery:
            try:
                self._recover()
            except WriterFenced as fenced:
                for request in group:
                    request.finish(None, fenced)
                return
            except Exception as error:
                for request in group:
                    request.finish(None, WriterUnavailable(f"cannot recover: {error!r}"))
                return

        # Each aggregate id spelled once per transaction (str() of a UUID is Python code).
        texts: dict[Any, str] = {}
        accepted = self._check_versions(group, texts)
        if not accepted:
            return

        records, ids_by_request = self._chained(accepted, texts)
        next_id = records[-1].notification_id + 1 if records else self._next_id
        prev_hash = records[-1].hash if records else self._last_hash
        if not records and not any(r.offsets is not None or r.side_records for r in accepted):
            for request, request_ids in zip(accepted, ids_by_request, strict=True):
                request.finish(request_ids, None)
            return

        try:
            offsets = self._transact(records, accepted)
        except WriterFenced as fenced:
            for request in accepted:
                request.finish(None, fenced)
            return
        except Exception as error:
            for request in accepted:
                request.finish(None, WriterUnavailable(f"transaction not committed: {error!r}"))
            return

        # Committed: the ids and the chain head are spent whatever happens next, so they
        # advance first. Indexing, caching and notifying only help later reads; if one
        # fails, the index is rebuilt from the topic before the next transaction.
        self._next_id = next_id
        self._last_hash = prev_hash
        self.transactions_committed += 1
        try:
            if records:
                self.index.apply(list(zip(offsets, records, strict=True)), offsets[-1] + 1)
            self.reader.cache.put_many(zip(offsets, records, strict=True))
        except Exception:
            logger.exception("indexing a committed transaction of %r failed", self.topic)
            self._needs_recovery = True
        at = 0
        for request, request_ids in zip(accepted, ids_by_request, strict=True):
            count = sum(len(batch_ids) for batch_ids in request_ids)
            request.committed = list(
                zip(offsets[at : at + count], records[at : at + count], strict=True)
            )
            at += count
            request.finish(request_ids, None)
        if self._on_commit is not None:
            try:
                self._on_commit()
            except Exception:
                logger.exception("a commit listener of %r failed", self.topic)

    def _chained(
        self, accepted: list[PendingCommit], texts: dict[Any, str]
    ) -> tuple[list[LedgerRecord], list[list[list[int]]]]:
        """The requests' records, numbered and chained in commit order after the last
        committed one, and each request's ids by batch. Nothing changes in self until the
        commit succeeds, so an aborted transaction's ids are simply used again."""
        next_id = self._next_id
        prev_hash = self._last_hash
        records: list[LedgerRecord] = []
        ids_by_request: list[list[list[int]]] = []
        for request in accepted:
            request_ids: list[list[int]] = []
            for batch in request.batches:
                batch_ids = []
                for stored_event in batch:
                    record = LedgerRecord.chained(
                        prev_hash, next_id, stored_event, texts[stored_event.originator_id]
                    )
                    records.append(record)
                    batch_ids.append(next_id)
                    prev_hash = record.hash
                    next_id += 1
                request_ids.append(batch_ids)
            ids_by_request.append(request_ids)
        return records, ids_by_request

    def _check_versions(
        self, group: list[PendingCommit], texts: dict[Any, str]
    ) -> list[PendingCommit]:
        """Fail the requests whose versions conflict; return the others, in order. Fills
        ``texts`` with each originator id's text."""
        for request in group:
            for batch in request.batches:
                for stored_event in batch:
                    if stored_event.originator_id not in texts:
                        texts[stored_event.originator_id] = str(stored_event.originator_id)
        last_versions = self.index.last_versions(set(texts.values()))
        accepted = []
        for request in group:
            request_versions: dict[str, int] = {}
            try:
                for batch in request.batches:
                    for stored_event in batch:
                        originator_id = texts[stored_event.originator_id]
                        last = request_versions.get(originator_id, last_versions.get(originator_id))
                        self._check_version(originator_id, last, stored_event.originator_version)
                        request_versions[originator_id] = stored_event.originator_version
            except IntegrityError as conflict:
                request.finish(None, conflict)
                continue
            # Later requests in this transaction must follow this one's versions.
            last_versions.update(request_versions)
            accepted.append(request)
        return accepted

    def _check_version(self, originator_id: str, last: int | None, version: int) -> None:
        if last is None:
            return
        if self.contiguous_versions:
            if version != last + 1:
                raise IntegrityError(
                    f"aggregate {originator_id} is at version {last}; "
                    f"version {version} does not follow it"
                )
        elif version <= last:
            raise IntegrityError(
                f"aggregate {originator_id} is at version {last}; version {version} is not later"
            )

    def _transact(self, records: list[LedgerRecord], requests: list[PendingCommit]) -> list[int]:
        """Produce the records (and the requests' side records and offsets) in one
        transaction; return the ledger records' offsets."""
        from kafka.errors import InvalidProducerEpochError, KafkaTimeoutError, ProducerFencedError

        producer = self._producer
        signature: list[tuple[str, bytes]] = []
        if records and self._signer is not None:
            signature = self._signer.transaction_headers(
                records[0].notification_id, records[-1].hash
            )
        try:
            producer.begin_transaction()
            futures = queue_ledger_records(producer, self.topic, records, signature)
            side_futures = [
                producer.send(
                    side.topic, key=side.key, value=side.value, headers=list(side.headers)
                )
                for request in requests
                for side in request.side_records
            ]
            producer.flush(timeout=self.timeout_s)
            offsets = [int(future.get(timeout=self.timeout_s).offset) for future in futures]
            for future in side_futures:
                future.get(timeout=self.timeout_s)
            for request in requests:
                if request.offsets is None:
                    continue
                # kafka-python's send_offsets_to_transaction() waits forever: wait ourselves.
                manager = producer._transaction_manager
                self._await(
                    manager.send_offsets_to_transaction(request.offsets, request.group_metadata),
                    "send_offsets_to_transaction",
                )
            # Likewise commit_transaction(): a broker that dies mid-commit must not hang us.
            self._await(producer._transaction_manager.begin_commit(), "commit")
            return offsets
        except (ProducerFencedError, InvalidProducerEpochError) as error:
            self._become_fenced(error)
            raise self._fenced from error  # type: ignore[misc]
        except KafkaTimeoutError:
            # The commit may still land: only a fresh init_transactions() settles it.
            self._needs_recovery = True
            raise
        except Exception as error:
            if self._fatal(error):
                raise self._fenced from error  # type: ignore[misc]
            self._abort()
            raise

    def _abort(self) -> None:
        from kafka.errors import InvalidProducerEpochError, ProducerFencedError

        try:
            self._await(self._producer._transaction_manager.begin_abort(), "abort")
        except (ProducerFencedError, InvalidProducerEpochError) as error:
            self._become_fenced(error)
        except Exception:
            logger.warning("abort of %r failed; recovering before the next write", self.topic)
            self._needs_recovery = True

    def _fatal(self, error: BaseException) -> bool:
        """Whether the error means this writer was fenced, however kafka-python wraps it."""
        from kafka.errors import InvalidProducerEpochError, ProducerFencedError

        cause: BaseException | None = error
        while cause is not None:
            if isinstance(cause, (ProducerFencedError, InvalidProducerEpochError)):
                self._become_fenced(cause)
                return True
            cause = cause.__cause__ or cause.__context__
        manager = getattr(self._producer, "_transaction_manager", None)
        last_error = getattr(manager, "_last_error", None)
        if isinstance(last_error, (ProducerFencedError, InvalidProducerEpochError)):
            self._become_fenced(last_error)
            return True
        return False

    def _become_fenced(self, error: BaseException) -> None:
        if self._fenced is None:
            self._fenced = WriterFenced(
                f"writer {self.transactional_id!r} of {self.topic!r} was fenced by a newer "
                f"writer with the same transactional id ({error!r}); it will not write again"
            )
            logger.error("%s", self._fenced)

    def _await(self, result: Any, what: str) -> None:
        from kafka.errors import KafkaTimeoutError

        self._producer._sender.wakeup()
        if not result.wait(timeout_ms=int(self.timeout_s * 1000)):
            raise KafkaTimeoutError(f"{what} of {self.topic!r} took over {self.timeout_s}s")

    def _recover(self) -> None:
        """(Re)start the producer: fence older writers, then index what is committed."""
        from kafka.errors import InvalidProducerEpochError, ProducerFencedError

        if self._producer is not None:
            self._close_producer()
        producer = self.connection.producer(
            transactional_id=self.transactional_id,
            # Guarantee 4: an acknowledged event is on every in-sync replica.
            acks="all",
            enable_idempotence=True,
            linger_ms=0,
            # A group commit sends thousands of records at once: fewer, fuller requests.
            batch_size=512 * 1024,
            # Side records carry dead letters of up to the broker's 16 MiB message limit.
            max_request_size=MAX_REQUEST_BYTES,
            # The broker answers CONCURRENT_TRANSACTIONS while the previous commit settles;
            # the default 100 ms backoff would then cap us near ten transactions a second.
            retry_backoff_ms=5,
            max_block_ms=int(self.timeout_s * 1000),
            client_id=f"evledger-writer-{self.transactional_id}",
            # Its sensors (rates per batch and request) are read by nobody here.
            metrics_enabled=False,
        )
        try:
            # Fences any older producer with this id and settles its open transaction, so
            # the catch-up below sees everything that will ever be committed before us.
            producer.init_transactions()
        except (ProducerFencedError, InvalidProducerEpochError) as error:
            producer.close(timeout=0)
            self._become_fenced(error)
            raise self._fenced from error  # type: ignore[misc]
        except Exception:
            producer.close(timeout=0)
            raise
        self._producer = producer
        with self._catch_up_lock:
            catch_up(self.index, self.reader, settled=True)
            state = self.index.state()
        self._next_id = state.last_notification_id + 1
        self._last_hash = state.last_hash
        self._needs_recovery = False

    def _close_producer(self) -> None:
        with contextlib.suppress(Exception):
            self._producer.close(timeout=min(self.timeout_s, 5.0))
        self._producer = None
