"""Analytics in its DuckDB file: rebuilt in a file beside it that then takes its name,
snapshots in the snapshot's own directory.

A live path that is a symlink (EVLEDGER_DUCKDB_PATH naming a link to a file on another
disk) is resolved once, by the rebuild's process for its shard processes too: the rebuild
is made beside the file itself and renamed over it, so the link stays and the data stays
where it was (a rename only works within one file system, and renaming over the link would
replace it by a regular file). The readers' copy stays beside the path as configured,
where the projector publishes it and readers look.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from projections.analytics_snapshot import snapshot_path, staged_snapshot
from projections.databases.duckdb import DuckDatabase
from projections.databases.errors import DatabaseBusy
from projections.databases.port import Database
from projections.read_model import ReadModel
from projections.staging import remove_abandoned
from replay.checksum import TableChecksum, fingerprint_of
from replay.duck_file_swap import check_supported, replace_database
from replay.file_leftovers import RebuildFiles
from replay.swap import LiveModelBusy, LiveSide
from replay.targets import (
    Leftover,
    ModelGroup,
    Place,
    ReadModelHome,
    StillOwned,
    remove_database_file,
)

# The column types whose equal values (what DuckDB's hash() hashes alike) canonical_value
# spells alike, DECIMALs of any width and scale too. A table with a column of another type
# (DOUBLE: -0.0 and 0.0; INTERVAL: a month and 30 days; nested types) is not fingerprinted.
_HASHED_BY_VALUE = (
    "('VARCHAR', 'BOOLEAN', 'TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'HUGEINT',"
    " 'UTINYINT', 'USMALLINT', 'UINTEGER', 'UBIGINT', 'TIMESTAMP', 'TIMESTAMP WITH TIME ZONE',"
    " 'DATE')"
)


class DuckHome(ReadModelHome):
    """Analytics in ``path``; ``in_data_dir`` when the path is the data dir's default, so
    that a snapshot is queried by pointing EVLEDGER_DATA_DIR at it."""

    def __init__(
        self,
        path: Path,
        *,
        in_data_dir: bool,
        memory_limit_mib: int | None = None,
        file: Path | None = None,
    ) -> None:
        self.path = path
        self.in_data_dir = in_data_dir
        self.memory_limit_mib = memory_limit_mib
        self._file = file

    def describe(self) -> str:
        return str(self.path)

    def live(self) -> DuckDatabase:
        return DuckDatabase(self.path, memory_limit_mib=self.memory_limit_mib)

    @property
    def file(self) -> Path:
        """The live file itself, symlinks resolved once (a rebuild and its swap act on the
        same file), or as given: a rebuild's shard processes are given their parent's."""
        if self._file is None:
            self._file = self.path.resolve()
        return self._file

    def _file_place(self, path: Path) -> Place:
        db = DuckDatabase(path, memory_limit_mib=self.memory_limit_mib)
        return Place(db, str(path), lambda: remove_database_file(path))

    def rebuild_place(self, tag: str) -> Place:
        check_supported()  # before the rebuild rather than at its swap
        # A copy a killed rebuild or projector was staging: its disk space, before this one.
        remove_abandoned(snapshot_path(self.path))
        return self._file_place(self._rebuilds.place(tag))

    @property
    def _rebuilds(self) -> RebuildFiles:
        """Beside the file itself, like the rebuild's places."""
        return RebuildFiles(self.file, ".duckdb")

    def rebuild_owner(self, tag: str) -> AbstractContextManager[StillOwned]:
        return self._rebuilds.owner(tag)

    def remove_abandoned_rebuilds(self) -> list[Leftover]:
        return self._rebuilds.remove_abandoned()

    exclusive = True

    def live_reader(self) -> DuckDatabase:
        return DuckDatabase(self.path, read_only=True, memory_limit_mib=self.memory_limit_mib)

    def reader(self, place: Place) -> DuckDatabase:
        return DuckDatabase(
            Path(place.where), read_only=True, memory_limit_mib=self.memory_limit_mib
        )

    def fingerprint(self, db: Database, table: str) -> str | None:
        # Not in a transaction of its own: DuckDB nests none. Its checksums are taken
        # outside one, where a failing statement aborts nothing.
        return fingerprint_of(db, self.fingerprint_statement(table))

    def fingerprint_statement(self, table: str) -> str:
        # DuckDB's own hash of each row (the row as a struct, its columns in order: a value
        # moved to another column changes it), summed, with the columns' names and types,
        # which the hash does not show (1 as an INTEGER and as a BIGINT hash alike). Its
        # hash is by value, so only where equal values of a type are spelled alike by
        # canonical_value (the types the read models use, below) is a fingerprint taken;
        # a table with a column of another type has none (h is NULL) and is checksummed.
        # It took a thirtieth of the CPU of an MD5 of each row's JSON (which made a text
        # of every row): the MD5s were a quarter of the workers' compare at 2 million.
        where = (
            "FROM duckdb_columns() WHERE database_name = current_database()"
            f" AND schema_name = current_schema() AND table_name = '{table}'"
        )
        listed = "string_agg(column_name || ' ' || data_type, ', ' ORDER BY column_index)"
        columns = f"SELECT {listed} {where}"
        known = f"data_type IN {_HASHED_BY_VALUE} OR data_type LIKE 'DECIMAL(%'"
        # A collation makes texts it holds alike hash alike ('Ab' and 'ab' under NOCASE)
        # while the type still reads VARCHAR: a table declaring one, or a connection with a
        # default one, has no fingerprint.
        collated = (
            "(SELECT bool_or(sql ILIKE '%collate%') FROM duckdb_tables()"
            " WHERE database_name = current_database() AND schema_name = current_schema()"
            f" AND table_name = '{table}') OR current_setting('default_collation') <> ''"
        )
        hashed = f"SELECT bool_and({known}) AND NOT ({collated}) {where}"
        return (
            f"SELECT count(*) AS n,"
            f" CASE WHEN ({hashed}) THEN coalesce(sum(hash(t)), 0)::VARCHAR END AS h,"
            f" ({columns}) AS columns FROM {table} AS t"
        )

    def merge(self, into: Place, parts: Sequence[Place], tables: Sequence[str]) -> None:
        """ATTACH each part and copy its tables in one transaction (a table without a key
        holds rows keyed by ledger position, unique across shards: no conflict check)."""
        db = into.db
        keyed = {
            str(row["table_name"])
            for row in db.execute(
                "SELECT table_name FROM duckdb_constraints() WHERE database_name ="
                " current_database() AND constraint_type = 'PRIMARY KEY'"
            )
        }
        for part in parts:
            db.execute(f"ATTACH '{part.where}' AS part (READ_ONLY)")
            try:
                with db.transaction():
                    for table in tables:
                        ignore = " OR IGNORE" if table in keyed else ""
                        db.execute(f"INSERT{ignore} INTO {table} SELECT * FROM part.main.{table}")
            finally:
                db.execute("DETACH part")

    def snapshot_place(self, directory: Path, label: str) -> Place:
        path = directory / self.path.name
        remove_database_file(path)
        directory.mkdir(parents=True, exist_ok=True)
        return self._file_place(path)

    def live_side(self, group: ModelGroup, rebuilt: Place) -> LiveSide:
        """A held file is LiveModelBusy: DuckDB allows one writing process."""
        db = DuckDatabase(self.file, memory_limit_mib=self.memory_limit_mib)
        try:
            db.execute("SELECT 1")
        except DatabaseBusy as error:
            raise LiveModelBusy(
                f"{db.path} is open in another process ({str(error).splitlines()[0]}); DuckDB "
                "allows one writer, so stop the analytics projector (`evledger project` or "
                "`evledger run`) for the swap and run the replay again"
            ) from None
        return DuckLive(db, group, rebuilt, Path(rebuilt.where), readers_of=self.path)

    def query_settings(self, directory: Path, label: str) -> dict[str, str]:
        if self.in_data_dir:
            return {"EVLEDGER_DATA_DIR": str(directory)}
        return {"EVLEDGER_DUCKDB_PATH": str(directory / self.path.name)}


