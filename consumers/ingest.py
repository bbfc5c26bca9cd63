"""The ingest consumer: upstream messages from `<prefix>.ingest` into the ledger, effectively once.

Per batch, one Kafka transaction of the ledger writer holds the batch's ledger events, its
dead letters and the consumer group's next offsets (Kafka's consume-transform-produce
pattern): all of them become visible together or none does. A crash anywhere makes the
batch be read again, and the domain's event_id idempotency makes anything re-read that
did reach the ledger a duplicate, so nothing is applied or dead-lettered twice.

A sharded ledger (consumers/routing.py) runs one task per ingest partition: partition p's
records go to ledger shard p's application, and p's offsets commit in shard p's writer
transaction. Several processes share the partitions as one consumer group; a shard that
moves is opened by its new owner, whose writer fences the old owner's.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any, Protocol

from eventsourcing.persistence import PersistenceError

from consumers.batch import BatchOutcome, CommandHandler, apply_batch
from consumers.counters import IngestCounters
from consumers.dead_letter import DeadLetter
from consumers.in_doubt import Attempt, InDoubt
from consumers.ledger_backoff import LedgerBackoff, retriable
from consumers.membership import GroupMembership, IngestReplaced
from consumers.sources import StopSignal
from consumers.triage import SourceRecord
from projections.gc_pacing import INGEST_YOUNG_THRESHOLD, fewer_collections
from store.frozen import made
from store.kafka_clients import KafkaConnection
from store.recorders import KafkaApplicationRecorder, TransactionExtras, UnsavedCommitFailed
from store.writer import PendingCommit, SideRecord, WriterFenced, WriterUnavailable

# What one fetch of the ingest topic brings per partition: a few batches of messages. A
# message larger than this (up to consumers.producer.MAX_MESSAGE_BYTES) still comes, alone
# in its fetch; a fetch sized for the largest message held that much of a backlog in
# memory, twice with the next fetch in flight, so ingest's memory grew with the backlog.
FETCH_PARTITION_BYTES = 1024 * 1024

log = logging.getLogger(__name__)

# How long ingest waits for its group's committed offset after an in-doubt commit.
_OFFSET_FETCH_MS = 30_000


@dataclass(frozen=True)
class IngestConfig:
    connection: KafkaConnection
    ingest_topic: str
    dead_letter_topic: str
    group_id: str
    instance_id: str
    batch_size: int = 500
    poll_timeout_ms: int = 500
    # Ledger shards, one per ingest partition; with more than one, members join the group
    # dynamically (several processes share the partitions) instead of statically.
    shards: int = 1


@dataclass(frozen=True)
class ShardTask:
    """What applies one ingest partition: its shard's application and ledger recorder."""

    shard: int
    handler: CommandHandler
    writer: KafkaApplicationRecorder


class ShardTasks(Protocol):
    """Opens and closes the shard tasks of this process as partitions come and go."""

    def open(self, shard: int) -> ShardTask:
        """Shard ``shard``'s task, its writer started (so any previous owner is fenced)."""

    def close(self, shard: int) -> None:
        """Stop shard ``shard``'s task: another process owns the shard now."""


# How long a signalled command may take to finish its batch before it exits without
# committing it (nothing is lost: an uncommitted batch is read again on restart).
STOP_GRACE_S = 10.0


def abandon_batch_and_exit(grace_s: float) -> None:
    log.error("did not finish the batch within %.0f s of the signal; exiting without it", grace_s)
    logging.shutdown()
    os._exit(1)


