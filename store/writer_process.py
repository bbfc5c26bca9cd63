"""The ledger's writer in a process of its own, so that its work (version checks, chaining,
signing, indexing, kafka-python's sends: about a third of ingest's CPU) runs on another core
than the domain's, outside the parent's GIL.

``ProcessLedgerWriter`` offers what ``store/writer.py:LedgerWriter`` offers (``start``,
``commit_batches``, ``submit``, ``close``, ``fenced``, ``healthy``) and runs one inside a
spawned child (a clean interpreter: nothing the parent has open is inherited but its end of
one pipe). A request crosses the pipe as one pickle of plain tuples (a stored event is its
originator id's text, version, topic and state: pickling ``StoredEvent`` objects costs four
times as much); the child answers with the ids and, per record, its offset and hash, from
which the parent fills its own record cache (ingest reads the aggregates it just wrote from
there, not from Kafka) and tells its commit listeners. The aggregate index is the one file
both processes open (``store/index.py`` is safe for that): the child indexes each commit
before it answers, so the parent's next read sees it. An error comes back pickled and is
raised in the parent as the same type (WriterFenced, WriterUnavailable, IntegrityError).

The child ends when its pipe closes: the parent closed the writer (``close``, also run at
the interpreter's exit for a writer never closed), or died. The parent's
receiving thread notices a child that died (EOF): every request waiting fails with
WriterUnavailable, and the next request spawns a new child, whose ``init_transactions``
settles whatever the dead one left open (as the thread writer's recovery does).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import itertools
import logging
import multiprocessing
import os
import pickle
import signal
import socket
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, NamedTuple, cast

from eventsourcing.persistence import StoredEvent

from store.id_text import id_text
from store.index import AggregateIndex
from store.kafka_clients import KafkaConnection
from store.reader import LedgerReader, RecordCache, Unbuilt
from store.signing import LedgerSigner
from store.writer import (
    LedgerWriter,
    PendingCommit,
    SideRecord,
    WriterBase,
    WriterFenced,
    WriterUnavailable,
)

logger = logging.getLogger(__name__)

# Allocations between young collections in the child (see run_writer).
YOUNG_THRESHOLD = 100_000

# How long close() waits for the child to finish what it was given before killing it.
CLOSE_TIMEOUT_S = 10.0
# With nothing in flight no transaction of ours is open in the child, and a writer killed
# between transactions loses nothing (the next one fences it and reads the topic again), so
# its own shutdown (closing a producer a newer writer may have fenced: seconds) is not
# waited for long; an ingest taken over exits at once.
IDLE_CLOSE_S = 1.0


@dataclass(frozen=True)
class WriterSpec:
    """What the child needs to open the ledger's writer: pickled to it at spawn."""

    connection: KafkaConnection
    topic: str
    transactional_id: str
    index_path: Path
    index_synced: bool
    index_cache_kib: int
    contiguous_versions: bool
    timeout_s: float
    max_events_per_transaction: int
    signer: LedgerSigner | None

    def open_index(self) -> AggregateIndex:
        """The index file the parent opened, synced as the parent syncs it."""
        return AggregateIndex(self.index_path, self.index_cache_kib, synced=self.index_synced)


class _Event(NamedTuple):
    """A stored event as the child's writer reads it (the attributes of a StoredEvent)."""

    originator_id: str
    originator_version: int
    topic: str
    state: bytes


# One request: its id, batches of (originator id text, version, topic, state), offsets,
# group metadata, side records. One answer: the request's id, its error or None, its ids by
# batch, its records' offsets, the first one's prev_hash and each one's hash, and the
# child's writer's health after it.
_Request = tuple[int, list[list[tuple[str, int, str, bytes]]], Any, Any, Sequence[SideRecord]]
_Answer = tuple[int, BaseException | None, Any, list[int], list[bytes], bool, bool, int]
_STARTED = 0

# The child's entry point: it runs the writer, answering on the connection (run_writer; a
# test passes its own to the writer's constructor, to lose an answer, say).
Entry = Callable[["WriterSpec", Connection], None]


