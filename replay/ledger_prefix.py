"""The ledger up to a stop (a position, or the events recorded by a time), and the
catch-up loop that projects read models to that stop with progress reports."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from consumers.projector import LedgerSource, Projector, RetryPolicy
from projections.facts import LedgerEvent
from projections.read_model import ReadModel

# Rebuilds write far more per batch than a live projector: fewer, larger transactions.
REBUILD_BATCH_SIZE = 10_000

# Called with (position reached, position aimed at) after each batch.
ProgressHook = Callable[[int, int], None]


@dataclass(frozen=True)
class LedgerStop:
    """Where a ledger prefix ends: after notification ``until_id``, and/or before the first
    event recorded after ``recorded_until`` (the ledger's own timestamp of the event)."""

    until_id: int | None = None
    recorded_until: datetime | None = None


class PrefixSource(LedgerSource):
    """A ledger source that ends at a stop, as if the ledger held nothing after it."""

    def __init__(self, inner: LedgerSource, stop: LedgerStop) -> None:
        super().__init__(inner.recorder, inner.mapper)
        self.inner = inner
        self.recorded_until = stop.recorded_until
        # Known once reached for a time stop: the id of the last event recorded by then.
        self.end: int | None = stop.until_id

    def read_after(self, position: int, limit: int) -> list[LedgerEvent]:
        if self.end is not None:
            limit = min(limit, self.end - position)
            if limit <= 0:
                return []
        events = self.inner.read_after(position, limit)
        if self.recorded_until is None:
            return events
        for index, event in enumerate(events):
            # The prefix stops at the first later event, so it stays contiguous even if
            # a later-stamped event was stored before an earlier-stamped one.
            if event.event.timestamp > self.recorded_until:
                self.end = event.notification_id - 1
                return events[:index]
        return events

    def last_position(self) -> int:
        head = self.inner.last_position()
        return head if self.end is None else min(head, self.end)


def project_to(
    source: LedgerSource,
    models: Sequence[ReadModel],
    until: int | None = None,
    *,
    batch_size: int = REBUILD_BATCH_SIZE,
    progress: ProgressHook | None = None,
) -> int:
    """Apply the ledger to ``models`` up to ``until`` (default: the source's end as of
    now); the lowest position the models reached."""
    if not models:
        return 0
    bounded = source if until is None else PrefixSource(source, LedgerStop(until_id=until))
    target = bounded.last_position()
    runner = Projector(
        bounded, models, batch_size=batch_size, retry=RetryPolicy(attempts=4, first_delay_s=0.2)
    )
    runner.create()
    reached = min(runner.positions().values())
    if progress is not None:
        progress(reached, target)
    while reached < target and runner.step():
        reached = min(runner.positions().values())
        if isinstance(bounded, PrefixSource) and bounded.end is not None:
            target = min(target, bounded.end)
        if progress is not None:
            progress(reached, max(target, reached))
    return min(runner.positions().values())
