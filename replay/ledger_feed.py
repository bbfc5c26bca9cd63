"""One read of a shard's ledger for the rebuild workers that replay it side by side (one per
database group): the rebuild process reads each batch once, in a thread, and hands the same
records to every worker, which decodes them into events itself.

Without it each worker read and parsed the whole shard for itself (kafka-python's record
parsing is pure Python): the same work once per group, on a machine whose cores the workers
already fill. The workers ask for the batch after a position (``FeedSource``, each asking
for its next batch as soon as it has one, so that the read overlaps its apply); the server
reads a full batch once and keeps it until every worker still reading has taken it, at
most ``AHEAD`` batches, so a worker that is ahead waits for the slowest (memory stays a few
batches, whatever the ledger). A short batch (the ledger's head, which grows) is read for
each worker that asks and not kept. A worker that is done closes its end; the server stops
waiting for it. The pipes are made before the workers are forked; each worker closes every
end but its own, so that one whose rebuild process is gone sees the end of its pipe.
"""

from __future__ import annotations

import contextlib
import pickle
import struct
import threading
from collections.abc import Iterable, Sequence
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

from projections.entities import Entity, LedgerEvent
from projections.runner import LedgerSource
from replay.group_decoder import GroupDecoder
from store.recorders import KafkaApplicationRecorder

if TYPE_CHECKING:
    from replay.targets import ReplaySite

# Full batches kept read for the workers behind; the worker ahead waits beyond that.
AHEAD = 3

_REQUEST = struct.Struct("<qq")
_RECORDS, _ERROR = b"R", b"!"


class LedgerFeedGone(RuntimeError):
    """The rebuild process that reads the ledger for this worker is gone."""


class LedgerFeedFailed(RuntimeError):
    """The rebuild process could not read a batch (its error, as text)."""


# One record as the workers decode it: notification id, originator id (as the ledger stores
# it, text: the decoder makes it the event's id only for the events it decodes), version,
# topic, state.
Record = tuple[int, str, int, str, bytes]


def _records_after(recorder: Any, position: int, limit: int) -> list[Record]:
    """The records after ``position``, at most ``limit``: a Kafka ledger's as it stores them
    (no ``Notification`` and no UUID each, which the worker would take apart again), any
    other recorder's from its notifications."""
    if isinstance(recorder, KafkaApplicationRecorder):
        return [
            (r.notification_id, r.originator_id, r.originator_version, r.topic, r.state)
            for r in recorder.ledger.notifications(position + 1, limit)
        ]
    notifications = recorder.select_notifications(
        start=position, limit=limit, inclusive_of_start=False
    )
    return [
        (n.id, str(n.originator_id), n.originator_version, n.topic, n.state) for n in notifications
    ]


def _packed(records: list[Record]) -> bytes:
    """A batch as one pickle of its records (plain tuples: the worker takes them as they
    are)."""
    return _RECORDS + pickle.dumps(records, protocol=pickle.HIGHEST_PROTOCOL)


def _unpacked(blob: bytes) -> list[Record]:
    """A batch's records."""
    if blob[:1] == _ERROR:
        raise LedgerFeedFailed(f"reading the ledger failed: {blob[1:].decode()}")
    records: list[Record] = pickle.loads(blob[1:])
    return records


class LedgerFeed:
    """The pipes between the rebuild process and the ``workers`` workers of one shard."""

    def __init__(self, context: Any, shard: int, workers: int) -> None:
        self.shard = shard
        pairs = [context.Pipe() for _ in range(workers)]
        self._ours: list[Connection] = [ours for ours, _ in pairs]
        self._theirs: list[Connection] = [theirs for _, theirs in pairs]
        self._stop_reader, self._stop_writer = context.Pipe(duplex=False)
        self._thread: threading.Thread | None = None
        self._opened = contextlib.ExitStack()
        self.server: _FeedServer | None = None

    def end(self, slot: int) -> Connection:
        """A worker's end of the feed."""
        return self._theirs[slot]

    def in_worker(self, slots: Sequence[int]) -> None:
        """In a worker: keep only the ends of ``slots`` (its own)."""
        for connection in [*self._ours, self._stop_reader, self._stop_writer]:
            connection.close()
        for slot, connection in enumerate(self._theirs):
            if slot not in slots:
                connection.close()

    def serve(self, site: ReplaySite) -> None:
        """In the rebuild process, once the workers are forked: read for them."""
        for connection in self._theirs:
            connection.close()
        # Opened here, not in the thread: the site is this process's, used by this thread.
        source = self._opened.enter_context(site.ledger_source(self.shard))
        self.server = _FeedServer(source, self._ours, self._stop_reader)
        self._thread = threading.Thread(
            target=self.server.run,
            name=f"ledger-feed-{self.shard}",
            daemon=True,
        )
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            with contextlib.suppress(OSError):
                self._stop_writer.send_bytes(b"stop")
            self._thread.join()
            self._thread = None
        self._opened.close()
        for connection in [*self._ours, *self._theirs, self._stop_reader, self._stop_writer]:
            connection.close()


