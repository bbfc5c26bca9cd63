"""The PostgreSQL adapter against the Database contract, on the real server (a schema
per test), and what only a server can do: lose the connection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from psycopg.conninfo import make_conninfo

from projections.databases.errors import DatabaseUnavailable
from projections.databases.port import Database
from projections.databases.postgres import PostgresDatabase, drop_schema
from tests.integration.projections.databases.contract import DatabaseTestCase


class TestPostgresDatabase(DatabaseTestCase):
    def create_database(self, request: pytest.FixtureRequest, tmp_path: Path) -> Database:
        return PostgresDatabase(
            request.getfixturevalue("pg_dsn"), schema=request.getfixturevalue("pg_schema")
        )

    def unavailable_database(self, request: pytest.FixtureRequest, tmp_path: Path) -> Database:
        # Port 1 on loopback: nothing listens there, so the connection is refused.
        dsn = make_conninfo(request.getfixturevalue("pg_dsn"), port=1, connect_timeout=2)
        return PostgresDatabase(dsn)

    @contextmanager
    def held_elsewhere(
        self, db: Database, request: pytest.FixtureRequest, tmp_path: Path
    ) -> Iterator[Database]:
        assert isinstance(db, PostgresDatabase)
        with db.transaction():
            db.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
            impatient = make_conninfo(db.dsn, options="-c lock_timeout=200")
            yield PostgresDatabase(impatient, schema=db.schema)

    def test_a_lost_connection_is_unavailable_and_the_next_call_reconnects(
        self, db: Database, pg_dsn: str
    ) -> None:
        assert isinstance(db, PostgresDatabase)
        pid = db.execute("SELECT pg_backend_pid() AS pid")[0]["pid"]
        admin = PostgresDatabase(pg_dsn)
        try:
            assert admin.execute("SELECT pg_terminate_backend(?) AS done", [pid]) == [
                {"done": True}
            ]
        finally:
            admin.close()
        with pytest.raises(DatabaseUnavailable, match="PostgreSQL") as raised:
            db.execute("SELECT COUNT(*) AS n FROM items")
        assert "password" not in str(raised.value)
        assert db.execute("SELECT COUNT(*) AS n FROM items") == [{"n": 0}]


def test_drop_schema_removes_the_schema_and_its_tables(pg_dsn: str, pg_schema: str) -> None:
    db = PostgresDatabase(pg_dsn, schema=pg_schema)
    db.execute("CREATE TABLE doomed (k {text} PRIMARY KEY)")
    db.close()
    drop_schema(pg_dsn, pg_schema)
    admin = PostgresDatabase(pg_dsn)
    try:
        found = admin.execute(
            "SELECT COUNT(*) AS n FROM information_schema.schemata WHERE schema_name = ?",
            [pg_schema],
        )
    finally:
        admin.close()
    assert found == [{"n": 0}]
    drop_schema(pg_dsn, pg_schema)  # dropping what is gone is no error


def test_drop_schema_on_an_unreachable_server_is_unavailable(pg_dsn: str) -> None:
    with pytest.raises(DatabaseUnavailable, match=r"127\.0\.0\.1:1\b"):
        drop_schema(make_conninfo(pg_dsn, port=1, connect_timeout=2), "anything")
