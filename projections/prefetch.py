"""A ledger source that reads the next batch while the current one is being applied.

Reading a batch (fetching records, decoding events) and applying it (database writes, most
of which wait on PostgreSQL or run inside DuckDB without the GIL) take turns in a plain
projector. This source starts reading batch N+1 in one background thread as soon as batch
N is handed out, so the two overlap. The sources of one projector's shards share one
permit to read ahead (``ReadAheadPermit``), so whatever the shards at most one batch is
held ahead of the one being applied: memory stays bounded by twice the batch size. The
first shard to take the permit keeps reading ahead; the others read when asked.

Who reads ahead is a ``ReadAhead``: a thread here (``ThreadReadAhead``), or, where a second
core is free, a process of its own that the composition root picks (the read is pure
Python and holds the GIL, so a thread overlaps only the databases' waits).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from eventsourcing.application import Application

from projections.entities import LedgerEvent
from projections.runner import LedgerSource


class ReadAheadPermit:
    """The one batch that the sources sharing this may hold read ahead, between them."""

    def __init__(self) -> None:
        self._free = threading.BoundedSemaphore(1)  # given back twice: a bug, said loudly

    def take(self) -> bool:
        return self._free.acquire(blocking=False)

    def give_back(self, _: object = None) -> None:
        self._free.release()


class ReadAhead(ABC):
    """Reads one batch ahead of a source: at most one read started and not yet taken."""

    @abstractmethod
    def start(self, position: int, limit: int) -> None:
        """Start reading the batch after ``position``."""

    @abstractmethod
    def take(self) -> list[LedgerEvent]:
        """The started read's events (waiting for them); its error, raised here."""

    @abstractmethod
    def drop(self, done: Callable[[], None]) -> None:
        """Forget the started read; ``done`` is called once it holds no memory any more."""

    @abstractmethod
    def close(self) -> None:
        """Stop, after a read still running (the ledger it reads is closed next)."""


class ThreadReadAhead(ReadAhead):
    """Reads ahead in one background thread of this process."""

    def __init__(self, inner: LedgerSource) -> None:
        self._inner = inner
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-prefetch")
        self._future: Future[list[LedgerEvent]] | None = None

    def start(self, position: int, limit: int) -> None:
        self._future = self._executor.submit(self._inner.read_after, position, limit)

    def take(self) -> list[LedgerEvent]:
        future, self._future = self._future, None
        assert future is not None, "take() without start()"
        return future.result()

    def drop(self, done: Callable[[], None]) -> None:
        future, self._future = self._future, None
        if future is not None:
            future.add_done_callback(lambda _: done())

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


class PrefetchingSource(LedgerSource):
    """``LedgerSource`` whose ``read_after``, once called for consecutive full batches (or
    for a first full batch where ``reading_from`` said it would be), reads the next one
    ahead and returns it when it is the one asked for. Any other position (a retry, a
    position moved by another projector) is read as usual and the batch read ahead is
    dropped. An error of the read ahead is raised by the call that asks for its batch, as
    the read itself would have."""

    def __init__(
        self,
        inner: LedgerSource,
        permit: ReadAheadPermit | None = None,
        read_ahead: ReadAhead | None = None,
    ) -> None:
        super().__init__(inner.recorder, inner.mapper, inner.shard)
        self._inner = inner
        self._permit = permit or ReadAheadPermit()
        self._reader = read_ahead or ThreadReadAhead(inner)
        # The (position, limit) of the read started ahead, if any.
        self._ahead: tuple[int, int] | None = None
        # Where a caller reading batch after batch asks next: only such a caller gets
        # batches read ahead (a one-off read, or a prefix trimming its limits, would
        # only pay for a read nobody takes).
        self._next: tuple[int, int] | None = None

    @classmethod
    def of(
        cls, application: Application[Any], shard: int = 0, permit: ReadAheadPermit | None = None
    ) -> PrefetchingSource:
        return cls(LedgerSource.of(application, shard), permit)

    def read_after(self, position: int, limit: int) -> list[LedgerEvent]:
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead == (position, limit):
            try:
                events = self._reader.take()
            finally:
                self._permit.give_back()
        else:
            self._drop(ahead)
            events = self._inner.read_after(position, limit)
        sequential = self._next == (position, limit)
        self._next = (events[-1].notification_id, limit) if events else None
        if sequential and len(events) == limit and self._permit.take():
            # A full batch: the ledger probably holds more. A short one means the end is
            # reached, where a live projector polls and reading ahead would only repeat it.
            after = events[-1].notification_id
            try:
                self._reader.start(after, limit)
            except BaseException:
                self._permit.give_back()
                raise
            self._ahead = (after, limit)
        return events

    def reading_from(self, position: int, limit: int) -> None:
        if self._next is None:
            self._next = (position, limit)

    @property
    def read_ahead(self) -> ReadAhead:
        return self._reader

    def last_position(self) -> int:
        return self._inner.last_position()

    def close(self) -> None:
        """Wait for a read ahead still running (its recorder is closed next), then stop."""
        ahead, self._ahead = self._ahead, None
        self._drop(ahead)
        self._reader.close()

    def _drop(self, ahead: tuple[int, int] | None) -> None:
        """A batch read ahead that nobody takes gives the permit back once it is read (or
        cancelled): until then it is in memory."""
        if ahead is not None:
            self._reader.drop(self._permit.give_back)
