"""Read models as the ledger stood at an earlier point, built into a named snapshot that
the query commands can be pointed at, leaving the live models alone.

A point is a ledger position (``--until-offset``: on Kafka the record's offset in the
ledger topic, as audit and trail show it, taken to the last event at or below it; on the
embedded default the notification id) or a time (``--as-of``: the ledger prefix of events
recorded at or before it, by the ledger's own timestamp of each event, not the upstream
``occurred_at``). Either is taken back to the end of the last whole command at or before
it, so a snapshot never shows half a command (a session stopped but not priced); the
report gives that effective cut as a notification id and a ledger offset.

On a sharded ledger the cut is one offset per shard, never one wall-clock moment: shards
commit independently, so no time orders one shard's records against another's. An offset
point names each shard's offset (``shard_offsets``, shard 0 first); a time cuts each shard
at its own last whole command recorded by then; the report gives the cut per shard
(``cuts``), in the form ``--until-offset O0,O1,...`` takes to rebuild the same snapshot.

Query a snapshot with the ordinary commands by pointing the settings at it: PostgreSQL
views through the DSN's search_path (``options=-csearch_path=snapshot_<label>``),
analytics through EVLEDGER_DUCKDB_PATH, and on the embedded default EVLEDGER_DATA_DIR set
to the snapshot's directory (laid out like a data dir). ``query_settings`` spells them out.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from projections.read_model import ReadModel
from projections.runner import LedgerSource
from replay.checksum import TableChecksum, model_checksums
from replay.ledger_prefix import (
    REBUILD_BATCH_SIZE,
    LedgerStop,
    PrefixSource,
    ProgressHook,
    project_shards,
)
from replay.positions import LedgerPositions, PointBeyondLedger
from replay.targets import ModelGroup, check_label

if TYPE_CHECKING:
    from replay.targets import ReplaySite

__all__ = [
    "CutNeedsEveryShard",
    "PointBeyondLedger",
    "PointInTime",
    "ShardCut",
    "SnapshotReport",
    "build_snapshot",
]


@dataclass(frozen=True)
class PointInTime:
    """Exactly one of a ledger offset, one ledger offset per shard (a sharded ledger's cut)
    and a recording time."""

    until_offset: int | None = None
    as_of: datetime | None = None
    shard_offsets: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        given = [self.until_offset, self.as_of, self.shard_offsets]
        if sum(value is not None for value in given) != 1:
            raise ValueError("give exactly one of until_offset, shard_offsets and as_of")
        if self.as_of is not None and self.as_of.tzinfo is None:
            raise ValueError("as_of must carry a time zone")

    def default_label(self) -> str:
        if self.as_of is not None:
            return "asof_" + self.as_of.astimezone(UTC).strftime("%Y%m%dt%H%M%Sz")
        if self.shard_offsets is not None:
            return "offset_" + "_".join(str(offset) for offset in self.shard_offsets)
        return f"offset_{self.until_offset}"

    def describe(self) -> str:
        if self.as_of is not None:
            return f"as recorded by {self.as_of.astimezone(UTC).isoformat()}"
        if self.shard_offsets is not None:
            offsets = ",".join(str(offset) for offset in self.shard_offsets)
            return f"up to ledger offsets {offsets} (one per shard)"
        return f"up to ledger offset {self.until_offset}"


class CutNeedsEveryShard(ValueError):
    """An offset cut that does not give exactly one offset per shard of the ledger."""


def ledger_stops(positions: Sequence[LedgerPositions], point: PointInTime) -> list[LedgerStop]:
    """Each shard's stop of the point's prefix (shard 0 first), trimmed back to the end of
    a whole command. A time cuts every shard at its own last command recorded by then; an
    offset cut names one offset per shard, since each shard's offsets are its own."""
    if point.as_of is not None:
        return [LedgerStop(recorded_until=point.as_of, whole_commands=True) for _ in positions]
    offsets = point.shard_offsets or (point.until_offset,)
    if len(offsets) != len(positions):
        raise CutNeedsEveryShard(
            f"the ledger has {len(positions)} shard(s), and each shard has offsets of its own:"
            f" give one offset per shard, shard 0 first (--until-offset O0,O1,...; a sharded"
            f" snapshot's report gives its cut that way), not {len(offsets)}"
        )
    return [
        # -1 names no record of the shard: a cut may hold nothing of one shard.
        LedgerStop(
            until_id=shard.notification_at(offset) if offset >= 0 else 0, whole_commands=True
        )
        for shard, offset in zip(positions, offsets, strict=True)
        if offset is not None
    ]


@dataclass(frozen=True)
class ShardCut:
    """Where a snapshot ends on one shard: its last notification (the end of a command),
    that notification's ledger offset and recording time (None: no event on the shard)."""

    shard: int
    position: int
    offset: int | None
    last_recorded_at: datetime | None


@dataclass
class SnapshotReport:
    """What a snapshot holds, where it is, and how to query it."""

    label: str
    point: PointInTime
    # The effective cut: one per shard, shard 0 first (one for an unsharded ledger).
    cuts: list[ShardCut]
    places: dict[str, str] = field(default_factory=dict)
    checksums: dict[str, dict[str, TableChecksum]] = field(default_factory=dict)
    query_settings: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def position(self) -> int:
        """The events in the snapshot (an unsharded ledger's last notification id)."""
        return sum(cut.position for cut in self.cuts)

    @property
    def offset(self) -> int | None:
        """The ledger offset of the cut: an unsharded ledger's only (see ``cuts``)."""
        return self.cuts[0].offset if len(self.cuts) == 1 else None

    @property
    def last_recorded_at(self) -> datetime | None:
        recorded = [cut.last_recorded_at for cut in self.cuts if cut.last_recorded_at]
        return max(recorded) if recorded else None


def build_snapshot(
    root: ReplaySite,
    names: Sequence[str],
    point: PointInTime,
    label: str | None = None,
    *,
    batch_size: int = REBUILD_BATCH_SIZE,
    progress: ProgressHook | None = None,
) -> SnapshotReport:
    """Project the ledger prefix of ``point`` (on every shard) into the snapshot ``label``
    (replaced if it exists) for each named read model."""
    label = check_label(label or point.default_label())
    groups = root.groups(names)
    directory = snapshot_dir(root, label)
    started = time.perf_counter()
    with root.ledger_sources() as sources:
        positions = [root.positions(source) for source in sources]
        prefixes = [
            PrefixSource(source, stop)
            for source, stop in zip(sources, ledger_stops(positions, point), strict=True)
        ]
        places = [group.home.snapshot_place(directory, label) for group in groups]
        try:
            models = [
                model_class(place.db)
                for group, place in zip(groups, places, strict=True)
                for model_class in group.classes
            ]
            project_shards(prefixes, models, batch_size=batch_size, progress=progress)
            report = SnapshotReport(
                label,
                point,
                [
                    _cut(shard, source, shard_positions, models)
                    for shard, (source, shard_positions) in enumerate(
                        zip(sources, positions, strict=True)
                    )
                ],
                places={
                    name: place.where
                    for group, place in zip(groups, places, strict=True)
                    for name in group.names
                },
                checksums={model.name: model_checksums(model) for model in models},
                query_settings=query_settings(groups, directory, label),
            )
        except BaseException:
            for place in places:
                place.discard()
            raise
        for place in places:
            place.db.close()
    report.seconds = time.perf_counter() - started
    return report


def _cut(
    shard: int, source: LedgerSource, positions: LedgerPositions, models: Sequence[ReadModel]
) -> ShardCut:
    position = min((model.for_shard(shard) if shard else model).position() for model in models)
    return ShardCut(shard, position, positions.offset_of(position), _recorded_at(source, position))


def _recorded_at(source: LedgerSource, position: int) -> datetime | None:
    if position == 0:
        return None
    timestamp = source.read_after(position - 1, 1)[0].event.timestamp
    return timestamp if isinstance(timestamp, datetime) else None


def snapshot_dir(root: ReplaySite, label: str) -> Path:
    """The snapshot's files: a directory laid out like a data dir, for EVLEDGER_DATA_DIR."""
    return root.snapshots_dir / check_label(label)


def query_settings(groups: Sequence[ModelGroup], directory: Path, label: str) -> dict[str, str]:
    """The EVLEDGER_* values that point `evledger history/refunds/analytics` at the snapshot
    (a PostgreSQL password shows as ***)."""
    values: dict[str, str] = {}
    for group in groups:
        values.update(group.home.query_settings(directory, label))
    return values
