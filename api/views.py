"""The read-model database for requests, lent to one request at a time (a pool on
PostgreSQL, the embedded default's file otherwise), blocking for routes that run in
threads and awaited for those on the event loop; its failures become 503 problems."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from api.problems import Problem
from projections.databases.errors import (
    DatabaseBusy,
    DatabaseUnavailable,
    MissingTable,
)
from projections.databases.port import AsyncDatabase, AsyncDatabaseLender, Database, DatabaseLender

_NOT_BUILT = "the read models are not built yet (run `evledger project`)"


def busy() -> Problem:
    """No connection had in time: the database is unreachable, or busy."""
    return Problem(503, "the read-model database is unreachable or busy; try again shortly")


def unavailable(error: Exception) -> Problem:
    """The database cannot be used (``error`` says why)."""
    # The adapters name the server but never carry the password.
    return Problem(503, f"the read-model database is unavailable: {error}")


def _problem(error: Exception) -> Problem:
    if isinstance(error, MissingTable):
        return Problem(503, _NOT_BUILT)
    if isinstance(error, DatabaseBusy):
        return busy()
    return unavailable(error)


class ViewsDatabase:
    """Lends the payment history / refund status database to one request at a time."""

    def __init__(
        self, lender: DatabaseLender, async_lender: AsyncDatabaseLender, kind: str
    ) -> None:
        self._lender = lender
        self._async_lender = async_lender
        self.kind = kind

    async def open(self) -> None:
        self._lender.open()
        await self._async_lender.open()

    async def close(self) -> None:
        self._lender.close()
        await self._async_lender.close()

    @contextmanager
    def connection(self) -> Iterator[Database]:
        """The database for one request; outages become a 503 problem."""
        try:
            with self._lender.lend() as db:
                yield db
        except (MissingTable, DatabaseBusy, DatabaseUnavailable) as error:
            raise _problem(error) from None

    @asynccontextmanager
    async def async_connection(self) -> AsyncIterator[AsyncDatabase]:
        """The database for one request on the event loop; outages become a 503 problem."""
        try:
            async with self._async_lender.lend() as db:
                yield db
        except (MissingTable, DatabaseBusy, DatabaseUnavailable) as error:
            raise _problem(error) from None
