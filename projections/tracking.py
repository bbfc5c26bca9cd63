"""Each read model's ledger position, stored in its own database beside its rows.

The library's tracking idea (``eventsourcing.persistence.Tracking``): the position moves in
the same transaction as the writes it stands for, so a crash loses both or neither. Here
the move is a compare-and-set from the position the batch was read after: a second
projector racing on the same read model fails the check instead of applying twice.
"""

from __future__ import annotations

from projections.databases.port import Database

TRACKING_TABLE = "projection_tracking"

_CREATE = (
    "CREATE TABLE IF NOT EXISTS " + TRACKING_TABLE + " ("
    " projection_name {text} PRIMARY KEY,"
    " application_name {text} NOT NULL,"
    " notification_id {bigint} NOT NULL"
    ")"
)


class ProjectionPositionConflict(RuntimeError):
    """The stored position is not the one this batch was read after: another projector
    moved it (or the read model was reset). Nothing of the batch was written."""


def shard_tracking_name(projection_name: str, shard: int) -> str:
    """The name of a projection's position on one ledger shard: shard 0 keeps the
    projection's name (an unsharded ledger's), shard p > 0 is ``<projection>@<p>``."""
    return projection_name if shard == 0 else f"{projection_name}@{shard}"


def create_tracking_table(db: Database) -> None:
    """The tracking table, if it is not there yet."""
    db.execute(_CREATE)


def create_tracking(db: Database, projection_name: str, application_name: str) -> None:
    """The tracking table and this projection's row at position 0 (nothing applied)."""
    create_tracking_table(db)
    if not db.execute(
        f"SELECT 1 AS found FROM {TRACKING_TABLE} WHERE projection_name = ?", [projection_name]
    ):
        db.execute(
            f"INSERT INTO {TRACKING_TABLE} (projection_name, application_name, notification_id)"
            " VALUES (?, ?, 0)",
            [projection_name, application_name],
        )


def tracked_position(db: Database, projection_name: str) -> int:
    """The last notification id applied; 0 if none (or the table does not exist yet)."""
    rows = db.execute(
        f"SELECT notification_id FROM {TRACKING_TABLE} WHERE projection_name = ?",
        [projection_name],
    )
    return int(rows[0]["notification_id"]) if rows else 0


def tracked_positions(db: Database) -> dict[str, int]:
    """Every projection's position in ``db``."""
    rows = db.execute(f"SELECT projection_name, notification_id FROM {TRACKING_TABLE}")
    return {str(row["projection_name"]): int(row["notification_id"]) for row in rows}


def advance_tracking(db: Database, projection_name: str, expected: int, new: int) -> None:
    """Move the position from ``expected`` to ``new`` inside the caller's transaction."""
    moved = db.execute(
        f"UPDATE {TRACKING_TABLE} SET notification_id = ?"
        " WHERE projection_name = ? AND notification_id = ? RETURNING notification_id",
        [new, projection_name, expected],
    )
    if not moved:
        current = tracked_position(db, projection_name)
        raise ProjectionPositionConflict(
            f"projection {projection_name!r} is at {current}, not {expected}: another "
            f"projector moved it; the batch up to {new} was not applied"
        )
