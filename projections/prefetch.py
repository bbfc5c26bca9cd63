"""A ledger source that reads the next batch while the current one is being applied.

Reading a batch (fetching records, decoding events) and applying it (database writes, most
of which wait on PostgreSQL or run inside DuckDB without the GIL) take turns in a plain
projector. This source starts reading batch N+1 in one background thread as soon as batch
N is handed out, so the two overlap. The sources of one projector's shards share one
permit to read ahead (``ReadAheadPermit``), so whatever the shards at most one batch is
held ahead of the one being applied: memory stays bounded by twice the batch size. The
first shard to take the permit keeps reading ahead; the others read when asked.
"""

from __future__ import annotations

import threading
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


class PrefetchingSource(LedgerSource):
    """``LedgerSource`` whose ``read_after``, once called for consecutive full batches,
    reads the next one ahead and returns it when it is the one asked for. Any other
    position (a retry, a position moved by another projector) is read as usual and the
    batch read ahead is dropped. An error of the read ahead is raised by the call that
    asks for its batch, as the read itself would have."""

    def __init__(self, inner: LedgerSource, permit: ReadAheadPermit | None = None) -> None:
        super().__init__(inner.recorder, inner.mapper, inner.shard)
        self._inner = inner
        self._permit = permit or ReadAheadPermit()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-prefetch")
        self._ahead: tuple[int, int, Future[list[LedgerEvent]]] | None = None
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
        if ahead is not None and ahead[:2] == (position, limit):
            try:
                events = ahead[2].result()
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
            future = self._executor.submit(self._inner.read_after, after, limit)
            self._ahead = (after, limit, future)
        return events

    def last_position(self) -> int:
        return self._inner.last_position()

    def close(self) -> None:
        """Wait for a read ahead still running (its recorder is closed next), then stop."""
        ahead, self._ahead = self._ahead, None
        self._drop(ahead)
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _drop(self, ahead: tuple[int, int, Future[list[LedgerEvent]]] | None) -> None:
        """A batch read ahead that nobody takes gives the permit back once it is read (or
        cancelled): until then it is in memory."""
        if ahead is not None:
            ahead[2].add_done_callback(self._permit.give_back)
