"""The facts of one projector batch, computed once and shared by every read model."""

from __future__ import annotations

from collections.abc import Sequence

from projections.entities import Fact, LedgerEvent
from projections.facts import facts_of
from projections.fold import FoldedOnce


class BatchFacts:
    """Facts of a batch of contiguous ledger events, computed on first use (inside a read
    model's retries, so an unknown event stalls the projection as it always did) and then
    served to each read model for whichever tail of the batch it still lacks."""

    def __init__(self, batch: Sequence[LedgerEvent]) -> None:
        self._batch = batch
        self._per_event: list[list[Fact]] | None = None
        self.computed = 0  # how many times the batch's facts were computed
        # The last run asked for, and its facts: read models at one position ask for the
        # same run, and share its folded rows.
        self._run: tuple[int, int, FoldedOnce] | None = None

    def of(self, events: Sequence[LedgerEvent]) -> FoldedOnce:
        """The facts of ``events``, a contiguous run of this batch's events, in order."""
        if not events:
            return FoldedOnce(())
        start = events[0].notification_id - self._batch[0].notification_id
        stop = start + len(events)
        if start < 0 or stop > len(self._batch) or self._batch[start] is not events[0]:
            raise ValueError(
                f"events {events[0].notification_id}..{events[-1].notification_id} are not "
                "a run of this batch"
            )
        if self._per_event is None:
            self._per_event = [facts_of(ledger_event) for ledger_event in self._batch]
            self.computed += 1
        if self._run is None or self._run[:2] != (start, stop):
            run = FoldedOnce(fact for facts in self._per_event[start:stop] for fact in facts)
            self._run = (start, stop, run)
        return self._run[2]
