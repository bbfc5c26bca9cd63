"""Per-aggregate audit state whose memory does not grow with the ledger.

The auditor remembers something of every aggregate it has seen (its version, a payment's
hold, whether a refund was issued), and a ledger has millions of aggregates. A SpillMap keeps
the most recently used entries in memory and writes the others to a table of a private,
temporary SQLite database (on disk, deleted when closed): the ledger's events of one
aggregate mostly lie close together, so nearly every lookup is a hit in memory.

A value taken out of the map may be changed in place (it is written back when it leaves
memory), as long as the same map is not used in between.
"""

from __future__ import annotations

import pickle
import sqlite3
from collections import OrderedDict
from typing import Generic, TypeVar, overload

V = TypeVar("V")

# Entries of each map kept in memory (the `audit_state_cache_size` setting).
DEFAULT_CAPACITY = 10_000
# SQLite's own page cache for the spilled entries, in KiB.
_PAGE_CACHE_KIB = 8_192


class SpillFile:
    """One temporary SQLite database holding every spilled map of one audit."""

    def __init__(self) -> None:
        # "" opens a private temporary database that SQLite keeps in a file once it outgrows
        # its page cache, and deletes on close.
        self._connection = sqlite3.connect("", isolation_level=None)
        self._connection.execute(f"PRAGMA cache_size=-{_PAGE_CACHE_KIB}")
        self._connection.execute("PRAGMA journal_mode=OFF")
        self._connection.execute("PRAGMA synchronous=OFF")
        self._tables = 0

    def table(self) -> str:
        """A new, empty table of (key, pickled value)."""
        self._tables += 1
        name = f"spilled_{self._tables}"
        self._connection.execute(
            f"CREATE TABLE {name} (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID"
        )
        return name

    @property
    def connection(self) -> sqlite3.Connection:
        return self._connection

    def close(self) -> None:
        self._connection.close()


class SpillMap(Generic[V]):
    """A str-keyed map: the `capacity` most recently used entries in memory, the rest on disk."""

    def __init__(self, spill: SpillFile, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"a spill map keeps at least one entry in memory, not {capacity}")
        self._db = spill.connection
        self._table = spill.table()
        self._capacity = capacity
        # Evicting a tenth at a time makes the disk writes one executemany each.
        self._evict_batch = max(1, capacity // 10)
        self._memory: OrderedDict[str, V] = OrderedDict()
        self._spilled = False
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __contains__(self, key: str) -> bool:
        return self._load(key)

    def __getitem__(self, key: str) -> V:
        if not self._load(key):
            raise KeyError(key)
        return self._memory[key]

    @overload
    def get(self, key: str) -> V | None: ...
    @overload
    def get(self, key: str, default: V) -> V: ...
    def get(self, key: str, default: V | None = None) -> V | None:
        return self._memory[key] if self._load(key) else default

    def __setitem__(self, key: str, value: V) -> None:
        if not self._load(key):
            self._size += 1
        self._memory[key] = value
        self._memory.move_to_end(key)
        self._evict()

    def setdefault(self, key: str, default: V) -> V:
        if not self._load(key):
            self[key] = default
        return self._memory[key]

    def _load(self, key: str) -> bool:
        """Whether key is in the map; if so it is in memory afterwards, most recent."""
        memory = self._memory
        if key in memory:
            memory.move_to_end(key)
            return True
        if not self._spilled:
            return False
        row = self._db.execute(f"SELECT value FROM {self._table} WHERE key = ?", (key,)).fetchone()
        if row is None:
            return False
        memory[key] = pickle.loads(row[0])
        self._evict()
        return True

    def _evict(self) -> None:
        memory = self._memory
        if len(memory) <= self._capacity:
            return
        count = min(len(memory) - 1, max(self._evict_batch, len(memory) - self._capacity))
        leaving = [memory.popitem(last=False) for _ in range(count)]
        self._db.executemany(
            f"INSERT OR REPLACE INTO {self._table} (key, value) VALUES (?, ?)",
            [(key, pickle.dumps(value, pickle.HIGHEST_PROTOCOL)) for key, value in leaving],
        )
        self._spilled = True
