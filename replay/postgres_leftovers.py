"""The rebuild places of the PostgreSQL views: a schema per rebuild (``evledger_rebuild_<tag>``),
one per other shard (``<schema>_<p>``), and the swap's ``<schema>_retired``, owned by the
rebuild through a session advisory lock on the rebuild schema's name.

The rebuild takes the lock on a connection of its own, then creates its schema marked with a
comment, before it makes any place, and holds the lock (the connection) for its whole life:
the server drops it when the session ends, however the process ended (a SIGKILL, a machine
that crashed: once the server sees the connection gone). The next rebuild drops the marked
schemas (and their shards' and retired ones) whose lock it can take. Unmarked schemas (made
by an earlier version, which had no lock) are left alone: a rebuild of that version, from
this host or another, may still be running; so are schemas of another role (not ours to
drop), and one that cannot be dropped is said in a warning, the others go.

The lock session is idle for most of the rebuild: TCP keepalives keep it (and tell a dead
peer), and the rebuild checks it still holds the lock (``pg_locks``) before it merges or
swaps, failing in one line if it lost it (its places may be another's leftovers by then).
A pooler in transaction mode (PgBouncer's ``pool_mode=transaction``) hands a session's
statements to any server connection, so a session lock means nothing there: rebuilds need
a direct connection or a session-mode pool.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from projections.databases.errors import ReadModelDatabaseError, first_line
from projections.databases.postgres import PostgresDatabase, drop_schema, translate
from replay.targets import REBUILD_SCHEMA_PREFIX, Leftover, RebuildOwnershipLost, StillOwned

log = logging.getLogger("evledger.replay")

_MARK = "evledger rebuild: dropped with its shards' schemas once its rebuild's session is gone"
_LOCK = "hashtextextended(%s, 0)"
# The owner's idle session: probed after 30 s of silence, given up after 3 missed probes.
_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10}


def _connect(dsn: str, **options: Any) -> Any:
    import psycopg

    return psycopg.connect(dsn, autocommit=True, connect_timeout=10, **options)


@contextmanager
def rebuild_owner(dsn: str, schema: str) -> Iterator[StillOwned]:
    """Own rebuild schema ``schema`` and its shards' for the block (a session's advisory
    lock), which gets the check that the lock is still held; the schema is created,
    marked, before the block, and dropped with its shards' as it ends."""
    import psycopg
    from psycopg import sql

    where = PostgresDatabase(dsn, schema).where()
    try:
        connection = _connect(dsn, keepalives_count=3, **_KEEPALIVES)
    except psycopg.Error as error:
        raise translate(error, where) from error
    key: int | None = None
    try:
        try:
            (key,) = connection.execute(f"SELECT {_LOCK}", [schema]).fetchone()
            connection.execute("SELECT pg_advisory_lock(%s)", [key])
            connection.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
            )
            connection.execute(
                sql.SQL("COMMENT ON SCHEMA {} IS {}").format(
                    sql.Identifier(schema), sql.Literal(_MARK)
                )
            )
        except psycopg.Error as error:
            raise translate(error, where) from error

        def still_owned() -> None:
            _check_held(connection, key, where)

        yield still_owned
    finally:
        try:
            if key is not None:
                _drop_own(connection, dsn, schema, key, where)
        finally:
            connection.close()  # which ends the session, and its lock


def _drop_own(connection: Any, dsn: str, schema: str, key: int, where: str) -> None:
    """As the owner's block ends: drop its schemas while it still owns them (if it does not,
    they are the next sweep's), a warning if they cannot be dropped."""
    import psycopg

    try:
        _check_held(connection, key, where)
        _drop_family(connection, dsn, schema, _names(connection))
    except (RebuildOwnershipLost, ReadModelDatabaseError, psycopg.Error) as error:
        log.warning("cannot drop the rebuild's schemas (the next rebuild will): %s", error)


def _check_held(connection: Any, key: int, where: str) -> None:
    """RebuildOwnershipLost unless this session holds advisory lock ``key``."""
    import psycopg

    # pg_locks shows a bigint key as two 32-bit halves (objsubid 1: a one-key lock).
    halves = [(key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF]
    try:
        row = connection.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND pid = pg_backend_pid() AND objsubid = 1 AND classid::bigint = %s"
            " AND objid::bigint = %s",
            halves,
        ).fetchone()
    except psycopg.Error as error:
        raise RebuildOwnershipLost(
            f"the rebuild lost its session owning {where}: {first_line(error)}"
        ) from error
    if not row[0]:
        raise RebuildOwnershipLost(f"the rebuild's session no longer holds its lock on {where}")


def _names(connection: Any) -> list[str]:
    """The rebuild schemas this role owns (another role's are not ours to drop)."""
    return [
        str(row[0])
        for row in connection.execute(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)"
            " AND nspowner = current_user::regrole ORDER BY nspname",
            [REBUILD_SCHEMA_PREFIX],
        )
    ]


def remove_abandoned(dsn: str) -> list[Leftover]:
    """Drop the marked rebuild schemas whose owner's session is gone, each with its shards'
    and retired schemas; what was dropped. One that cannot be dropped is a warning."""
    import psycopg

    removed: list[Leftover] = []
    try:
        with _connect(dsn) as connection:
            names = _names(connection)
            marked = [
                str(row[0])
                for row in connection.execute(
                    "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)"
                    " AND obj_description(oid, 'pg_namespace') = %s",
                    [names, _MARK],
                )
            ]
            for schema in marked:
                try:
                    removed.extend(_remove_if_abandoned(connection, dsn, schema, names))
                except ReadModelDatabaseError as error:
                    log.warning("cannot drop the killed rebuild's %s: %s", schema, error)
    except psycopg.Error as error:
        raise translate(error, PostgresDatabase(dsn).where()) from error
    return removed


def _remove_if_abandoned(
    connection: Any, dsn: str, schema: str, names: list[str]
) -> list[Leftover]:
    if not connection.execute(f"SELECT pg_try_advisory_lock({_LOCK})", [schema]).fetchone()[0]:
        return []  # its rebuild is running
    try:
        return _drop_family(connection, dsn, schema, names)
    finally:
        connection.execute(f"SELECT pg_advisory_unlock({_LOCK})", [schema])


def _drop_family(connection: Any, dsn: str, schema: str, names: list[str]) -> list[Leftover]:
    """Drop ``schema`` with its shards' and retired schemas (among ``names``), the marked
    one last: while it is there, the others are known to be its. What was dropped."""
    family = re.compile(re.escape(schema) + r"(_\d+)?(_retired)?")
    ours = sorted((name for name in names if family.fullmatch(name)), key=lambda n: n == schema)
    removed = []
    for name in ours:
        size = connection.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s"
            " AND c.relkind IN ('r', 'm', 'p')",
            [name],
        ).fetchone()[0]
        drop_schema(dsn, name)
        removed.append(Leftover(f"schema {name}", int(size)))
    return removed
