"""The read-model databases' own errors: every adapter translates its driver's errors into
these (the driver's error stays as ``__cause__``), so callers catch one tree whatever the
backend.

They follow the DB-API families of ``eventsourcing.persistence`` and are subclasses of
them, so code that catches the library's ``PersistenceError`` catches these too.
"""

from __future__ import annotations

from eventsourcing.persistence import (
    DataError,
    IntegrityError,
    OperationalError,
    PersistenceError,
    ProgrammingError,
)


class ReadModelDatabaseError(PersistenceError):
    """A read-model database failed; the message names the database and the reason."""


class DatabaseUnavailable(ReadModelDatabaseError, OperationalError):
    """The database cannot be reached or opened, or the connection was lost."""


class DatabaseBusy(ReadModelDatabaseError, OperationalError):
    """Another connection or process holds what this one needs (a DuckDB file, a lock)
    and it was not released in time; trying again later may succeed."""


class DatabaseIntegrityError(ReadModelDatabaseError, IntegrityError):
    """A constraint refused the change (a duplicate key, a NOT NULL column)."""


class DatabaseValueError(ReadModelDatabaseError, DataError):
    """A value the column cannot hold (out of range, wrong type)."""


class DatabaseProgrammingError(ReadModelDatabaseError, ProgrammingError):
    """The statement is wrong for this database: bad SQL, an unknown column or table."""


class MissingTable(DatabaseProgrammingError):
    """A table or view the statement uses does not exist (yet): nothing projected there."""


def first_line(error: BaseException) -> str:
    """The first non-empty line of an error's message (drivers add hints below it)."""
    for line in str(error).splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__
