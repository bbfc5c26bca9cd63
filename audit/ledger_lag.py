"""Each projection's lag behind each ledger shard: what /readyz and `evledger doctor` report.

A sharded ledger has one head per shard (its last notification id) and each read model one
position per shard (``<projection>@<p>`` for p > 0, projections/tracking.py); a
projection's lag on a shard is that shard's head minus its position there. Totals add the
shards up (ids are contiguous from 1 on every shard), so on an unsharded ledger they are
shard 0's figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from audit.ledger_head import LedgerHead, LedgerUnreachable
from projections.databases.port import Database
from projections.tracking import shard_tracking_name, tracked_position

# The read models in the views database (payment history, refund status); the analytics
# model is in its DuckDB file.
VIEW_PROJECTIONS = ("payment_history", "refund_status")


@dataclass(frozen=True)
class ShardLag:
    """One shard: its head ("ok", or "unavailable: why" and None) and the projections'
    positions on it (None: unknown, their database did not answer)."""

    shard: int
    ledger: str
    head: int | None
    positions: Mapping[str, int | None]

    def lag(self, name: str) -> int | None:
        """Events on the shard ``name`` has not applied (0 past the head: see `ahead`)."""
        position = self.positions.get(name)
        return None if position is None or self.head is None else max(0, self.head - position)

    def is_ahead(self, name: str) -> bool:
        """``name`` is past the shard's head: it applied events the ledger does not hold,
        so it is another ledger's (a wrong topic prefix, a ledger recreated under it)."""
        position = self.positions.get(name)
        return position is not None and self.head is not None and position > self.head

    def ahead(self) -> str | None:
        """Why these read models cannot be of this ledger (see `is_ahead`), or None."""
        past = [
            f"{name} at {position}"
            for name, position in self.positions.items()
            if self.is_ahead(name)
        ]
        if not past:
            return None
        return (
            f"read models past the ledger's head {self.head}: {', '.join(past)} (a wrong "
            "topic prefix, or a ledger recreated under them: rebuild them from this ledger)"
        )


def total(values: Iterable[int | None]) -> int | None:
    """The sum over shards, or None when any shard's figure is unknown."""
    figures = list(values)
    return None if any(value is None for value in figures) else sum(v or 0 for v in figures)


def shard_positions(db: Database, names: Sequence[str], shards: int) -> list[dict[str, int | None]]:
    """Per shard, the tracked position of each projection in ``db``."""
    return [
        {name: tracked_position(db, shard_tracking_name(name, shard)) for name in names}
        for shard in range(shards)
    ]


def shard_lags(
    heads: Sequence[LedgerHead], positions: Sequence[Mapping[str, int | None]]
) -> list[ShardLag]:
    """Each shard's head read now, beside the projections' positions on it."""
    lags = []
    for shard, (head, known) in enumerate(zip(heads, positions, strict=True)):
        try:
            last: int | None = head.last_notification_id()
            if any(p is not None and last is not None and p > last for p in known.values()):
                # Confirmed before saying "ahead": a read of the head can fall short (a
                # poll that comes back empty on a loaded broker ends it early).
                last = max(last or 0, head.last_notification_id())
            ledger = "ok"
        except LedgerUnreachable as error:
            last, ledger = None, f"unavailable: {error}"
        lags.append(ShardLag(shard, ledger, last, dict(known)))
    return lags
