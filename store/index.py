"""The aggregate index: aggregate id -> versions and offsets, notification id -> offset.

It lives in an SQLite file beside the application (bounded memory however large the ledger
grows) and is derived data: delete the file and it is rebuilt by reading the topic.

Every process with the same data dir shares the file (the writer and any readers), so the
index only ever grows by whole chain links: `apply` re-reads the stored state inside its
write transaction, skips records already present (after checking they are the same ones)
and refuses records that do not continue the stored chain. Whatever order processes apply
in, the file holds a prefix of the topic's chain, and the writer's version check sees at
least every event it committed itself.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from uuid import UUID

from eventsourcing.persistence import (
    IntegrityError,
    OperationalError,
    PersistenceError,
    ProgrammingError,
)

from store.records import GENESIS_HASH, LedgerRecord

logger = logging.getLogger(__name__)

_Id = TypeVar("_Id", str, UUID)

# SQLite's page cache for the index, in KiB (negative means KiB to SQLite): the index's
# resident memory stays near this however many aggregates the ledger holds. Small: the
# file of 200,000 events is already 20 MB, so a larger cache grows with the ledger past
# there, and a page it misses is read from the operating system's cache.
DEFAULT_CACHE_KIB = 8 * 1024

# How long a process waits for another's write transaction on the shared file.
LOCK_TIMEOUT_S = 30.0

# Aggregate ids per `IN (...)` lookup: well under SQLite's bound-parameter limit.
_LOOKUP_CHUNK = 500

# Pages the write-ahead log may hold before a commit copies them into the file (SQLite's
# default is 1,000). Each commit dirties about one page of the originator index per event,
# in random places (aggregate ids are random), so with the default nearly every batch's
# commit ran a checkpoint that wrote its pages a second time and synced the file; ten times
# fewer checkpoints wrote a third less at 1M events (a page dirtied by several batches is
# copied once). The log's file stays near this size (40 MiB), and a reader finds its pages
# through SQLite's hash table of the log, not by scanning it.
_CHECKPOINT_PAGES = 10_000

# Where Linux tells this boot of the machine from every other (a test points it elsewhere).
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"

# The layout's version, in the file's name (see index_file).
_LAYOUT = "v2"

# Aggregate ids are stored as the 16 bytes of their UUID where the id is a UUID's canonical
# text (every id the application writes), otherwise as the text (a BLOB column has no
# affinity: each value is stored as given, and bytes never equal text): a key a third of
# the size keeps twice as many of the originator index's entries in a page, which is what
# its cost grows with (one random page per event inserted, read and written).
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS topics (id INTEGER PRIMARY KEY, topic TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS events (
    notification_id INTEGER PRIMARY KEY,
    record_offset INTEGER NOT NULL,
    originator_id BLOB NOT NULL,
    originator_version INTEGER NOT NULL,
    topic_id INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_by_originator
    ON events (originator_id, originator_version);
"""

# One statement is one read snapshot: position, chain head and last id always agree, even
# while another process applies.
_STATE_SQL = """
SELECT (SELECT value FROM meta WHERE key = 'position'),
       (SELECT value FROM meta WHERE key = 'last_hash'),
       (SELECT max(notification_id) FROM events)
"""


def _key(originator_id: str) -> bytes | str:
    """The stored form of an aggregate id: a canonical UUID text's 16 bytes, else the text.

    Only the canonical (lowercase) spelling maps to bytes, so two different ids never share
    a key; any other text (upper case, no dashes, not a UUID) stays itself.
    """
    if (
        len(originator_id) == 36
        and originator_id[8] == originator_id[13] == originator_id[18] == originator_id[23] == "-"
        and originator_id == originator_id.lower()
    ):
        try:
            raw = bytes.fromhex(originator_id.replace("-", ""))
        except ValueError:
            return originator_id
        if len(raw) == 16:  # fromhex skips whitespace: 32 characters of hex, nothing else
            return raw
    return originator_id