def run_writer(spec: WriterSpec, connection: Connection) -> None:
    """The child: start the writer (answering request 0 with how that went), then hand each
    request to it and send each answer back, until the pipe closes."""
    # Ctrl-C, or a SIGTERM to the process group, is the parent's to handle: it finishes its
    # batch and closes the writer, which ends this process (as the parent's death does).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    index = spec.open_index()
    # No record cache: the parent reads, and keeps the records this writer commits.
    reader = LedgerReader(spec.connection, spec.topic, RecordCache(0), timeout_s=spec.timeout_s)
    writer = LedgerWriter(
        spec.connection,
        spec.topic,
        spec.transactional_id,
        index,
        reader,
        contiguous_versions=spec.contiguous_versions,
        timeout_s=spec.timeout_s,
        max_events_per_transaction=spec.max_events_per_transaction,
        signer=spec.signer,
    )
    sending = threading.Lock()

    def send(answer: _Answer) -> None:
        blob = _pickled_answer(answer)
        with sending, contextlib.suppress(OSError):  # the parent is gone: EOF ends us
            connection.send_bytes(blob)

    def answer(request_id: int, commit: PendingCommit) -> None:
        """Called by the writer thread once the request is done."""
        send(
            (
                request_id,
                commit.error,
                commit.ids,
                [offset for offset, _ in commit.committed],
                # The first record's prev_hash, then each record's hash.
                [record.prev_hash for _, record in commit.committed[:1]]
                + [record.hash for _, record in commit.committed],
                writer.fenced,
                writer.healthy,
                writer.transactions_committed,
            )
        )

    try:
        try:
            writer.start()
        except Exception as error:
            send((_STARTED, error, None, [], [], writer.fenced, False, 0))
            return
        send((_STARTED, None, None, [], [], False, writer.healthy, 0))
        # A transaction's objects (records, futures, tuples) die by reference counting; at
        # the collector's default pace (every 700 allocations, walking the start-up's
        # modules and classes in the older generations) a 10,000-message ingest ran 439
        # collections here, 0.58 s of this process's 1.97 s of CPU (start-up included);
        # 3 after. As ingest's own process does (projections/gc_pacing.py): freeze what
        # start-up built, collect young objects seldom.
        gc.freeze()
        gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        while True:
            try:
                blob = connection.recv_bytes()
            except (EOFError, OSError):
                return
            request_id, batches, offsets, group_metadata, side_records = cast(
                _Request, pickle.loads(blob)
            )
            commit = PendingCommit(
                [cast(list[StoredEvent], list(map(_Event._make, batch))) for batch in batches],
                offsets,
                group_metadata,
                side_records,
                on_done=partial(answer, request_id),
            )
            try:
                writer.submit(commit)
            except Exception as error:
                commit.finish(None, error)
    finally:
        writer.close()  # finishes what was queued before the close
        reader.close()
        index.close()


def _pickled_answer(answer: _Answer) -> bytes:
    try:
        return pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        error = answer[1]
        stand_in = WriterUnavailable(f"{type(error).__name__}: {error}")
        return pickle.dumps((answer[0], stand_in, None, [], [], *answer[5:]))


class _Sent(NamedTuple):
    """A request in flight: what the caller waits on, and what its records will hold."""

    commit: PendingCommit
    events: list[list[tuple[str, int, str, bytes]]]


