"""The aggregates recent ingest batches loaded or changed, kept for the next batches.

A message's aggregates (a session, its settlement, payment and tariff) are mostly used
again within a few hundred messages; loading one afresh reads its stored events and
replays them. Bounded, least recently used first out, so memory stays flat.

Only aggregates in the state their batch saved are kept, and a hit is not trusted alone:
the application fast-forwards it with any events stored after its version (another writer
on the same ledger, or a one-at-a-time save in this process), as the library's own cache
does. A batch that fails clears the whole cache, since its commands may have changed
aggregates that were then not saved.
"""

from __future__ import annotations

from collections import OrderedDict
from uuid import UUID

from eventsourcing.domain import Aggregate

DEFAULT_SIZE = 4096


class RecentAggregates:
    """Aggregates by id, at most ``size`` of them (0 keeps none)."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._aggregates: OrderedDict[UUID, Aggregate] = OrderedDict()

    def __len__(self) -> int:
        return len(self._aggregates)

    def get(self, aggregate_id: UUID) -> Aggregate | None:
        aggregate = self._aggregates.get(aggregate_id)
        if aggregate is not None:
            self._aggregates.move_to_end(aggregate_id)
        return aggregate

    def keep(self, aggregate: Aggregate) -> None:
        """Keep an aggregate as saved; one with events not yet saved is dropped instead."""
        # The id read once (a property), for several aggregates a message.
        aggregate_id, kept = aggregate.id, self._aggregates
        if aggregate.pending_events:
            kept.pop(aggregate_id, None)
            return
        kept[aggregate_id] = aggregate
        kept.move_to_end(aggregate_id)
        while len(kept) > self.size:
            kept.popitem(last=False)

    def clear(self) -> None:
        self._aggregates.clear()
