"""The live side of a rebuild: hold the live models still, checksum them, and swap the
rebuilt tables in atomically, so a query sees the old model or the new one, never a mix.

PostgreSQL moves tables between schemas in one transaction that first locks the live
models' tracking rows: a live projector in another process waits on that lock, then its
compare-and-set fails (or, if the rebuild stands exactly where it expected, succeeds on the
new tables) and it carries on from the swapped-in position. SQLite and DuckDB copy the
rebuilt tables into the live file in one transaction, so the file a live process has open
is never replaced behind its back.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from consumers.projector import LedgerSource
from projections.analytics_snapshot import publish_snapshot
from projections.read_model import LEDGER_APPLICATION, ReadModel
from projections.sql import Database, DuckDatabase, PostgresDatabase, SqliteDatabase
from projections.tracking import TRACKING_TABLE, create_tracking
from replay.checksum import TableChecksum, model_checksums
from replay.ledger_prefix import project_to
from replay.targets import ModelGroup, Place, drop_schema


class LiveModelBusy(RuntimeError):
    """The live analytics file is held by another process (DuckDB allows one writer)."""


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class LiveSide(ABC):
    """One group's live read models and the rebuilt place that may replace them."""

    def __init__(self, db: Database, group: ModelGroup, rebuilt: Place) -> None:
        self.db = db
        self.group = group
        self.rebuilt = rebuilt
        self.models: list[ReadModel] = [model_class(db) for model_class in group.classes]
        self.retired_schema: str | None = None

    @abstractmethod
    def table_exists(self, table: str) -> bool: ...

    def present(self, model: ReadModel) -> bool:
        """The live model has its tables and a tracked position."""
        return self.table_exists(TRACKING_TABLE) and all(
            self.table_exists(table) for table in model.tables
        )

    def positions(self) -> dict[str, int | None]:
        """Each live model's position; None where there is no live model yet."""
        present = [model for model in self.models if self.present(model)]
        found: dict[str, int] = {}
        if present:
            placeholders = ", ".join("?" for _ in present)
            rows = self.db.execute(
                f"SELECT projection_name, notification_id FROM {TRACKING_TABLE}"
                f" WHERE projection_name IN ({placeholders}){self.lock_clause}",
                [model.name for model in present],
            )
            found = {str(row["projection_name"]): int(row["notification_id"]) for row in rows}
        return {model.name: found.get(model.name) for model in self.models}

    lock_clause = ""

    def catch_up(self, source: LedgerSource, until: int) -> None:
        """Bring the live models that exist to ``until`` at least, as their projector would."""
        present = [model for model in self.models if self.present(model)]
        project_to(source, present, until)

    def checksums(self, model: ReadModel) -> dict[str, TableChecksum]:
        return model_checksums(model)

    @abstractmethod
    def held(self) -> Any:
        """A context manager: the live models stand still inside it; yields positions()."""

    @abstractmethod
    def swap_in(self, rebuilt: Sequence[ReadModel], positions: dict[str, int]) -> None:
        """Inside held(): replace the live tables with the rebuilt ones, set positions."""

    def after_swap(self) -> None:
        """Once the swap has committed: drop the schema the old tables were moved to."""
        if self.retired_schema is not None and isinstance(self.db, PostgresDatabase):
            drop_schema(self.db.dsn, self.retired_schema)
            self.retired_schema = None

    def close(self) -> None:
        self.db.close()

    def _set_positions(self, positions: dict[str, int]) -> None:
        for name, position in positions.items():
            create_tracking(self.db, name, LEDGER_APPLICATION)
            self.db.execute(
                f"UPDATE {TRACKING_TABLE} SET notification_id = ? WHERE projection_name = ?",
                [position, name],
            )


class PostgresLive(LiveSide):
    """Live models in the DSN's schema; the rebuild in a schema of its own."""

    db: PostgresDatabase
    # Waits for a live projector's batch in flight and keeps the next one out.
    lock_clause = " FOR UPDATE"

    def table_exists(self, table: str) -> bool:
        rows = self.db.execute("SELECT to_regclass(?::text) IS NOT NULL AS found", [table])
        return bool(rows[0]["found"])

    @contextmanager
    def held(self) -> Iterator[dict[str, int | None]]:
        with self.db.transaction():
            # A long query on a live table must not stall the live projector for ever
            # behind our lock: give up (and keep the live model) instead.
            self.db.execute("SET LOCAL lock_timeout = '30s'")
            yield self.positions()

    def swap_in(self, rebuilt: Sequence[ReadModel], positions: dict[str, int]) -> None:
        assert isinstance(self.rebuilt.db, PostgresDatabase) and self.rebuilt.db.schema
        live_schema = str(self.db.execute("SELECT current_schema() AS name")[0]["name"])
        rebuilt_schema = self.rebuilt.db.schema
        retired = f"{rebuilt_schema}_retired"
        self.db.execute(f"CREATE SCHEMA {_quoted(retired)}")
        self.retired_schema = retired
        for model in rebuilt:
            for table in model.tables:
                if self.table_exists(table):
                    self.db.execute(
                        f"ALTER TABLE {_quoted(live_schema)}.{_quoted(table)}"
                        f" SET SCHEMA {_quoted(retired)}"
                    )
                self.db.execute(
                    f"ALTER TABLE {_quoted(rebuilt_schema)}.{_quoted(table)}"
                    f" SET SCHEMA {_quoted(live_schema)}"
                )
        self._set_positions(positions)


