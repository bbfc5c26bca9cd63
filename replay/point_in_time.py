"""Read models as the ledger stood at an earlier point, built into a named snapshot that
the query commands can be pointed at, leaving the live models alone.

A point is a ledger position (``--until-offset``: on Kafka the record's offset in the
ledger topic, as audit and trail show it, taken to the last event at or below it; on the
embedded default the notification id) or a time (``--as-of``: the ledger prefix of events
recorded at or before it, by the ledger's own timestamp of each event, not the upstream
``occurred_at``). Either is taken back to the end of the last whole command at or before
it, so a snapshot never shows half a command (a session stopped but not priced); the
report gives that effective cut as a notification id and a ledger offset.

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

from projections.runner import LedgerSource
from replay.checksum import TableChecksum, model_checksums
from replay.ledger_prefix import (
    REBUILD_BATCH_SIZE,
    LedgerStop,
    PrefixSource,
    ProgressHook,
    project_to,
)
from replay.positions import LedgerPositions, PointBeyondLedger
from replay.targets import ModelGroup, check_label

if TYPE_CHECKING:
    from replay.targets import ReplaySite

__all__ = ["PointBeyondLedger", "PointInTime", "SnapshotReport", "build_snapshot"]


@dataclass(frozen=True)
class PointInTime:
    """Exactly one of a ledger offset and a recording time."""

    until_offset: int | None = None
    as_of: datetime | None = None

    def __post_init__(self) -> None:
        if (self.until_offset is None) == (self.as_of is None):
            raise ValueError("give exactly one of until_offset and as_of")
        if self.as_of is not None and self.as_of.tzinfo is None:
            raise ValueError("as_of must carry a time zone")

    def default_label(self) -> str:
        if self.as_of is not None:
            return "asof_" + self.as_of.astimezone(UTC).strftime("%Y%m%dt%H%M%Sz")
        return f"offset_{self.until_offset}"

    def describe(self) -> str:
        if self.as_of is not None:
            return f"as recorded by {self.as_of.astimezone(UTC).isoformat()}"
        return f"up to ledger offset {self.until_offset}"


def ledger_stop(positions: LedgerPositions, point: PointInTime) -> LedgerStop:
    """The stop of the point's prefix, trimmed back to the end of a whole command."""
    if point.as_of is not None:
        return LedgerStop(recorded_until=point.as_of, whole_commands=True)
    assert point.until_offset is not None
    return LedgerStop(until_id=positions.notification_at(point.until_offset), whole_commands=True)


@dataclass
class SnapshotReport:
    """What a snapshot holds, where it is, and how to query it."""

    label: str
    point: PointInTime
    # The effective cut: the last notification in the snapshot (the end of a command) and
    # its ledger offset (None when the snapshot holds no event).
    position: int
    offset: int | None
    last_recorded_at: datetime | None
    places: dict[str, str] = field(default_factory=dict)
    checksums: dict[str, dict[str, TableChecksum]] = field(default_factory=dict)
    query_settings: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def build_snapshot(
    root: ReplaySite,
    names: Sequence[str],
    point: PointInTime,
    label: str | None = None,
    *,
    batch_size: int = REBUILD_BATCH_SIZE,
    progress: ProgressHook | None = None,
) -> SnapshotReport:
    """Project the ledger prefix of ``point`` into the snapshot ``label`` (replaced if it
    exists) for each named read model."""
    label = check_label(label or point.default_label())
    groups = root.groups(names)
    directory = snapshot_dir(root, label)
    started = time.perf_counter()
    with root.ledger_source() as source:
        positions = root.positions(source)
        prefix = PrefixSource(source, ledger_stop(positions, point))
        places = [group.home.snapshot_place(directory, label) for group in groups]
        try:
            models = [
                model_class(place.db)
                for group, place in zip(groups, places, strict=True)
                for model_class in group.classes
            ]
            position = project_to(prefix, models, batch_size=batch_size, progress=progress)
            report = SnapshotReport(
                label,
                point,
                position,
                positions.offset_of(position),
                _recorded_at(source, position),
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
