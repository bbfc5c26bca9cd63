"""Where read models live, are rebuilt and are kept as snapshots: the port every read-model
database offers replay (``ReadModelHome``), and the groups of read models that share one.

Read models that share a database form a group and swap together: the payment history
and refund status (PostgreSQL, or SQLite on the embedded default), and analytics (DuckDB).
Each database backend has its own home module (replay/home_*.py); the composition root
picks them.
"""

from __future__ import annotations

import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

from projections.databases.port import AsyncDatabaseLender, Database, DatabaseLender
from projections.read_model import ReadModel

if TYPE_CHECKING:
    from projections.runner import LedgerSource
    from replay.positions import LedgerPositions
    from replay.swap import LiveSide

REBUILD_SCHEMA_PREFIX = "evledger_rebuild_"
SNAPSHOT_SCHEMA_PREFIX = "snapshot_"
_LABEL = re.compile(r"[a-z0-9][a-z0-9_]{0,39}")


class BadSnapshotName(ValueError):
    """A snapshot name that cannot be a schema or file name."""


@dataclass
class Place:
    """A database made for a rebuild or a snapshot, and how to remove it."""

    db: Database
    where: str
    remove: Callable[[], None]

    def discard(self) -> None:
        """Remove the schema or files (and everything in them)."""
        self.db.close()
        self.remove()


class RebuildOwnershipLost(RuntimeError):
    """A rebuild no longer owns its places (its PostgreSQL session ended): the next rebuild
    may remove them, so it swaps nothing more."""


# A rebuild's check that it still owns its places: raises RebuildOwnershipLost if not.
StillOwned = Callable[[], None]


@dataclass(frozen=True)
class Leftover:
    """A rebuild's place that its rebuild, killed, left behind, and its size."""

    where: str
    size_bytes: int


class ReadModelHome(ABC):
    """One read-model database as replay sees it: the live models, a place beside them for
    a rebuild, a named place for a snapshot, and the swap of rebuilt tables into the live
    ones."""

    @abstractmethod
    def describe(self) -> str:
        """Where the live models are, for a person."""

    @abstractmethod
    def live(self) -> Database:
        """The database the live models are in (and queries read)."""

    @abstractmethod
    def rebuild_place(self, tag: str) -> Place:
        """A new, empty schema or file beside the live one (same server, same directory)."""

    @abstractmethod
    def rebuild_owner(self, tag: str) -> AbstractContextManager[StillOwned]:
        """Own the places of rebuild ``tag`` (every ``shard_processes.part_tag`` of it) for
        the block, by a lock the operating system or the server drops with the process
        however it ends; the block gets a check that it still owns them. Those left are
        removed as the block ends (a leftover for the next rebuild if that fails)."""

    @abstractmethod
    def remove_abandoned_rebuilds(self) -> list[Leftover]:
        """Remove the places of rebuilds whose owner is gone (killed, or its machine
        crashed), never one still owned; what was removed."""

    # The live database admits one process at a time (DuckDB): only the one holding it
    # can checksum it, so a sharded rebuild's workers checksum it before it is held.
    exclusive: ClassVar[bool] = False

    def live_reader(self) -> Database:
        """A connection of its own that reads the live models (read-only where that lets
        several processes read at once)."""
        return self.live()

    def fingerprint(self, db: Database, table: str) -> str | None:
        """``table``'s fingerprint in ``db`` (replay/checksum.py), or None where this
        database cannot hash its rows itself (or the hashing failed)."""
        return None

    @abstractmethod
    def reader(self, place: Place) -> Database:
        """A connection of its own that only reads ``place``; several processes may hold
        one at once (DuckDB lets only one process open a file to write)."""

    @abstractmethod
    def merge(self, into: Place, parts: Sequence[Place], tables: Sequence[str]) -> None:
        """Copy every row of ``tables`` from the places ``parts`` (a sharded rebuild's, one
        per shard, closed) into ``into``, whose tables exist. A row whose key is there
        already is skipped: only reference data (tariffs) is on several shards, and each
        shard writes it alike."""

    @abstractmethod
    def snapshot_place(self, directory: Path, label: str) -> Place:
        """The named snapshot's schema or file, emptied first (a snapshot is rebuilt whole);
        ``directory`` is the snapshot's own directory, laid out like a data dir."""

    @abstractmethod
    def live_side(self, group: ModelGroup, rebuilt: Place) -> LiveSide:
        """The live models of ``group``, held and swapped as this database allows."""

    @abstractmethod
    def query_settings(self, directory: Path, label: str) -> dict[str, str]:
        """The EVLEDGER_* values that point the query commands at the snapshot (passwords
        masked)."""


class ViewsHome(ReadModelHome):
    """The home of the payment history and refund status, which servers also read."""

    @abstractmethod
    def lender(self, pool_size: int) -> DatabaseLender:
        """Lends the live database to one request at a time."""

    @abstractmethod
    def async_lender(self, pool_size: int) -> AsyncDatabaseLender:
        """Lends the live database to one request of an event loop at a time."""


@dataclass(frozen=True)
class ModelGroup:
    """Read models that live in one database."""

    home: ReadModelHome
    classes: tuple[type[ReadModel], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(model_class.name for model_class in self.classes)


def new_tag() -> str:
    return uuid.uuid4().hex[:10]


def check_label(label: str) -> str:
    if not _LABEL.fullmatch(label):  # match() would let a trailing newline through
        raise BadSnapshotName(
            f"snapshot name {label!r}: use 1-40 lower-case letters, digits and '_', "
            "starting with a letter or digit"
        )
    return label


# DuckDB's write-ahead log beside its file, and the sidecars DuckDB 2.0 keeps beside it
# while checkpointing and recovering: each holds changes for the file named before it.
DUCKDB_WALS = (".wal", ".wal.checkpoint", ".wal.recovery")


def database_size(path: Path) -> int | None:
    """The bytes of a database file and the journals beside it (DuckDB's and SQLite's), None
    if none is there; a journal that goes meanwhile (a checkpoint) counts as not there."""
    sizes = []
    for suffix in ("", *DUCKDB_WALS, "-wal", "-shm", "-journal"):
        with suppress(FileNotFoundError):
            sizes.append(Path(f"{path}{suffix}").stat().st_size)
    return sum(sizes) if sizes else None


def remove_database_file(path: Path) -> None:
    for suffix in ("", *DUCKDB_WALS, "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


class ReplaySite(Protocol):
    """What rebuild and point in time need of the process they run in (the composition
    root provides it): the ledger, its positions, and the read models' homes."""

    def ledger_source(self, shard: int | None = None) -> AbstractContextManager[LedgerSource]: ...

    def ledger_sources(self) -> AbstractContextManager[list[LedgerSource]]: ...

    def positions(self, source: LedgerSource) -> LedgerPositions: ...

    def groups(self, names: Sequence[str]) -> list[ModelGroup]: ...

    def shard_names(self) -> list[str]:
        """Each ledger shard as a person names it, shard 0 first (one: unsharded)."""
        ...

    def for_another_process(self) -> ReplaySite:
        """A site like this one with nothing opened yet, for a child process to use."""
        ...

    @property
    def snapshots_dir(self) -> Path: ...