class DuckLive(LiveSide):
    """Live analytics in its DuckDB file; the rebuild in a file beside it; the readers'
    copy beside ``readers_of``, the live path as configured."""

    db: DuckDatabase

    def __init__(
        self,
        db: DuckDatabase,
        group: ModelGroup,
        rebuilt: Place,
        rebuilt_path: Path,
        *,
        readers_of: Path,
    ) -> None:
        super().__init__(db, group, rebuilt)
        self.rebuilt_path = rebuilt_path
        self.readers_of = readers_of

    def table_exists(self, table: str) -> bool:
        return bool(
            self.db.execute(
                "SELECT 1 AS found FROM information_schema.tables WHERE table_catalog ="
                " current_database() AND table_schema = 'main' AND table_name = ?",
                [table],
            )
        )

    def checksums(
        self, model: ReadModel, like: Mapping[str, TableChecksum] | None = None
    ) -> dict[str, TableChecksum]:
        """The live tables' checksums with one file's buffer full at a time: the rebuilt
        file's is freed before (it is opened again for its own checksums), the live file's
        after (its connection stays open: it holds the lock)."""
        self.rebuilt.db.close()
        sums = super().checksums(model, like)
        self.db.release_buffer()
        return sums

    @contextmanager
    def held(self) -> Iterator[dict[str, int | None]]:
        # This process holds the file's only write lock: nothing else moves the models.
        yield self.positions()

    def swap_in(self, rebuilt: Sequence[ReadModel], positions: dict[str, int]) -> None:
        """The rebuilt file, at its positions, takes the live file's name in one rename
        (a process opens the old file or the new one), and a copy of it becomes the readers'
        (replay/duck_file_swap.py)."""
        # ``positions`` are those the rebuilt file's tracking rows already hold (the rebuild
        # brought each model to exactly there): the file moves whole, nothing to set.
        place = self.rebuilt.db
        place.execute("CHECKPOINT")
        place.close()
        self.db.execute("CHECKPOINT")
        # DuckDB's lock goes with the connection; the rename takes its own, which fails if a
        # process has opened the file since.
        self.db.close()
        with staged_snapshot(self.rebuilt_path, self.readers_of):
            replace_database(self.rebuilt_path, self.db.path, self.readers_of)
