"""Read models in the embedded default's SQLite file: rebuilt in a file beside it and
copied in within one transaction, snapshots in the snapshot's own directory."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from projections.databases.port import AsyncDatabaseLender, Database, DatabaseLender
from projections.databases.sqlite import SqliteDatabase, SqliteLender
from projections.read_model import ReadModel
from replay.file_leftovers import RebuildFiles
from replay.swap import LiveSide
from replay.targets import (
    Leftover,
    ModelGroup,
    Place,
    StillOwned,
    ViewsHome,
    remove_database_file,
)


class SqliteHome(ViewsHome):
    """The payment history and refund status in ``path`` (the embedded default)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def describe(self) -> str:
        return str(self.path)

    def live(self) -> SqliteDatabase:
        return SqliteDatabase(self.path)

    def lender(self, pool_size: int) -> DatabaseLender:
        return SqliteLender(self.path)

    def async_lender(self, pool_size: int) -> AsyncDatabaseLender:
        from projections.databases.threaded import ThreadedLender

        return ThreadedLender(SqliteLender(self.path))

    @staticmethod
    def _file_place(path: Path) -> Place:
        return Place(SqliteDatabase(path), str(path), lambda: remove_database_file(path))

    @property
    def _rebuilds(self) -> RebuildFiles:
        return RebuildFiles(self.path, ".sqlite3")

    def rebuild_place(self, tag: str) -> Place:
        return self._file_place(self._rebuilds.place(tag))

    def rebuild_owner(self, tag: str) -> AbstractContextManager[StillOwned]:
        return self._rebuilds.owner(tag)

    def remove_abandoned_rebuilds(self) -> list[Leftover]:
        return self._rebuilds.remove_abandoned()

    def reader(self, place: Place) -> SqliteDatabase:
        return SqliteDatabase(Path(place.where))

    def merge(self, into: Place, parts: Sequence[Place], tables: Sequence[str]) -> None:
        """ATTACH each part and copy its rows in one transaction, stored values as they are
        (generated columns are computed again)."""
        db = into.db
        for part in parts:
            db.execute("ATTACH DATABASE ? AS part", [part.where])
            try:
                with db.transaction():
                    for table in tables:
                        listed = ", ".join(_stored_columns(db, table))
                        db.execute(
                            f"INSERT OR IGNORE INTO main.{table} ({listed})"
                            f" SELECT {listed} FROM part.{table}"
                        )
            finally:
                db.execute("DETACH DATABASE part")

    def snapshot_place(self, directory: Path, label: str) -> Place:
        path = directory / self.path.name
        remove_database_file(path)
        directory.mkdir(parents=True, exist_ok=True)
        return self._file_place(path)

    def live_side(self, group: ModelGroup, rebuilt: Place) -> LiveSide:
        return SqliteLive(self.live(), group, rebuilt, Path(rebuilt.where))

    def query_settings(self, directory: Path, label: str) -> dict[str, str]:
        return {"EVLEDGER_DATA_DIR": str(directory)}


def _stored_columns(db: Database, table: str) -> list[str]:
    """The columns a row of ``main.table`` stores (not the generated ones)."""
    return [
        str(row["name"])
        for row in db.execute(f"PRAGMA main.table_xinfo({table})")
        if row["hidden"] == 0
    ]


class SqliteLive(LiveSide):
    """Live models in the embedded views file; the rebuild in a file beside it."""

    db: SqliteDatabase

    def __init__(
        self, db: SqliteDatabase, group: ModelGroup, rebuilt: Place, rebuilt_path: Path
    ) -> None:
        super().__init__(db, group, rebuilt)
        self.rebuilt_path = rebuilt_path

    def table_exists(self, table: str) -> bool:
        return bool(
            self.db.execute(
                "SELECT 1 AS found FROM main.sqlite_master WHERE type = 'table' AND name = ?",
                [table],
            )
        )

    @contextmanager
    def held(self) -> Iterator[dict[str, int | None]]:
        # The rebuilt file is attached first (ATTACH cannot run inside a transaction), so
        # the swap copies its rows inside SQLite; BEGIN IMMEDIATE then locks it too, which
        # nothing else writes. The file's write lock makes a live projector wait.
        self.db.execute("ATTACH DATABASE ? AS rebuilt", [str(self.rebuilt_path)])
        try:
            with self.db.transaction():
                yield self.positions()
        finally:
            self.db.execute("DETACH DATABASE rebuilt")

    def swap_in(self, rebuilt: Sequence[ReadModel], positions: dict[str, int]) -> None:
        # Stored values are copied as they are (generated columns are computed again); the
        # indexes are built once the rows are in, which is cheaper than row by row.
        for model in rebuilt:
            for table in model.tables:
                self.db.execute(f"DROP TABLE IF EXISTS main.{table}")
            indexes = [statement for statement in model.ddl if _makes_index(statement)]
            for statement in model.ddl:
                if statement not in indexes:
                    self.db.execute(statement)
            for table in model.tables:
                listed = ", ".join(_stored_columns(self.db, table))
                self.db.execute(
                    f"INSERT INTO main.{table} ({listed}) SELECT {listed} FROM rebuilt.{table}"
                )
            for statement in indexes:
                self.db.execute(statement)
        self._set_positions(positions)


def _makes_index(statement: str) -> bool:
    return statement.lstrip().upper().startswith(("CREATE INDEX", "CREATE UNIQUE INDEX"))
