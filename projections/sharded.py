"""The projector of a sharded ledger: one projector per shard, stepped in turn, into the
same read models.

Each shard's ledger has its own notification ids from 1, so each read model keeps one
position per shard (``ReadModel.shard``: shard 0 under the model's name, shard p under
``<name>@<p>``), each moved in the same transaction as that shard's rows. A session, its
payments and its refunds live on one shard (consumers/routing.py), so shards write
disjoint rows; tariffs, on every shard, are the same rows written alike by each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from projections.runner import Projector
from projections.tracking import shard_tracking_name


@dataclass
class ShardedProjector(Projector):
    """A Projector over every shard; its own source and read models are shard 0's, so
    whatever lists the read models (metrics, output) names each once. Running (``run``,
    ``run_until_idle``) is the Projector's, over the steps and positions below."""

    shards: Sequence[Projector] = ()

    def create(self) -> None:
        for projector in self.shards:
            projector.create()

    def positions(self) -> dict[str, int]:
        """Per read model, the events applied over all shards (the sum of its positions:
        ids are contiguous from 1 on every shard)."""
        totals: dict[str, int] = {}
        for projector in self.shards:
            for name, position in projector.positions().items():
                totals[name] = totals.get(name, 0) + position
        return totals

    def step(self) -> int:
        read = sum(projector.step() for projector in self.shards)
        self._gather()
        return read

    def _gather(self) -> None:
        """The shards' progress added up per read model; a stop named by its shard."""
        for name, progress in self.progress.items():
            parts = [projector.progress[name] for projector in self.shards]
            progress.events = sum(part.events for part in parts)
            progress.batches = sum(part.batches for part in parts)
            progress.retries = sum(part.retries for part in parts)
        for shard, projector in enumerate(self.shards):
            for name, stop in projector.stopped.items():
                self.stopped[shard_tracking_name(name, shard)] = stop