class _FeedServer:
    """The thread that reads one shard for its workers (see the module docstring)."""

    def __init__(self, source: LedgerSource, clients: list[Connection], stop: Connection) -> None:
        self._source = source
        self._clients: set[Connection] = set(clients)
        self._stop = stop
        # Full batches read, by (position, limit): the blob and the workers that took it.
        self._kept: dict[tuple[int, int], tuple[bytes, set[Connection]]] = {}
        self._waiting: list[tuple[Connection, tuple[int, int]]] = []
        # Batches read from the ledger, and the most kept at once (the tests look).
        self.reads = 0
        self.most_kept = 0

    def run(self) -> None:
        try:
            self._serve()
        except Exception as error:  # a bug here: each worker fails saying so, none waits
            for client in list(self._clients):
                self._send(client, _ERROR + f"{type(error).__name__}: {error}".encode())
                client.close()  # its next request finds the pipe's end

    def _serve(self) -> None:
        while self._clients:
            ready = wait([*self._clients, self._stop])
            if self._stop in ready:
                return
            for client in ready:
                assert isinstance(client, Connection)
                try:
                    asked = _REQUEST.unpack(client.recv_bytes())
                except (EOFError, OSError):  # done (or gone): nobody waits for it
                    self._clients.discard(client)
                    self._forget()
                    continue
                self._answer(client, (asked[0], asked[1]))

    def _answer(self, client: Connection, asked: tuple[int, int]) -> None:
        for key, (_, takers) in self._kept.items():
            if key[0] < asked[0]:  # a worker asks in order: an earlier batch it skipped
                takers.add(client)
        room = len(self._kept) < AHEAD
        ahead = all(client in takers for _, takers in self._kept.values())
        if asked not in self._kept and not room and ahead:
            self._waiting.append((client, asked))  # the others have these to take first
            self._forget()
            return
        if asked in self._kept:
            blob, takers = self._kept[asked]
            takers.add(client)
        else:
            blob, full = self._read(*asked)
            if full and room and len(self._clients) > 1:
                self._kept[asked] = (blob, {client})
                self.most_kept = max(self.most_kept, len(self._kept))
        self._send(client, blob)
        self._forget()

    def _read(self, position: int, limit: int) -> tuple[bytes, bool]:
        self.reads += 1
        try:
            records = _records_after(self._source.recorder, position, limit)
        except Exception as error:
            return _ERROR + f"{type(error).__name__}: {error}".encode(), False
        return _packed(records), len(records) == limit

    def _send(self, client: Connection, blob: bytes) -> None:
        try:
            client.send_bytes(blob)
        except OSError:  # the worker is gone: the rebuild process hears of it
            self._clients.discard(client)

    def _forget(self) -> None:
        """Drop the batches every worker still reading has taken, then answer the waiting
        workers whose batches now fit."""
        for key in [k for k, (_, takers) in self._kept.items() if self._clients <= takers]:
            del self._kept[key]
        # A loop, not one waiter: a waiter that is gone since it asked takes no room.
        while len(self._kept) < AHEAD and self._waiting:
            client, asked = self._waiting.pop(0)
            if client in self._clients:
                self._answer(client, asked)


class FeedSource(LedgerSource):
    """A worker's ledger: ``own``'s (its head), with the records of each batch from the
    rebuild process; the next batch is asked for as soon as one arrives. Given ``entities``
    (its read models'), the events of a type whose facts hold none of them are left
    undecoded (replay/group_decoder.py; a type projections/facts.py does not name is always
    decoded): its events are then for ``facts_of`` only, not for reading their values (a
    ``PrefixSource`` by time or at whole commands refuses such a source)."""

    def __init__(
        self, own: LedgerSource, feed: Connection, entities: Iterable[Entity] | None = None
    ) -> None:
        super().__init__(own.recorder, own.mapper, own.shard)
        if entities is not None:
            self.decoder = GroupDecoder(own.mapper, entities)
        self._own, self._feed = own, feed
        self._asked: tuple[int, int] | None = None

    def read_after(self, position: int, limit: int) -> list[LedgerEvent]:
        # The request is answered once whatever comes of it (an error, as the caller's retry
        # asks again): cleared before the reply is taken, not after.
        asked, self._asked = self._asked, None
        if asked != (position, limit):
            if asked is not None:
                self._reply()  # asked ahead for a batch nobody wants now (or an error)
            self._ask(position, limit)
        records = _unpacked(self._reply())
        if len(records) == limit:
            self._ask(records[-1][0], limit)
        return self.events_from(position, records)

    def _ask(self, position: int, limit: int) -> None:
        try:
            self._feed.send_bytes(_REQUEST.pack(position, limit))
        except OSError:
            # Closed after it said why (the reading failed): that is what to raise.
            with contextlib.suppress(EOFError, OSError):
                if self._feed.poll():
                    _unpacked(self._feed.recv_bytes())
            raise LedgerFeedGone("the rebuild process reading the ledger is gone") from None
        self._asked = (position, limit)

    def _reply(self) -> bytes:
        try:
            return self._feed.recv_bytes()
        except (EOFError, OSError):
            raise LedgerFeedGone("the rebuild process reading the ledger is gone") from None

    def last_position(self) -> int:
        return self._own.last_position()

    def close(self) -> None:
        """Tell the rebuild process this worker reads no more."""
        self._feed.close()
