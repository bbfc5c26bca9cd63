"""The read-model database for requests, lent to one request at a time (a pool on
PostgreSQL, the embedded default's file otherwise), blocking for routes that run in
threads and awaited for those on the event loop; its failures become 503 problems.

Start-up does not wait for it: lending starts once the database answers, tried in the
background until it does; until then every request that needs it is answered at once
with a 503 saying why (a wrong password, a closed port, no such database)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress

from api.problems import Problem
from projections.databases.errors import (
    DatabaseBusy,
    DatabaseUnavailable,
    MissingTable,
    ReadModelDatabaseError,
)
from projections.databases.port import AsyncDatabase, AsyncDatabaseLender, Database, DatabaseLender

log = logging.getLogger("evledger.api")
_NOT_BUILT = "the read models are not built yet (run `evledger project`)"
# Seconds between tries to reach a database that did not answer: a fixed password or a
# started server is noticed within this, and each try is one connection attempt.
RETRY_S = 1.0
# What a 503 of the database tells clients to wait before they ask again (Retry-After).
RETRY_AFTER = {"Retry-After": "2"}
# The longest a request made in the first moments waits for the first try's answer.
_FIRST_TRY_WAIT_S = 5.0


def busy() -> Problem:
    """No connection had in time: the database is unreachable, or busy."""
    return Problem(
        503,
        "the read-model database is unreachable or busy; try again shortly",
        headers=RETRY_AFTER,
    )


def unavailable(error: Exception | str) -> Problem:
    """The database cannot be used (``error`` says why)."""
    # The adapters name the server but never carry the password.
    return Problem(503, f"the read-model database is unavailable: {error}", headers=RETRY_AFTER)


def _problem(error: Exception) -> Problem:
    if isinstance(error, MissingTable):
        return Problem(503, _NOT_BUILT, headers=RETRY_AFTER)
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
        # Why the database cannot be lent now; None once lending started.
        self.outage: str | None = "waiting for the database's first answer"
        self._first_try = threading.Event()
        self._connecting: asyncio.Task[None] | None = None

    async def open(self, prepare: Callable[[Database], None] | None = None) -> None:
        """Start trying to reach the database in the background, and return: lending
        starts when it answers, after ``prepare`` (the API's own tables) had a loan.
        Until the first try has answered, a request waits for it."""
        self._connecting = asyncio.create_task(self._connect(prepare))

    async def _connect(self, prepare: Callable[[Database], None] | None) -> None:
        try:
            await self._reach_and_open(prepare)
        except Exception as error:  # asyncio.CancelledError (close()) is no Exception
            # Not one of the adapters' errors: a defect, or a pool that cannot start. Said
            # once, as the outage every request and /readyz give, rather than a task that
            # ends silently with requests waiting on a first try that never answers.
            log.error("the read-model database's pools could not start: %s", type(error).__name__)
            self.outage = f"its connection pools could not start ({type(error).__name__})"
            self._first_try.set()

    async def _reach_and_open(self, prepare: Callable[[Database], None] | None) -> None:
        while True:
            try:
                await asyncio.to_thread(self._lender.reachable)
                break
            except ReadModelDatabaseError as error:
                if self.outage != str(error):
                    log.warning("the read-model database does not answer: %s", error)
                self.outage = str(error)
                self._first_try.set()
            await asyncio.sleep(RETRY_S)
        self._lender.open()
        await self._async_lender.open()
        log.info("the read-model database answers: %s", self.kind)
        try:
            # Before the first request is lent one, which would otherwise make the same
            # tables at the same moment (PostgreSQL refuses one of two such CREATEs).
            await asyncio.to_thread(self._prepare, prepare)
        except Exception as error:  # /readyz and the requests say what is wrong
            log.warning("could not prepare the API tables now: %s", type(error).__name__)
        self.outage = None
        self._first_try.set()

    def _prepare(self, prepare: Callable[[Database], None] | None) -> None:
        if prepare is not None:
            with self._lender.lend() as db:
                prepare(db)

    async def close(self) -> None:
        try:
            if self._connecting is not None:
                self._connecting.cancel()
                with suppress(asyncio.CancelledError):
                    await self._connecting
        finally:
            # A lender never opened closes as a no-op.
            self._lender.close()
            await self._async_lender.close()

    def _refuse_while_out(self) -> None:
        """A 503 at once while lending has not started (after the first try's answer)."""
        if self.outage is not None:
            self._first_try.wait(_FIRST_TRY_WAIT_S)
            if self.outage is not None:
                raise unavailable(self.outage)

    @contextmanager
    def connection(self) -> Iterator[Database]:
        """The database for one request; outages become a 503 problem."""
        self._refuse_while_out()
        try:
            with self._lender.lend() as db:
                yield db
        except (MissingTable, DatabaseBusy, DatabaseUnavailable) as error:
            raise _problem(error) from None

    @asynccontextmanager
    async def async_connection(self) -> AsyncIterator[AsyncDatabase]:
        """The database for one request on the event loop; outages become a 503 problem."""
        if self.outage is not None:
            if not self._first_try.is_set():
                await asyncio.to_thread(self._first_try.wait, _FIRST_TRY_WAIT_S)
            if self.outage is not None:
                raise unavailable(self.outage)
        try:
            async with self._async_lender.lend() as db:
                yield db
        except (MissingTable, DatabaseBusy, DatabaseUnavailable) as error:
            raise _problem(error) from None
