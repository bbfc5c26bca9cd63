"""Read models in PostgreSQL: live in the DSN's schema, rebuilt in a schema of its own and
moved in by ALTER TABLE ... SET SCHEMA, snapshots in a schema named after them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from projections.databases.errors import ReadModelDatabaseError
from projections.databases.port import AsyncDatabaseLender, Database, DatabaseLender, Row
from projections.databases.postgres import PostgresDatabase, PostgresPool, drop_schema
from projections.read_model import ReadModel
from replay.checksum import fingerprint_text
from replay.postgres_leftovers import rebuild_owner, remove_abandoned
from replay.swap import LiveSide
from replay.targets import (
    REBUILD_SCHEMA_PREFIX,
    SNAPSHOT_SCHEMA_PREFIX,
    Leftover,
    ModelGroup,
    Place,
    StillOwned,
    ViewsHome,
)

# The column types whose equal values (what PostgreSQL's hash functions hash alike)
# canonical_value spells alike, with their type modifiers (numeric(14,3)); jsonb as text.
_HASHED_BY_VALUE = frozenset(
    {
        "smallint",
        "integer",
        "bigint",
        "boolean",
        "numeric",
        "text",
        "character varying",
        "timestamp with time zone",
        "timestamp without time zone",
        "date",
        "jsonb",
    }
)


def _columns(db: Database, table: str) -> list[Row]:
    """``table``'s columns in order: name, type (and as declared, with its modifier:
    numeric(14,3)), and whether its
    collation (if any) is deterministic (equal texts are equal bytes)."""
    return db.execute(
        "SELECT a.attname AS name, a.atttypid::regtype::text AS kind,"
        " format_type(a.atttypid, a.atttypmod) AS declared,"
        " coalesce(c.collisdeterministic, true) AS deterministic"
        " FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation"
        " WHERE a.attrelid = CAST(? AS regclass) AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY a.attnum",
        [table],
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class PostgresHome(ViewsHome):
    """The payment history and refund status on a PostgreSQL server."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def describe(self) -> str:
        return "PostgreSQL (DSN search_path)"

    def live(self) -> PostgresDatabase:
        return PostgresDatabase(self.dsn)

    def lender(self, pool_size: int) -> DatabaseLender:
        return PostgresPool(self.dsn, pool_size)

    def async_lender(self, pool_size: int) -> AsyncDatabaseLender:
        from projections.databases.postgres_async import AsyncPostgresPool

        return AsyncPostgresPool(self.dsn, pool_size)

    def _schema_place(self, schema: str) -> Place:
        return Place(
            PostgresDatabase(self.dsn, schema=schema),
            f"schema {schema}",
            lambda: drop_schema(self.dsn, schema),
        )

    def rebuild_place(self, tag: str) -> Place:
        return self._schema_place(f"{REBUILD_SCHEMA_PREFIX}{tag}")

    def rebuild_owner(self, tag: str) -> AbstractContextManager[StillOwned]:
        return rebuild_owner(self.dsn, f"{REBUILD_SCHEMA_PREFIX}{tag}")

    def remove_abandoned_rebuilds(self) -> list[Leftover]:
        return remove_abandoned(self.dsn)

    def reader(self, place: Place) -> PostgresDatabase:
        return PostgresDatabase(self.dsn, schema=place.where.removeprefix("schema "))

    def fingerprint(self, db: Database, table: str) -> str | None:
        # In a savepoint inside the held live side's transaction: a failure aborts only it.
        try:
            with db.transaction():
                statement = self.fingerprint_statement(table, _columns(db, table))
                row = db.execute(statement)[0] if statement is not None else None
        except ReadModelDatabaseError:
            return None
        return None if row is None else fingerprint_text(row)

    def fingerprint_statement(self, table: str, columns: Sequence[Row]) -> str | None:
        """PostgreSQL's own hash of each row (``hash_record_extended`` of its columns in
        order, hashed again, with two seeds: 128 bits), summed, and the columns' names and
        types; None where a column's type is not one whose equal values canonical_value spells alike
        (jsonb is hashed as its text: 1 and 1.0 are equal numbers, spelled apart), or text
        has a collation in which other texts are equal. MD5 of each row's text cost the
        server more than spelling the rows for the checksum (hashing the values costs it
        less): only the tables whose fingerprint differs from the rebuilt twin's are
        checksummed on the live side."""
        parts = []
        for column in columns:
            kind = str(column["kind"])
            if kind not in _HASHED_BY_VALUE or not column["deterministic"]:
                return None
            name = _quoted(str(column["name"]))
            parts.append(f"{name}::text" if kind == "jsonb" else name)
        if not parts:
            return None
        row = f"ROW({', '.join(parts)})"
        described = ", ".join(f"{column['name']} {column['declared']}" for column in columns)
        # Each row's hash hashed again before the sum: hash_record_extended is 31 times the
        # hash so far plus each column's, linear, so a sum of it only sums each column's
        # hashes and values swapped between rows would keep it.
        sums = [
            f"coalesce(sum(hashint8extended(hash_record_extended({row}, {seed}), {seed})), 0)"
            for seed in (0, 1)
        ]
        return (
            f"SELECT count(*) AS n, {sums[0]}::text || ':' || {sums[1]}::text AS h,"
            f" {_literal(described)} AS columns FROM {table}"
        )

    def merge(self, into: Place, parts: Sequence[Place], tables: Sequence[str]) -> None:
        """Copy each part schema's rows into the rebuild schema in one transaction
        (generated columns are computed again)."""
        db = into.db
        with db.transaction():
            for table in tables:
                listed = ", ".join(
                    str(row["column_name"])
                    for row in db.execute(
                        "SELECT column_name FROM information_schema.columns WHERE table_schema"
                        " = current_schema() AND table_name = ? AND is_generated = 'NEVER'"
                        " ORDER BY ordinal_position",
                        [table],
                    )
                )
                for part in parts:
                    schema = _quoted(part.where.removeprefix("schema "))
                    db.execute(
                        f"INSERT INTO {table} ({listed}) SELECT {listed} FROM {schema}.{table}"
                        " ON CONFLICT DO NOTHING"
                    )

    def snapshot_place(self, directory: Path, label: str) -> Place:
        schema = f"{SNAPSHOT_SCHEMA_PREFIX}{label}"
        drop_schema(self.dsn, schema)
        return self._schema_place(schema)

    def live_side(self, group: ModelGroup, rebuilt: Place) -> LiveSide:
        rebuilt_schema = rebuilt.where.removeprefix("schema ")
        return PostgresLive(self.live(), group, rebuilt, rebuilt_schema)

    def query_settings(self, directory: Path, label: str) -> dict[str, str]:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = conninfo_to_dict(self.dsn)
        if "password" in params:
            params["password"] = "***"
        params["options"] = f"-csearch_path={SNAPSHOT_SCHEMA_PREFIX}{label}"
        return {"EVLEDGER_PG_DSN": make_conninfo("", **params)}


class PostgresLive(LiveSide):
    """Live models in the DSN's schema; the rebuild in a schema of its own."""

    db: PostgresDatabase

    def __init__(
        self, db: PostgresDatabase, group: ModelGroup, rebuilt: Place, rebuilt_schema: str
    ) -> None:
        super().__init__(db, group, rebuilt)
        self.rebuilt_schema = rebuilt_schema
        self.retired_schema: str | None = None

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
        live_schema = str(self.db.execute("SELECT current_schema() AS name")[0]["name"])
        rebuilt_schema = self.rebuilt_schema
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

    def after_swap(self) -> None:
        """Once the swap has committed: drop the schema the old tables were moved to."""
        if self.retired_schema is not None:
            drop_schema(self.db.dsn, self.retired_schema)
            self.retired_schema = None