def _boot_id() -> str | None:
    """This run of the machine's kernel (Linux), or None where it cannot be told."""
    try:
        boot = Path(BOOT_ID_PATH).read_text(encoding="ascii").strip()
    except (OSError, UnicodeError):
        return None
    return boot if _BOOT.fullmatch(boot) else None


_BOOT = re.compile(r"[0-9a-f-]{36}")


# A topic's name as the start of its index file's: Kafka allows 249 characters, a file name
# 255, and the rest of the name (layout, boot, "-journal") takes 57.
_STEM_CHARACTERS = 150


def _stem(topic: str) -> str:
    """The topic's name, or for a long one its start and a hash of it ("~" is not in any
    topic's name either)."""
    if len(topic) <= _STEM_CHARACTERS:
        return topic
    return topic[:100] + "~" + hashlib.sha256(topic.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class IndexFile:
    """Which file holds a topic's index in a directory, and whether it is synced to disk."""

    path: Path
    synced: bool


def index_file(directory: Path, topic: str) -> IndexFile:
    """The file of ``topic``'s index in ``directory``, named for its layout and, where the
    machine can tell one boot from another, for this boot; files of the topic's index that
    no process can be using any more are removed.

    Where the boot is known the file is never synced (``synchronous=OFF``): the index is
    derived data, a process that crashes loses nothing SQLite handed to the operating
    system, and the machine going down takes the file's name with it (the next boot's
    processes open a new file, caught up from the topic, and remove the old one; its
    contents may have lost any write, so it is not opened). The syncs of the checkpoints
    were half of the writer's indexing time at 2M events. Where the boot is unknown the file
    is synced as before (NORMAL: a lost tail is caught up again, the file itself stays sound).
    A process of an older evledger (another layout) keeps its own file, which is removed
    too: unlinked, a file still open stays the open process's own.

    The parts of a name are joined by "@", which a Kafka topic name cannot hold, so no
    topic's file is ever named like another topic's, of any layout or boot.
    """
    boot = _boot_id()
    stem = _stem(topic)
    name = f"{stem}@{_LAYOUT}" + (f"@{boot}" if boot else "") + ".sqlite3"
    older_layout = re.compile(re.escape(topic) + r"\.sqlite3(-wal|-shm)?")
    # Where the boot is unknown, a file named for a boot may be another process's, which
    # could read it: only a process that knows this boot tells an earlier one's file.
    earlier_boot = re.compile(
        re.escape(f"{stem}@{_LAYOUT}@") + r"[0-9a-f-]{36}\.sqlite3(-wal|-shm)?"
    )
    for found in directory.iterdir() if directory.is_dir() else ():
        stale = older_layout.fullmatch(found.name) or (
            boot is not None
            and earlier_boot.fullmatch(found.name)
            and not found.name.startswith(name)
        )
        if stale:
            logger.warning("removing %s, the index of an earlier boot or evledger", found)
            found.unlink(missing_ok=True)
    return IndexFile(directory / name, synced=boot is None)


class AggregateIndexError(PersistenceError):
    """The aggregate index failed; sqlite3's error, if any, is the ``__cause__``."""


class IndexConflict(AggregateIndexError, IntegrityError):
    """Records given to `apply` do not continue the index's chain (another process reset
    or advanced it differently); catch up again from the index's current state."""


class IndexUnavailable(AggregateIndexError, OperationalError):
    """The index file cannot be opened, read or written (locked past the timeout, a full
    disk, not an SQLite file); being derived data, a damaged file may be deleted."""


class IndexMisuse(AggregateIndexError, ProgrammingError):
    """The index was used wrongly (after close, say): a bug in the caller."""


@contextmanager
def _translated(path: str) -> Iterator[None]:
    """sqlite3's errors as the index's own, naming the file."""
    try:
        yield
    except sqlite3.Error as error:
        message = f"aggregate index {path}: {error}"
        if isinstance(error, sqlite3.IntegrityError):
            raise IndexConflict(message) from error
        if isinstance(error, sqlite3.ProgrammingError | sqlite3.InterfaceError):
            raise IndexMisuse(message) from error
        if getattr(error, "sqlite_errorname", "") in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
            message += " (the index is derived data: delete the file to rebuild it)"
        raise IndexUnavailable(message) from error


@dataclass(frozen=True)
class IndexedEvent:
    notification_id: int
    offset: int
    originator_version: int


@dataclass(frozen=True)
class IndexState:
    """A consistent snapshot of how far the index reaches."""

    position: int
    last_hash: bytes
    last_notification_id: int


class AggregateIndex:
    """Where each stored event sits in the topic; safe to share between threads and
    between processes (each opens its own connection to the same file)."""

    def __init__(
        self, path: Path | str, cache_kib: int = DEFAULT_CACHE_KIB, *, synced: bool = True
    ) -> None:
        self.path = str(path)
        self.synced = synced
        self._lock = threading.RLock()
        # One connection behind a lock: the writer thread and reader threads share it, and
        # SQLite serialises writes anyway (across processes too, waiting up to the timeout).
        with _translated(self.path):
            self._db = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=LOCK_TIMEOUT_S
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            # Unsynced only in a file that no later boot opens (index_file).
            self._db.execute(f"PRAGMA synchronous={'NORMAL' if synced else 'OFF'}")
            self._db.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
            self._db.execute(f"PRAGMA wal_autocheckpoint={_CHECKPOINT_PAGES}")
            self._db.executescript(_SCHEMA)
        # Topic ids never change once assigned (reset keeps them), so caching them is safe;
        # a miss asks the file, where another process may have added the topic.
        self._topic_ids: dict[str, int] = {}

    def close(self) -> None:
        with self._lock, _translated(self.path):
            self._db.close()

    def state(self) -> IndexState:
        with self._lock, _translated(self.path):
            return self._state()

    def _state(self) -> IndexState:
        position, last_hash, last_id = self._db.execute(_STATE_SQL).fetchone()
        return IndexState(
            position=0 if position is None else int(position),
            last_hash=GENESIS_HASH if last_hash is None else bytes.fromhex(last_hash),
            last_notification_id=0 if last_id is None else int(last_id),
        )

    def position(self) -> int:
        """The next topic offset to read: everything before it is indexed."""
        return self.state().position

    def last_notification_id(self) -> int | None:
        return self.state().last_notification_id or None

    def last_hash(self) -> bytes:
        """The hash of the last indexed record: the next record's prev_hash."""
        return self.state().last_hash

    def last_versions(self, originator_ids: Iterable[str]) -> dict[str, int]:
        """The last recorded version of each given aggregate that has any."""
        return self._last_versions(
            {_key(originator_id): originator_id for originator_id in originator_ids}
        )

    def last_uuid_versions(self, originator_ids: Iterable[UUID]) -> dict[UUID, int]:
        """``last_versions`` of aggregates named by UUID, without spelling their ids: the
        write application asks for a few a message."""
        return self._last_versions(
            {originator_id.bytes: originator_id for originator_id in originator_ids}
        )

    def _last_versions(self, by_key: dict[bytes | str, _Id]) -> dict[_Id, int]:
        keys = list(by_key)
        found: dict[_Id, int] = {}
        with self._lock, _translated(self.path):
            for start in range(0, len(keys), _LOOKUP_CHUNK):
                chunk = keys[start : start + _LOOKUP_CHUNK]
                rows = self._db.execute(
                    "SELECT originator_id, max(originator_version) FROM events "
                    f"WHERE originator_id IN ({','.join('?' * len(chunk))}) "
                    "GROUP BY originator_id",
                    chunk,
                )
                found.update((by_key[key], version) for key, version in rows)
        return found

    def apply(self, records: Sequence[tuple[int, LedgerRecord]], position: int) -> None:
        """Record committed records (offset, record) and the new position, atomically.

        Idempotent: records the index already holds are skipped (IndexConflict if they
        differ), and the position never moves back. Raises IndexConflict if the new records
        do not continue the stored chain.
        """
        with self._lock, _translated(self.path):
            # IMMEDIATE takes the file's write lock before reading the state, so no other
            # process can apply between the check and the insert.
            self._db.execute("BEGIN IMMEDIATE")
            try:
                state = self._state()
                fresh = self._unindexed(records, state)
                self._check_continues(fresh, state)
                rows = [
                    (
                        record.notification_id,
                        offset,
                        _key(record.originator_id),
                        record.originator_version,
                        self._topic_id(record.topic),
                    )
                    for offset, record in fresh
                ]
                self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", rows)
                if position > state.position:
                    self._set_meta("position", str(position))
                if fresh:
                    self._set_meta("last_hash", fresh[-1][1].hash.hex())
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                # Topic ids cached in this transaction were rolled back with it.
                self._topic_ids.clear()
                raise

    def _unindexed(
        self, records: Sequence[tuple[int, LedgerRecord]], state: IndexState
    ) -> list[tuple[int, LedgerRecord]]:
        """The records past the index's last id, after checking the others are its own."""
        known = [(o, r) for o, r in records if r.notification_id <= state.last_notification_id]
        for offset, record in known:
            row = self._db.execute(
                "SELECT record_offset, originator_id, originator_version FROM events "
                "WHERE notification_id = ?",
                (record.notification_id,),
            ).fetchone()
            if row != (offset, _key(record.originator_id), record.originator_version):
                raise IndexConflict(
                    f"notification {record.notification_id} is indexed as {row}, "
                    f"not as offset {offset} of {record.originator_id!r}"
                )
        return [(o, r) for o, r in records if r.notification_id > state.last_notification_id]

    @staticmethod
    def _check_continues(fresh: Sequence[tuple[int, LedgerRecord]], state: IndexState) -> None:
        expected_id, expected_prev = state.last_notification_id + 1, state.last_hash
        for offset, record in fresh:
            if offset < state.position:
                raise IndexConflict(f"offset {offset} lies before position {state.position}")
            if record.notification_id != expected_id or record.prev_hash != expected_prev:
                raise IndexConflict(
                    f"notification {record.notification_id} at offset {offset} does not "
                    f"follow notification {expected_id - 1} in the index"
                )
            expected_id, expected_prev = expected_id + 1, record.hash

    def reset(self) -> None:
        """Forget every event, for a rebuild from offset 0 (topic ids stay as they are)."""
        with self._lock, _translated(self.path):
            self._db.execute("BEGIN IMMEDIATE")
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
        # Another process may have stored it since this one cached the table: insert if
        # missing, then read whichever id the file holds.
        topic_id = self._topic_ids.get(topic)
        if topic_id is None:
            self._db.execute(
                "INSERT INTO topics (topic) VALUES (?) ON CONFLICT (topic) DO NOTHING", (topic,)
            )
            row = self._db.execute("SELECT id FROM topics WHERE topic = ?", (topic,)).fetchone()
            topic_id = self._topic_ids[topic] = int(row[0])
        return topic_id

    def _known_topic_ids(self, topics: Sequence[str]) -> list[int]:
        missing = [topic for topic in topics if topic not in self._topic_ids]
        if missing:
            rows = self._db.execute(
                f"SELECT topic, id FROM topics WHERE topic IN ({','.join('?' * len(missing))})",
                missing,
            )
            self._topic_ids.update((str(topic), int(topic_id)) for topic, topic_id in rows)
        return [self._topic_ids[topic] for topic in topics if topic in self._topic_ids]

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
        params: list[object] = [_key(originator_id)]
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
        with self._lock, _translated(self.path):
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
        with self._lock, _translated(self.path):
            if topics:
                topic_ids = self._known_topic_ids(topics)
                if not topic_ids:
                    return []
                sql += f" AND topic_id IN ({','.join('?' * len(topic_ids))})"
                params.extend(topic_ids)
            sql += " ORDER BY notification_id LIMIT ?"
            params.append(limit)
            return [IndexedEvent(*row) for row in self._db.execute(sql, params)]

    def count(self) -> int:
        with self._lock, _translated(self.path):
            return int(self._db.execute("SELECT count(*) FROM events").fetchone()[0])
