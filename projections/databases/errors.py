"""The read-model databases' own errors: every adapter translates its driver's errors into
these (the driver's error stays as ``__cause__``), so callers catch one tree whatever the
backend.

They follow the DB-API families (operational, integrity, data, programming) but stand
alone: a query reads them without importing the event-sourcing library, whose persistence
module alone costs a query command a good part of its start-up.
"""

from __future__ import annotations


class ReadModelDatabaseError(Exception):
    """A read-model database failed; the message names the database and the reason."""


class DatabaseUnavailable(ReadModelDatabaseError):
    """The database cannot be reached or opened, or the connection was lost."""


class DatabaseBusy(ReadModelDatabaseError):
    """Another connection or process holds what this one needs (a DuckDB file, a lock)
    and it was not released in time; trying again later may succeed."""


class DatabaseIntegrityError(ReadModelDatabaseError):
    """A constraint refused the change (a duplicate key, a NOT NULL column)."""


class DatabaseValueError(ReadModelDatabaseError):
    """A value the column cannot hold (out of range, wrong type)."""


class DatabaseProgrammingError(ReadModelDatabaseError):
    """The statement is wrong for this database: bad SQL, an unknown column or table."""


class MissingTable(DatabaseProgrammingError):
    """A table or view the statement uses does not exist (yet): nothing projected there."""


def first_line(error: BaseException) -> str:
    """The first non-empty line of an error's message (drivers add hints below it)."""
    for line in str(error).splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__