class SqliteLive(LiveSide):
    """Live models in the embedded views file; the rebuild in a file beside it."""

    db: SqliteDatabase

    def table_exists(self, table: str) -> bool:
        return bool(
            self.db.execute(
                "SELECT 1 AS found FROM main.sqlite_master WHERE type = 'table' AND name = ?",
                [table],
            )
        )

    @contextmanager
    def held(self) -> Iterator[dict[str, int | None]]:
        # BEGIN IMMEDIATE takes the file's write lock: a live projector waits for it.
        with self.db.transaction():
            yield self.positions()

    def swap_in(self, rebuilt: Sequence[ReadModel], positions: dict[str, int]) -> None:
        assert isinstance(self.rebuilt.db, SqliteDatabase)
        # Not ATTACH: it cannot run inside the held transaction, and attaching first would
        # make BEGIN IMMEDIATE lock the rebuilt file too. A plain connection reads the
        # stored values unconverted, so they are copied exactly.
        source = sqlite3.connect(self.rebuilt.db.path)
        try:
            for model in rebuilt:
                for table in model.tables:
                    self.db.execute(f"DROP TABLE IF EXISTS main.{table}")
                for statement in model.ddl:
                    self.db.execute(statement)
                for table in model.tables:
                    columns = [
                        str(name)
                        for _, name, _, _, _, _, hidden in source.execute(
                            f"PRAGMA table_xinfo({table})"
                        )
                        if hidden == 0  # generated columns are computed, not copied
                    ]
                    listed = ", ".join(columns)
                    rows = source.execute(f"SELECT {listed} FROM {table}").fetchall()
                    if rows:
                        self.db.executemany(
                            f"INSERT INTO main.{table} ({listed})"
                            f" VALUES ({', '.join('?' for _ in columns)})",
                            rows,
                        )
        finally:
            source.close()
        self._set_positions(positions)


class DuckLive(LiveSide):
    """Live analytics in its DuckDB file; the rebuild in a file beside it."""

    db: DuckDatabase

    def table_exists(self, table: str) -> bool:
        return bool(
            self.db.execute(
                "SELECT 1 AS found FROM information_schema.tables WHERE table_catalog ="
                " current_database() AND table_schema = 'main' AND table_name = ?",
                [table],
            )
        )

    @contextmanager
    def held(self) -> Iterator[dict[str, int | None]]:
        # This process holds the file's only write lock: nothing else moves the models.
        yield self.positions()

    def swap_in(self, rebuilt: Sequence[ReadModel], positions: dict[str, int]) -> None:
        assert isinstance(self.rebuilt.db, DuckDatabase)
        self.rebuilt.db.execute("CHECKPOINT")
        self.rebuilt.db.close()  # one process may not open a file twice
        self.db.execute(f"ATTACH '{self.rebuilt.db.path}' AS rebuilt (READ_ONLY)")
        try:
            with self.db.transaction():
                for model in rebuilt:
                    live_model = type(model)(self.db)
                    for statement in live_model.drop_statements():
                        self.db.execute(statement)
                    for statement in live_model.ddl:
                        self.db.execute(statement)
                    for table in model.tables:
                        self.db.execute(f"INSERT INTO {table} SELECT * FROM rebuilt.main.{table}")
                self._set_positions(positions)
        finally:
            self.db.execute("DETACH rebuilt")
        publish_snapshot(self.db)


def open_live(db: Database, group: ModelGroup, rebuilt: Place) -> LiveSide:
    """The live side for the group's backend; a held DuckDB file is LiveModelBusy."""
    if isinstance(db, PostgresDatabase):
        return PostgresLive(db, group, rebuilt)
    if isinstance(db, SqliteDatabase):
        return SqliteLive(db, group, rebuilt)
    assert isinstance(db, DuckDatabase)
    import duckdb

    try:
        db.execute("SELECT 1")
    except duckdb.IOException as error:
        raise LiveModelBusy(
            f"{db.path} is open in another process ({str(error).splitlines()[0]}); DuckDB "
            "allows one writer, so stop the analytics projector (`evledger project` or "
            "`evledger run`) for the swap and run the replay again"
        ) from None
    return DuckLive(db, group, rebuilt)