class ProcessLedgerWriter(WriterBase):
    """A LedgerWriter in a child process (see the module docstring), for one ledger topic.

    ``cache`` is the parent's record cache, filled with what the child commits;
    ``on_commit`` is called after each committed request. ``entry`` is the child's entry
    point, pickled to it by reference (so importable by the spawned child): ``run_writer``
    unless a test needs a child that misbehaves.
    """

    def __init__(
        self,
        spec: WriterSpec,
        cache: RecordCache,
        on_commit: Callable[[], None] | None = None,
        entry: Entry = run_writer,
    ) -> None:
        self.spec = spec
        self.topic = spec.topic
        self._cache = cache
        self._on_commit = on_commit
        self._entry = entry
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None
        self._receiver: threading.Thread | None = None
        self._sending = threading.Lock()
        self._in_flight: dict[int, _Sent] = {}
        self._in_flight_lock = threading.Lock()
        self._ids = itertools.count(_STARTED + 1)
        self._fenced: WriterFenced | None = None
        self._child_healthy = False
        self._gone: str | None = "not started"
        self._stopping = False
        self._restart_lock = threading.Lock()
        self._at_exit: Callable[[], None] | None = None
        self.transactions_committed = 0

    @property
    def pid(self) -> int | None:
        """The child's process id while one runs."""
        return None if self._process is None else self._process.pid

    @property
    def healthy(self) -> bool:
        """Whether the index is current without reading the topic (as LedgerWriter's): the
        child runs, its writer is the only one and its last outcome is known."""
        return (
            self._gone is None
            and self._fenced is None
            and self._child_healthy
            and not self._stopping
        )

    def start(self) -> None:
        """Spawn the child, which fences any older writer and indexes what it committed;
        raises what its start raised (WriterFenced, say)."""
        context = multiprocessing.get_context("spawn")
        parent_end, child_end = context.Pipe()
        process = context.Process(
            target=self._entry,
            args=(self.spec, child_end),
            name=f"evledger-ledger-writer-{self.topic}",
            daemon=True,  # also ended by multiprocessing when this process exits
        )
        process.start()
        child_end.close()  # the child's: its pipe closes when this process's end does
        try:
            started = cast(_Answer, pickle.loads(parent_end.recv_bytes()))
        except (EOFError, OSError):
            process.join(CLOSE_TIMEOUT_S)
            parent_end.close()
            raise WriterUnavailable(
                f"the ledger writer process of {self.topic!r} ended ({how_ended(process)}) "
                "before it started"
            ) from None
        error = started[1]
        if error is not None:
            process.join(CLOSE_TIMEOUT_S)
            parent_end.close()
            if isinstance(error, WriterFenced):
                self._fenced = error
            raise error
        self._process, self._connection = process, parent_end
        self._child_healthy = started[6]
        self._gone = None
        self._receiver = threading.Thread(
            target=self._receive,
            args=(process, parent_end),
            name=f"ledger-writer-answers-{self.topic}",
            daemon=True,
        )
        self._receiver.start()
        if self._at_exit is None:
            # Registered after multiprocessing's own exit hook (imported by the start above),
            # so it runs first: that hook joins this daemon child, which ends only on EOF.
            self._at_exit = partial(_close_at_exit, weakref.ref(self))
            atexit.register(self._at_exit)

    def submit(self, commit: PendingCommit) -> PendingCommit:
        """Send a request to the child and return at once; its ``result()`` waits."""
        self._admit(commit)
        if self._stopping:
            raise WriterUnavailable(f"writer of {self.topic!r} is not running")
        if self._gone is not None:
            self._restart()
        events = [
            [
                (
                    id_text(event.originator_id),
                    event.originator_version,
                    event.topic,
                    event.state,
                )
                for event in batch
            ]
            for batch in commit.batches
        ]
        request_id = next(self._ids)
        blob = pickle.dumps(
            (request_id, events, commit.offsets, commit.group_metadata, tuple(commit.side_records)),
            protocol=pickle.HIGHEST_PROTOCOL,
        )
        with self._in_flight_lock:
            if self._gone is not None:
                raise WriterUnavailable(f"the ledger writer process of {self.topic!r} {self._gone}")
            self._in_flight[request_id] = _Sent(commit, events)
        connection = self._connection
        assert connection is not None
        try:
            with self._sending:
                connection.send_bytes(blob)
        except OSError:
            # The receiver sees the same broken pipe and fails every request in flight.
            pass
        return commit

    def _restart(self) -> None:
        """A new child after the last one died: its start settles what the dead one left."""
        with self._restart_lock:
            if self._gone is None:
                return
            logger.warning(
                "restarting the ledger writer process of %r (%s)", self.topic, self._gone
            )
            self._join()
            try:
                self.start()
            except WriterFenced:
                raise
            except Exception as error:
                raise WriterUnavailable(
                    f"cannot restart the ledger writer process of {self.topic!r}: {error!r}"
                ) from error

    def _receive(self, process: BaseProcess, connection: Connection) -> None:
        """The answers' thread: finish each request in flight as its answer comes in. An
        answer it cannot read or handle fails every request in flight (as the child's end
        does) rather than leave their callers waiting."""
        broken: str | None = None
        try:
            while True:
                try:
                    blob = connection.recv_bytes()
                except (EOFError, OSError):
                    break
                self._answered(cast(_Answer, pickle.loads(blob)))
        except Exception as error:
            logger.exception("the answers of the ledger writer process of %r", self.topic)
            broken = f"sent an answer that could not be handled ({error!r})"
            _shut(connection)  # the child sees EOF and ends: its later answers are lost anyway
        process.join(1)
        if broken is not None:
            why = broken
        elif self._stopping:
            why = "was closed"
        else:
            why = f"ended ({how_ended(process)})"
        with self._in_flight_lock:
            self._gone = why
            left = list(self._in_flight.values())
            self._in_flight.clear()
        for sent in left:
            sent.commit.finish(
                None,
                WriterUnavailable(
                    f"the ledger writer process of {self.topic!r} {why} before answering; "
                    "the transaction may or may not have committed"
                ),
            )

    def _answered(self, answer: _Answer) -> None:
        request_id, error, ids, offsets, hashes, fenced, healthy, transactions = answer
        # It stays in flight until handled: if handling raises, _receive fails it.
        with self._in_flight_lock:
            sent = self._in_flight[request_id]
        self._child_healthy = healthy
        self.transactions_committed = transactions
        if isinstance(error, WriterFenced):
            self._fenced = self._fenced or error
        if error is None:
            self._committed(sent, ids, offsets, hashes)
        with self._in_flight_lock:
            del self._in_flight[request_id]
        sent.commit.finish(ids, error)
        if fenced and self._fenced is None:
            self._fenced = WriterFenced(f"writer of {self.topic!r} was fenced")

    def _committed(
        self, sent: _Sent, ids: list[list[int]], offsets: list[int], hashes: list[bytes]
    ) -> None:
        """Keep the committed records in the parent's cache (the child keeps none) and tell
        the listeners, before the caller wakes: its next read finds them."""
        if offsets:
            at = 0
            prev_hash = hashes[0]
            unbuilt: list[tuple[int, Unbuilt]] = []
            for batch, batch_ids in zip(sent.events, ids, strict=True):
                for event, notification_id in zip(batch, batch_ids, strict=True):
                    # event: (originator id, version, topic, state), in linked()'s order.
                    record_hash = hashes[at + 1]
                    unbuilt.append((offsets[at], (prev_hash, notification_id, *event, record_hash)))
                    prev_hash = record_hash
                    at += 1
            # Built when read (store/reader.py's Unbuilt); the commit's own list of records
            # is the child's (its answer is made from it), left empty here.
            self._cache.put_many(unbuilt)
        if self._on_commit is not None:
            try:
                self._on_commit()
            except Exception:
                logger.exception("a commit listener of %r failed", self.topic)

    def close(self) -> None:
        """Let the child finish what it was given (CLOSE_TIMEOUT_S at most), then end it."""
        if self._stopping:
            return
        self._stopping = True
        if self._at_exit is not None:
            atexit.unregister(self._at_exit)
        self._join()

    def _join(self) -> None:
        process, connection, receiver = self._process, self._connection, self._receiver
        if connection is not None:
            # The child reads what was sent, then EOF: it finishes and answers that, and ends.
            _shut(connection)
        if process is not None:
            with self._in_flight_lock:
                busy = bool(self._in_flight)
            wait_s = CLOSE_TIMEOUT_S if busy else IDLE_CLOSE_S
            process.join(wait_s)
            if process.exitcode is None:
                logger.log(
                    logging.WARNING if busy else logging.DEBUG,
                    "the ledger writer process of %r did not end in %.0f s: killing it",
                    self.topic,
                    wait_s,
                )
                process.kill()  # it ignores SIGTERM (see run_writer)
                process.join()
        if receiver is not None:
            receiver.join()
        if connection is not None:
            connection.close()
        self._process = self._connection = self._receiver = None


def _shut(connection: Connection) -> None:
    """Stop writing to the child (a socket pair's end): it reads EOF after what was sent,
    while this end can still read its answers. Never blocks, unlike sending a message."""
    with (
        contextlib.suppress(OSError),
        socket.fromfd(  # a duplicate: closing it is harmless
            connection.fileno(), socket.AF_UNIX, socket.SOCK_STREAM
        ) as end,
    ):
        end.shutdown(socket.SHUT_WR)


def _close_at_exit(writer: weakref.ref[ProcessLedgerWriter]) -> None:
    """A writer never closed is closed as the interpreter exits (see start)."""
    alive = writer()
    if alive is not None:
        alive.close()


def usable_cores() -> int:
    """The cores this process may run on."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, cores or 1)


def how_ended(process: BaseProcess) -> str:
    """How a child process ended, for an error message (the ledger reader's too)."""
    exitcode = process.exitcode
    if exitcode is None:
        return "still running, its pipe broken"
    if exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit status {exitcode}"
