"""The embedded default's ledger file: read its events in order, and load an export into it.

The eventsourcing library's SQLite store numbers events by rowid and keeps no hashes. An
imported export brings its chain along in a side table (``evledger_export_chain``), so the
imported records can later be checked against the chain they were exported with.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from uuid import UUID

from audit.scan import LedgerUnavailable, ScannedRecord

EVENTS_TABLE = "stored_events"
CHAIN_TABLE = "evledger_export_chain"

_CHAIN_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {CHAIN_TABLE} (
    notification_id INTEGER PRIMARY KEY,
    kafka_offset INTEGER,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    recorded_at TEXT
)
"""


class LedgerNotEmpty(RuntimeError):
    """An import needs an empty embedded ledger: it keeps the export's notification ids."""


def _connect(path: Path) -> sqlite3.Connection:
    # The library's own connections use the same file; wait for them rather than fail.
    return sqlite3.connect(path, timeout=10, isolation_level=None)


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    row = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,))
    return row.fetchone() is not None


def originator_id_text(stored: str) -> str:
    """The id as the Kafka ledger writes it: the library stores UUIDs as 32 hex digits."""
    if len(stored) == 32:
        try:
            return str(UUID(hex=stored))
        except ValueError:
            return stored
    return stored


def _stored_originator_id(originator_id: str) -> str:
    try:
        return UUID(originator_id).hex
    except ValueError:
        return originator_id


class SqliteLedgerScan:
    """The events of the embedded ledger by notification id, with any imported chain."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def description(self) -> str:
        return f"embedded SQLite ledger {self.path}"

    @property
    def chain_origin(self) -> str:
        return "imported" if self.imported_count() else "none"

    def _open(self) -> sqlite3.Connection:
        if not self.path.exists():
            raise LedgerUnavailable(
                f"no embedded ledger at {self.path}; check EVLEDGER_DATA_DIR (or set "
                "EVLEDGER_KAFKA_BOOTSTRAP to audit the Kafka ledger)"
            )
        return _connect(self.path)

    def size_hint(self) -> int | None:
        db = self._open()
        try:
            if not _has_table(db, EVENTS_TABLE):
                return 0
            return int(db.execute(f"SELECT COUNT(*) FROM {EVENTS_TABLE}").fetchone()[0])
        finally:
            db.close()

    def imported_count(self) -> int:
        """How many records came from an export (and carry its chain)."""
        db = self._open()
        try:
            if not _has_table(db, CHAIN_TABLE):
                return 0
            return int(db.execute(f"SELECT COUNT(*) FROM {CHAIN_TABLE}").fetchone()[0])
        finally:
            db.close()

    def records(self) -> Iterator[ScannedRecord]:
        db = self._open()
        try:
            if not _has_table(db, EVENTS_TABLE):
                return
            chain = (
                f"LEFT JOIN {CHAIN_TABLE} c ON c.notification_id = e.rowid"
                if _has_table(db, CHAIN_TABLE)
                else "LEFT JOIN (SELECT NULL AS notification_id, NULL AS kafka_offset, "
                "NULL AS prev_hash, NULL AS hash, NULL AS recorded_at) c ON 0"
            )
            rows = db.execute(
                "SELECT e.rowid, e.originator_id, e.originator_version, e.topic, e.state, "
                "c.kafka_offset, c.prev_hash, c.hash, c.recorded_at "
                f"FROM {EVENTS_TABLE} e {chain} ORDER BY e.rowid"
            )
            for position, row in enumerate(rows, start=1):
                rowid, originator_id, version, topic, state, offset, prev, digest, at = row
                yield ScannedRecord(
                    position=position,
                    offset=offset,
                    notification_id=int(rowid),
                    originator_id=originator_id_text(str(originator_id)),
                    originator_version=int(version),
                    topic=str(topic),
                    # A hand-edited row may hold text where the library wrote a blob.
                    state=state.encode() if isinstance(state, str) else bytes(state),
                    prev_hash=bytes.fromhex(prev) if prev else None,
                    hash=bytes.fromhex(digest) if digest else None,
                    recorded_at=datetime.fromisoformat(at) if at else None,
                )
        finally:
            db.close()


def load_records(path: Path, records: Iterable[ScannedRecord]) -> int:
    """Write records into an empty embedded ledger, keeping their ids, order and chain.

    One SQLite transaction: an import that fails half-way leaves the ledger empty.
    The events table must exist (the library creates it); returns the records written.
    """
    db = _connect(path)
    try:
        db.execute(_CHAIN_SCHEMA)
        db.execute("BEGIN IMMEDIATE")
        written = 0
        try:
            count = int(db.execute(f"SELECT COUNT(*) FROM {EVENTS_TABLE}").fetchone()[0])
            if count:
                raise LedgerNotEmpty(
                    f"the embedded ledger {path} already holds {count} events; import into "
                    "an empty one (point EVLEDGER_DATA_DIR at a new directory)"
                )
            db.execute(f"DELETE FROM {CHAIN_TABLE}")
            for record in records:
                if (
                    record.notification_id is None
                    or record.originator_version is None
                    or record.topic is None
                ):
                    raise LedgerUnavailable(
                        f"record at {record.where()} is damaged: {record.defect}"
                    )
                db.execute(
                    f"INSERT INTO {EVENTS_TABLE} (rowid, originator_id, originator_version, "
                    "topic, state) VALUES (?, ?, ?, ?, ?)",
                    (
                        record.notification_id,
                        _stored_originator_id(record.originator_id),
                        record.originator_version,
                        record.topic,
                        record.state,
                    ),
                )
                if record.prev_hash is not None and record.hash is not None:
                    db.execute(
                        f"INSERT INTO {CHAIN_TABLE} VALUES (?, ?, ?, ?, ?)",
                        (
                            record.notification_id,
                            record.offset,
                            record.prev_hash.hex(),
                            record.hash.hex(),
                            record.recorded_at.isoformat() if record.recorded_at else None,
                        ),
                    )
                written += 1
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return written
    finally:
        db.close()
