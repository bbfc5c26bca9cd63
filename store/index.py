"""The aggregate index: aggregate id -> versions and offsets, notification id -> offset.

It lives in an SQLite file beside the application (bounded memory however large the ledger
grows) and is derived data: delete the file and it is rebuilt by reading the topic.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from store.records import GENESIS_HASH, LedgerRecord

# SQLite's page cache for the index, in KiB (negative means KiB to SQLite): the index's
# resident memory stays near this however many aggregates the ledger holds.
DEFAULT_CACHE_KIB = 32 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS topics (id INTEGER PRIMARY KEY, topic TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS events (
    notification_id INTEGER PRIMARY KEY,
    record_offset INTEGER NOT NULL,
    originator_id TEXT NOT NULL,
    originator_version INTEGER NOT NULL,
    topic_id INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_by_originator
    ON events (originator_id, originator_version);
"""


@dataclass(frozen=True)
class IndexedEvent:
    notification_id: int
    offset: int
    originator_version: int


class AggregateIndex:
    """Where each stored event sits in the topic; safe to share between threads."""

    def __init__(self, path: Path | str, cache_kib: int = DEFAULT_CACHE_KIB) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        # One connection behind a lock: the writer thread and reader threads share it, and
        # SQLite serialises writes anyway.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # The index is rebuildable from the topic, so a lost tail after a power cut is
        # harmless: catching up re-reads it. NORMAL keeps commits off the fsync path.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
        self._db.executescript(_SCHEMA)
        self._topic_ids: dict[str, int] = dict(
            (topic, topic_id)
            for topic_id, topic in self._db.execute("SELECT id, topic FROM topics")
        )
        self._topics_by_id = {topic_id: topic for topic, topic_id in self._topic_ids.items()}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def position(self) -> int:
        """The next topic offset to read: everything before it is indexed."""
        with self._lock:
            value = self._meta("position")
            return 0 if value is None else int(value)

    def last_notification_id(self) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT max(notification_id) FROM events").fetchone()
            return None if row[0] is None else int(row[0])

    def last_hash(self) -> bytes:
        """The hash of the last indexed record: the next record's prev_hash."""
        with self._lock:
            value = self._meta("last_hash")
            return GENESIS_HASH if value is None else bytes.fromhex(value)

    def last_versions(self, originator_ids: Iterable[str]) -> dict[str, int]:
        """The last recorded version of each given aggregate that has any."""
        found: dict[str, int] = {}
        with self._lock:
            for originator_id in originator_ids:
                row = self._db.execute(
                    "SELECT max(originator_version) FROM events WHERE originator_id = ?",
                    (originator_id,),
                ).fetchone()
                if row[0] is not None:
                    found[originator_id] = int(row[0])
        return found

    def apply(self, records: Sequence[tuple[int, LedgerRecord]], position: int) -> None:
        """Record committed records (offset, record) and the new position, atomically."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                rows = [
                    (
                        record.notification_id,
                        offset,
                        record.originator_id,
                        record.originator_version,
                        self._topic_id(record.topic),
                    )
                    for offset, record in records
                ]
                self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", rows)
                self._set_meta("position", str(position))
                if records:
                    self._set_meta("last_hash", records[-1][1].hash.hex())
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def reset(self) -> None:
        """Forget everything, for a rebuild from offset 0."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM events")
            self._db.execute("DELETE FROM meta")
            self._db.execute("COMMIT")

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _topic_id(self, topic: str) -> int:
        # Event topics repeat (a few dozen classes), so each is stored once and referred to.
        topic_id = self._topic_ids.get(topic)
        if topic_id is None:
            cursor = self._db.execute("INSERT INTO topics (topic) VALUES (?)", (topic,))
            topic_id = int(cursor.lastrowid or 0)
            self._topic_ids[topic] = topic_id
            self._topics_by_id[topic_id] = topic
        return topic_id

    def events(
        self,
        originator_id: str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[IndexedEvent]:
        """The offsets of one aggregate's events, selected as select_events selects them."""
        sql = (
            "SELECT notification_id, record_offset, originator_version FROM events "
            "WHERE originator_id = ?"
        )
        params: list[object] = [originator_id]
        if gt is not None:
            sql += " AND originator_version > ?"
            params.append(gt)
        if lte is not None:
            sql += " AND originator_version <= ?"
            params.append(lte)
        sql += " ORDER BY originator_version" + (" DESC" if desc else "")
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._lock:
            return [IndexedEvent(*row) for row in self._db.execute(sql, params)]

    def notifications(
        self, first_id: int, limit: int, stop: int | None = None, topics: Sequence[str] = ()
    ) -> list[IndexedEvent]:
        """The offsets of notifications with id >= first_id (and <= stop), in id order."""
        sql = (
            "SELECT notification_id, record_offset, originator_version FROM events "
            "WHERE notification_id >= ?"
        )
        params: list[object] = [first_id]
        if stop is not None:
            sql += " AND notification_id <= ?"
            params.append(stop)
        with self._lock:
            if topics:
                topic_ids = [self._topic_ids[t] for t in topics if t in self._topic_ids]
                if not topic_ids:
                    return []
                sql += f" AND topic_id IN ({','.join('?' * len(topic_ids))})"
                params.extend(topic_ids)
            sql += " ORDER BY notification_id LIMIT ?"
            params.append(limit)
            return [IndexedEvent(*row) for row in self._db.execute(sql, params)]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM events").fetchone()[0])
