"""An asyncio psycopg connection that waits for a statement's result with its socket watched
once for the whole wait (`ReadingConnection`), for the API's event-loop pool.

PostgreSQL sends a result in pieces of 8 kB, so a batch of history pages (about 10 kB a
page) arrives in ten pieces or more, and psycopg's own wait registers the socket with the
event loop, arms a timer (its Ctrl-C check, which an event loop does not need) and
unregisters both again for every piece: two or three epoll_ctl calls and a timer per 8 kB.
Here the socket stays registered until the result is complete and there is no timer; a
wait that must write (a large statement) or has a timeout is left to psycopg's own wait,
from where this one stopped. A wait cancelled midway (the server stopping) leaves its
statement running, and the pool closes that connection when it is given back, as it
closes any connection returned busy."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from psycopg import AsyncConnection
from psycopg import errors as e
from psycopg.abc import PQGen
from psycopg.waiting import Ready, Wait

RV = TypeVar("RV")


class ReadingConnection(AsyncConnection[Any]):
    """psycopg's asyncio connection, waiting for results with the socket watched once."""

    async def wait(self, gen: PQGen[RV], interval: float = 0.1, timeout: float | None = None) -> RV:
        if timeout is not None:
            return await super().wait(gen, interval, timeout)
        try:
            state = next(gen)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        loop = asyncio.get_running_loop()
        socket = self.pgconn.socket
        readable: asyncio.Future[None] | None = None

        def woken() -> None:
            if readable is not None and not readable.done():
                readable.set_result(None)

        try:
            loop.add_reader(socket, woken)
            try:
                while state == Wait.R:
                    readable = loop.create_future()
                    await readable
                    readable = None
                    state = gen.send(Ready.R)
            finally:
                loop.remove_reader(socket)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        except OSError as error:  # as psycopg's own wait: the socket is gone
            raise e.OperationalError("connection socket closed") from error
        return await super().wait(_resumed(state, gen), interval)


def _resumed(state: Wait, gen: PQGen[RV]) -> PQGen[RV]:
    """``gen`` as it stood, waiting for ``state``: for psycopg's own wait to go on with."""
    ready = yield state
    try:
        while True:
            ready = yield gen.send(ready)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
