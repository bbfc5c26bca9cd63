"""The rebuild places of the PostgreSQL views: a schema per rebuild (``evledger_rebuild_<tag>``),
one per other shard (``<schema>_<p>``), and the swap's ``<schema>_retired``, owned by the
rebuild through a session advisory lock on the rebuild schema's name.

The rebuild takes the lock on a connection of its own, then creates its schema marked with a
comment, before it makes any place, and holds the lock (the connection) for its whole life:
the server drops it when the session ends, however the process ended (a SIGKILL, a machine
that crashed: once the server sees the connection gone). The next rebuild, and `evledger
replay` as it starts, drop the marked schemas (and their shards' and retired ones) whose lock
they can take. Unmarked schemas (made by an earlier version, which had no lock) are left
alone: a rebuild of that version, from this host or another, may still be running.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from projections.databases.postgres import PostgresDatabase, drop_schema, translate
from replay.targets import REBUILD_SCHEMA_PREFIX, Leftover

_MARK = "evledger rebuild: dropped with its shards' schemas once its rebuild's session is gone"
_LOCK = "hashtextextended(%s, 0)"


def _connect(dsn: str) -> Any:
    import psycopg

    return psycopg.connect(dsn, autocommit=True, connect_timeout=10)


@contextmanager
def rebuild_owner(dsn: str, schema: str) -> Iterator[None]:
    """Own rebuild schema ``schema`` and its shards' for the block (a session's advisory
    lock); the schema is created, marked, before the block."""
    import psycopg
    from psycopg import sql

    try:
        connection = _connect(dsn)
    except psycopg.Error as error:
        raise translate(error, PostgresDatabase(dsn, schema).where()) from error
    try:
        try:
            connection.execute(f"SELECT pg_advisory_lock({_LOCK})", [schema])
            connection.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
            )
            connection.execute(
                sql.SQL("COMMENT ON SCHEMA {} IS {}").format(
                    sql.Identifier(schema), sql.Literal(_MARK)
                )
            )
        except psycopg.Error as error:
            raise translate(error, PostgresDatabase(dsn, schema).where()) from error
        yield
    finally:
        connection.close()  # which ends the session, and its lock


def remove_abandoned(dsn: str) -> list[Leftover]:
    """Drop the marked rebuild schemas whose owner's session is gone, each with its shards'
    and retired schemas; what was dropped."""
    import psycopg

    removed: list[Leftover] = []
    try:
        with _connect(dsn) as connection:
            names = [
                str(row[0])
                for row in connection.execute(
                    "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)"
                    " ORDER BY nspname",
                    [REBUILD_SCHEMA_PREFIX],
                )
            ]
            marked = [
                str(row[0])
                for row in connection.execute(
                    "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)"
                    " AND obj_description(oid, 'pg_namespace') = %s",
                    [names, _MARK],
                )
            ]
            for schema in marked:
                removed.extend(_remove_if_abandoned(connection, dsn, schema, names))
    except psycopg.Error as error:
        raise translate(error, PostgresDatabase(dsn).where()) from error
    return removed


def _remove_if_abandoned(
    connection: Any, dsn: str, schema: str, names: list[str]
) -> list[Leftover]:
    if not connection.execute(f"SELECT pg_try_advisory_lock({_LOCK})", [schema]).fetchone()[0]:
        return []  # its rebuild is running
    try:
        family = re.compile(re.escape(schema) + r"(_\d+)?(_retired)?")
        # The marked schema last: while it is there, the others are known to be its.
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
    finally:
        connection.execute(f"SELECT pg_advisory_unlock({_LOCK})", [schema])