class StopFlag:
    """Set by SIGTERM/SIGINT: the loop finishes its batch, commits, and returns; a batch
    that takes longer than ``grace_s`` is abandoned uncommitted and the process exits."""

    grace_s: float = STOP_GRACE_S

    def __init__(self) -> None:
        self.event = threading.Event()

    def set(self, *_: Any) -> None:
        self.event.set()

    def __bool__(self) -> bool:
        return self.event.is_set()

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds, waking at once when stopped; True if stopped."""
        return self.event.wait(timeout)

    @contextmanager
    def on_signals(self) -> Iterator[StopFlag]:
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

        def handler(signum: int, frame: FrameType | None) -> None:
            log.info("signal %s: finishing the current batch", signum)
            if not self.event.is_set():
                watchdog = threading.Timer(self.grace_s, abandon_batch_and_exit, [self.grace_s])
                watchdog.daemon = True
                watchdog.start()
            self.set()

        for sig in previous:
            signal.signal(sig, handler)
        try:
            yield self
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)


class KafkaIngest:
    """A consumer-group member that turns ingest records into ledger events.

    Each shard task's writer is started before its partition is read: the consumer's offset
    fetch waits on any transaction a crashed predecessor left open, and only the new
    writer's fencing ends that transaction. Each partition's batch has its offsets and dead
    letters attached to its shard's writer, to commit with the batch's events.
    """

    def __init__(self, tasks: ShardTasks, config: IngestConfig) -> None:
        self.config = config
        self.counters = IngestCounters()
        # Records whose transaction failed unanswered (see apply_batch), per open shard:
        # each shard is its own ledger (it records each tariff too), so one shard's commit
        # says nothing of another's. A shard that moves away takes its records with it.
        self._in_doubt: dict[int, InDoubt] = {}
        # The batch whose commit is sent and not yet answered (see _Deferred).
        self._deferred: _Deferred | None = None
        self._tasks = tasks
        self._open: dict[int, ShardTask] = {}
        sharded = config.shards > 1
        if not sharded:
            # One shard: its writer starts before the consumer joins the group.
            self._task(0)
        self.consumer = config.connection.consumer(
            group_id=config.group_id,
            # Static membership with one shard: one ingest instance per group by design, so
            # a restarted instance takes over at once instead of waiting out the dead
            # member's session, and a second live instance is fenced, like the writer.
            # Sharded, the members are many and dynamic; the writers fence moved shards.
            group_instance_id=None if sharded else config.instance_id,
            session_timeout_ms=15_000,
            client_id=f"{config.group_id}-consumer",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=config.batch_size,
            max_partition_fetch_bytes=FETCH_PARTITION_BYTES,
            fetch_max_bytes=4 * FETCH_PARTITION_BYTES,
            # The client's own sensors (rates per fetch and record) are read by nobody here.
            metrics_enabled=False,
            # A group led by a member whose metadata lacked the ingest topic at that moment
            # (just created, a busy broker) gets no partitions: kafka-python warns "No
            # partition metadata" and rejoins only when its metadata is next refreshed,
            # after 5 minutes by default, all that time `--until-idle` polling nothing.
            metadata_max_age_ms=10_000,
        )
        if sharded:
            self.consumer.subscribe([config.ingest_topic], listener=_shard_rebalance(self))
        else:
            self.consumer.subscribe([config.ingest_topic])
        self.membership = GroupMembership(self.consumer, config.connection)

    def _task(self, shard: int) -> ShardTask:
        if shard not in self._open:
            self._open[shard] = self._tasks.open(shard)
            self._in_doubt[shard] = InDoubt()
        return self._open[shard]

    def reassigned(self, shards: set[int]) -> None:
        """After a rebalance: stop the shards that moved away, start the ones that came
        (their writers fence the previous owners before their offsets are fetched)."""
        for shard in sorted(set(self._open) - shards):
            log.info("ingest shard %d moved to another process", shard)
            self._drop(shard)
        for shard in sorted(shards):
            self._task(shard)

    def _drop(self, shard: int) -> None:
        if self._open.pop(shard, None) is not None:
            self._tasks.close(shard)
        self._in_doubt.pop(shard, None)

    def run(
        self,
        stop: StopSignal,
        until_idle: bool = False,
        on_batch: Callable[[BatchOutcome], None] = lambda outcome: None,
    ) -> IngestCounters:
        """Consume until stopped (or, with until_idle, until caught up with the topic).

        With fewer garbage collections (projections/gc_pacing.py): a batch's messages,
        commands, events and ledger records are freed by reference counting, and the
        cyclic collector's default pace (every 700 allocations, walking the kept
        aggregates and records each time it reaches the older generations) cost about a
        quarter of ingest's CPU.
        """
        try:
            with fewer_collections(INGEST_YOUNG_THRESHOLD):
                return self._run(stop, until_idle, on_batch)
        except (IngestReplaced, WriterFenced):
            # A replaced member's client goes on reporting the fencing from its own threads
            # while it closes (heartbeat errors, a socket closed under a read, with
            # tracebacks): the command's one line says it all.
            logging.getLogger("kafka").setLevel(logging.CRITICAL)
            raise

    def _run(
        self, stop: StopSignal, until_idle: bool, on_batch: Callable[[BatchOutcome], None]
    ) -> IngestCounters:
        backoff = LedgerBackoff()
        while not stop:
            records = self._poll()
            if not records:
                if not self._confirmed(stop, backoff):
                    continue
                # Nothing to commit, so a writer cannot learn it was fenced: ask the group
                # (with one shard; sharded members are dynamic and moved writers are fenced).
                self.membership.check()
                if until_idle and self._caught_up():
                    break
                continue
            parts = _by_partition(records)
            for done in range(len(parts)):
                if not self._apply(parts, done, stop, backoff, on_batch):
                    break
            else:
                # Caught up after a batch: stop now rather than after an empty poll's
                # wait (poll_timeout_ms, an eighth of a 10,000-message run's wall time).
                if (
                    until_idle
                    and self._fetched_to_end()
                    and self._caught_up()
                    and self._confirmed(stop, backoff)
                ):
                    break
        failed = self._confirm()
        if failed is not None:
            self._deferred_failed(failed)
            log.warning("the last batch's commit failed while stopping: %s", failed)
        return self.counters

    def _apply(
        self,
        parts: list[list[SourceRecord]],
        done: int,
        stop: StopSignal,
        backoff: LedgerBackoff,
        on_batch: Callable[[BatchOutcome], None],
    ) -> bool:
        """Apply partition ``parts[done]``'s batch; False if the later ones are to be read
        again (this one failed)."""
        part = parts[done]
        task = self._task(part[0].partition)
        in_doubt = self._in_doubt[part[0].partition]
        # One shard, nothing in doubt: the batch's commit is deferred (see _Deferred).
        defer = self.config.shards == 1 and in_doubt.holds_nothing
        try:
            self._landed_below(task, part[0], in_doubt)
            outcome = apply_batch(
                task.handler,
                part,
                _ShardBatch(self, task, in_doubt.landed_below, defer),
                self.config.shards,
                in_doubt=in_doubt,
            )
        except WriterFenced as fenced:
            if self.config.shards == 1:
                raise
            # The shard moved to another process, whose writer fenced ours before this
            # commit: nothing of it landed. Drop the shard; the records of this and later
            # partitions are read again by whoever owns them after the rebalance that the
            # next poll takes part in.
            log.warning("ingest shard %d taken over: %s", task.shard, fenced)
            self._drop(task.shard)
            self._rewind([record for later in parts[done:] for record in later])
            return False
        except PersistenceError as error:
            left = [record for later in parts[done:] for record in later]
            failed = error if isinstance(error, UnsavedCommitFailed) else self._confirm()
            if failed is not None:
                # The deferred batch before this one failed; this one was not sent.
                left = self._deferred_failed(failed) + left
            else:
                if not retriable(error):
                    raise
                # The ledger is down, not the messages wrong: none of this partition's
                # batch (nor of those after it) was judged or committed. Read them again
                # once the ledger may be back, going on polling meanwhile so that the group
                # keeps this member. This partition's commit may have landed unanswered;
                # later ones were never sent.
                in_doubt.failed(error)
                self._rewind(left)
            self._back_off(stop, backoff, len(left), failed or error)
            return False
        # Any earlier deferred batch committed before this one was sent.
        earlier = self._confirm()
        if earlier is not None:  # the recorder's deferred save forbids it: a defect if seen
            raise RuntimeError(
                f"a batch was sent after a failed deferred one ({earlier!r}): its outcome "
                "and this one's are in doubt; not committing the consumer's offsets"
            )
        if backoff.failures:
            log.warning("ledger available again after %d failed tries", backoff.failures)
        backoff.reset()
        commit = task.writer.unsaved
        deferred = _Deferred(task, in_doubt, part, outcome, in_doubt.current, on_batch, commit)
        if commit is not None:
            self._deferred = deferred
        else:
            deferred.committed(self.counters)
        return True

    def _confirm(self) -> UnsavedCommitFailed | None:
        """Wait for the deferred batch's commit, if any, and count it; or say why it failed
        (it stays for ``_deferred_failed``)."""
        deferred = self._deferred
        if deferred is None:
            return None
        # A later save that waited for it took its answer (and raised, had it failed).
        if deferred.task.writer.unsaved is deferred.commit:
            try:
                deferred.task.writer.wait_unsaved()
            except UnsavedCommitFailed as failed:
                return failed
        self._deferred = None
        deferred.committed(self.counters)
        return None

    def _confirmed(self, stop: StopSignal, backoff: LedgerBackoff) -> bool:
        """Whether the deferred batch, if any, committed (``_confirm``); if it failed, it is
        read again after a backoff."""
        failed = self._confirm()
        if failed is None:
            return True
        left = self._deferred_failed(failed)
        self._back_off(stop, backoff, len(left), failed)
        return False

    def _deferred_failed(self, failed: UnsavedCommitFailed) -> list[SourceRecord]:
        """The deferred batch's commit failed: what was decided on it is dropped and its
        records are read again (returned); it may have landed unanswered (in doubt)."""
        deferred, self._deferred = self._deferred, None
        assert deferred is not None
        cause = failed.__cause__
        if isinstance(cause, WriterFenced):
            raise cause
        deferred.task.handler.forget_kept()
        deferred.in_doubt.failed(
            cause if isinstance(cause, Exception) else failed, deferred.attempt
        )
        self._rewind(deferred.records)
        return deferred.records

    def _back_off(
        self, stop: StopSignal, backoff: LedgerBackoff, left: int, error: Exception
    ) -> None:
        delay = backoff.next()
        log.warning(
            "ledger unavailable (brokers down, or fewer in-sync replicas than "
            "min.insync.replicas); %d messages not judged, read again in %.1fs: %s",
            left,
            delay,
            error,
        )
        stop.wait(delay)

    def close(self) -> None:
        self.membership.close()
        self.consumer.close()

    def _poll(self) -> list[SourceRecord]:
        from kafka.errors import KafkaError

        try:
            polled = self.consumer.poll(
                timeout_ms=self.config.poll_timeout_ms, max_records=self.config.batch_size
            )
        except KafkaError as error:
            # kafka-python lets a failed metadata refresh (a broker just killed) out of
            # poll(); the client reconnects to the others on the next one.
            if not getattr(error, "retriable", False):
                raise
            log.warning("cannot reach the ingest topic (%r); polling again", error)
            time.sleep(self.config.poll_timeout_ms / 1000)
            return []
        # Made without SourceRecord's generated __init__ (store/frozen.py): one per message.
        return [
            made(
                SourceRecord,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                value=record.value,
                timestamp_ms=record.timestamp,
            )
            for partition_records in polled.values()
            for record in partition_records
        ]

    def _landed_below(self, task: ShardTask, first: SourceRecord, in_doubt: InDoubt) -> None:
        """Once an attempt failed unanswered: the offset below which ``first``'s partition
        was committed by it if it landed (its dead letters are out already), kept in
        ``in_doubt`` until a commit reaches it. The attempt is settled first, so the offset
        fetch (read_committed: stable offsets only) sees whether it landed."""
        if not in_doubt.may_have_landed:
            return
        from kafka import TopicPartition
        from kafka.errors import KafkaError

        in_doubt.attempt(())  # nothing of this attempt is judged or sent yet
        task.writer.settle()
        try:
            committed = self.consumer.committed(
                TopicPartition(first.topic, first.partition), timeout_ms=_OFFSET_FETCH_MS
            )
        except KafkaError as error:
            raise WriterUnavailable(f"cannot read the ingest group's offsets: {error!r}") from error
        in_doubt.landed(committed or 0)

    def _rewind(self, records: list[SourceRecord]) -> None:
        """Seek back to the batch's first record of each partition this member still has
        (a rebalance already reset the others to their committed offsets)."""
        from kafka import TopicPartition

        firsts: dict[Any, int] = {}
        for record in records:
            partition = TopicPartition(record.topic, record.partition)
            firsts[partition] = min(firsts.get(partition, record.offset), record.offset)
        assigned = self.consumer.assignment()
        for partition, offset in firsts.items():
            if partition in assigned:
                self.consumer.seek(partition, offset)

    def _fetched_to_end(self) -> bool:
        """Whether every assigned partition's position has reached the end its last fetch
        reported (no broker round trip; `_caught_up` asks the broker)."""
        assigned = self.consumer.assignment()
        if not assigned:
            return False
        for partition in assigned:
            end = self.consumer.highwater(partition)
            if end is None or self.consumer.position(partition) < end:
                return False
        return True

    def _caught_up(self) -> bool:
        from kafka.errors import KafkaError

        assigned = self.consumer.assignment()
        if not assigned:
            return False
        try:
            ends = self.consumer.end_offsets(list(assigned))
        except KafkaError as error:
            log.warning("cannot read the ingest topic's end (%r); polling on", error)
            return False
        return all(self.consumer.position(tp) >= ends[tp] for tp in assigned)


@dataclass(frozen=True)
class _Deferred:
    """A batch whose commit was sent and not yet answered (one shard, nothing in doubt).

    Its save returned once sent, and ingest reads and decides the next batch meanwhile, on
    its unsaved state (the application keeps its aggregates, the recorder its versions):
    the writer, in a process of its own where there is a second core, commits one batch
    while the domain decides the next. The next batch's save waits for its answer (as does
    any read of its events), so nothing decided on it is sent unless it committed. It is
    counted once committed; if it failed, the application drops what it kept and both
    batches are read again from its first record, as after any failed commit.
    """

    task: ShardTask
    in_doubt: InDoubt
    records: list[SourceRecord]
    outcome: BatchOutcome
    attempt: Attempt
    on_batch: Callable[[BatchOutcome], None]
    commit: PendingCommit | None

    def committed(self, counters: IngestCounters) -> None:
        self.in_doubt.settled(self.attempt)
        self.in_doubt.committed_to(self.records[-1].offset + 1)
        counters.add(self.outcome.counters)
        counters.check()
        log.info("ingest batch of %d: %s", len(self.records), counters.summary())
        self.on_batch(self.outcome)


def _by_partition(records: list[SourceRecord]) -> list[list[SourceRecord]]:
    """The polled records split by partition (each partition feeds its own shard)."""
    parts: dict[int, list[SourceRecord]] = {}
    for record in records:
        parts.setdefault(record.partition, []).append(record)
    return [parts[partition] for partition in sorted(parts)]


@dataclass(frozen=True)
class _ShardBatch:
    """BatchTransaction: a partition's offsets and dead letters ride with its events, in its
    shard's writer transaction."""

    ingest: KafkaIngest
    task: ShardTask
    # The batch's records below this offset were committed by an earlier attempt whose
    # answer was lost (consumers/in_doubt.py): their dead letters are out already.
    published_below: int = 0
    # The save returns once its transaction is sent (store/recorders.py, attach).
    defer: bool = False

    def attach(self, records: Sequence[SourceRecord], dead_letters: Sequence[DeadLetter]) -> None:
        from kafka import TopicPartition
        from kafka.structs import OffsetAndMetadata

        next_offsets: dict[Any, Any] = {}
        for record in records:
            partition = TopicPartition(record.topic, record.partition)
            # Never below what a landed attempt committed: those records are recorded.
            next_offset = max(record.offset + 1, self.published_below)
            next_offsets[partition] = OffsetAndMetadata(next_offset, "", -1)
        self.task.writer.attach(
            TransactionExtras(
                side_records=tuple(
                    SideRecord(
                        self.ingest.config.dead_letter_topic,
                        letter.key,
                        letter.value,
                        letter.headers(),
                    )
                    for letter in dead_letters
                    if letter.source_offset >= self.published_below
                ),
                consumer_offsets=next_offsets,
                group_metadata=self.ingest.consumer.group_metadata(),
            ),
            defer=self.defer,
        )

    def commit_attached(self) -> None:
        self.task.writer.commit_attached()


def _shard_rebalance(ingest: KafkaIngest) -> Any:
    """A listener that moves shard tasks with their partitions (kafka-python calls it inside
    poll, so between batches)."""
    from kafka import ConsumerRebalanceListener

    class ShardRebalance(ConsumerRebalanceListener):  # type: ignore[misc]
        def on_partitions_revoked(self, revoked: Any) -> None:
            # Kept open until the assignment is known: a shard assigned back keeps its writer.
            pass

        def on_partitions_assigned(self, assigned: Any) -> None:
            ingest.reassigned({partition.partition for partition in assigned})

    return ShardRebalance()
