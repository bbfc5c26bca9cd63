"""The read-model database for requests: a PostgreSQL connection pool, or the embedded
default's SQLite file, lent to one request at a time as a ``projections.sql.Database``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from api.problems import Problem
from projections.sql import POSTGRES, Database, Dialect, Row, SqliteDatabase

if TYPE_CHECKING:
    from cli.settings import Settings

# Seconds a request waits for a free connection before it is told the service is busy.
_POOL_TIMEOUT_S = 5.0


class BorrowedPostgres:
    """A pooled connection behind the read models' Database interface (autocommit)."""

    dialect: Dialect = POSTGRES

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._connection.transaction():
            yield

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = self._connection.execute(self.dialect.sql(statement), params or None)
        if cursor.description is None:
            return []
        rows: list[Row] = cursor.fetchall()
        return rows

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._connection.cursor() as cursor:
            cursor.executemany(self.dialect.sql(statement), rows)

    def close(self) -> None:
        """The pool takes the connection back; nothing to do here."""


class ViewsDatabase:
    """Lends the payment history / refund status database to one request at a time."""

    def __init__(self, settings: Settings, pool_size: int = 20) -> None:
        self._pool: Any = None
        self._sqlite_path = None
        if settings.pg_dsn is not None:
            from psycopg.rows import dict_row
            from psycopg_pool import ConnectionPool

            self._pool = ConnectionPool(
                settings.pg_dsn,
                min_size=1,
                max_size=pool_size,
                kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": 5},
                open=False,
                name="evledger-api",
            )
        else:
            from consumers.projection_targets import EMBEDDED_VIEWS_FILE

            self._sqlite_path = settings.data_dir / EMBEDDED_VIEWS_FILE

    @property
    def kind(self) -> str:
        return "postgresql" if self._pool is not None else "sqlite"

    def open(self) -> None:
        if self._pool is not None:
            # Do not wait for PostgreSQL here: the server starts and /readyz says it is down.
            self._pool.open(wait=False)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    @contextmanager
    def connection(self) -> Iterator[Database]:
        """The database for one request; outages become a 503 problem."""
        import sqlite3

        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            if self._pool is not None:
                with self._pool.connection(timeout=_POOL_TIMEOUT_S) as connection:
                    yield BorrowedPostgres(connection)
            else:
                assert self._sqlite_path is not None
                db = SqliteDatabase(self._sqlite_path)
                try:
                    yield db
                finally:
                    db.close()
        except PoolTimeout:
            raise Problem(
                503, "the read-model database is unreachable or busy; try again shortly"
            ) from None
        except (psycopg.OperationalError, sqlite3.OperationalError) as error:
            raise Problem(503, _outage(error)) from None
        except psycopg.errors.UndefinedTable:
            raise Problem(
                503, "the read models are not built yet (run `evledger project`)"
            ) from None


def _outage(error: Exception) -> str:
    text = str(error)
    if "no such table" in text:
        return "the read models are not built yet (run `evledger project`)"
    # The driver's message can name the server but never carries the password.
    return "the read-model database is unavailable: " + (text.splitlines()[0] if text else "")
