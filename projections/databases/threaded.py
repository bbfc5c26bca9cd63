"""The asynchronous read-model port over a blocking lender (the embedded default's SQLite
file): each statement runs in a worker thread, so the event loop is never blocked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from projections.databases.port import (
    AsyncDatabase,
    AsyncDatabaseLender,
    Database,
    DatabaseLender,
    Row,
)


class ThreadedDatabase(AsyncDatabase):
    """A blocking ``Database`` whose statements run in a worker thread, one at a time."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def execute(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        return await asyncio.to_thread(self._db.execute, statement, params)

    def param(self, value: Any) -> Any:
        return self._db.param(value)


class ThreadedLender(AsyncDatabaseLender):
    """Loans of a blocking lender, taken and given back in a worker thread."""

    def __init__(self, lender: DatabaseLender) -> None:
        self._lender = lender

    async def open(self) -> None:
        await asyncio.to_thread(self._lender.open)

    @asynccontextmanager
    async def lend(self) -> AsyncIterator[AsyncDatabase]:
        loan = self._lender.lend()
        db = await asyncio.to_thread(loan.__enter__)
        try:
            yield ThreadedDatabase(db)
        except BaseException as error:
            if not await asyncio.to_thread(loan.__exit__, type(error), error, error.__traceback__):
                raise
        else:
            await asyncio.to_thread(loan.__exit__, None, None, None)

    async def close(self) -> None:
        await asyncio.to_thread(self._lender.close)
