"""An asyncio psycopg connection that waits for a statement's result with its socket watched
once for the whole wait (`ReadingConnection`), for the API's event-loop pool.

PostgreSQL sends a result in pieces of 8 kB, so a batch of history pages (about 10 kB a
page) arrives in ten pieces or more, and psycopg's own wait registers the socket with the
event loop, arms a timer and unregisters both again for every piece: two or three
epoll_ctl calls and a timer per 8 kB. Here the socket stays registered until the result is
complete, with one timer per statement.

What psycopg's wait gets from registering afresh is kept: the watch is asked for again
before every sleep (no system call while it is alive, on asyncio's loop and on uvloop's;
uvloop closes a watch whose socket had an error, and then it is made anew), and the timer
wakes the wait every ``interval`` to read whatever came, so that no wait sleeps forever
whatever the loop does, and a connection closed by another task raises within it. A wait
that must write (a large statement) or has a timeout is left to psycopg's own wait from
where this one stopped, and so is a cancelled one: psycopg cancels the statement on the
server and drains its result, so the connection goes back to the pool usable.

It overrides psycopg's `AsyncConnection.wait`, not a public API: pyproject pins psycopg's
minor version, and `_check_psycopg` stops the import if the method's signature changes."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Generator
from typing import Any, TypeVar

from psycopg import AsyncConnection
from psycopg import errors as e
from psycopg.abc import PQGen
from psycopg.waiting import Ready, Wait

RV = TypeVar("RV")

_WAIT_SIGNATURE = (
    "(self, gen: 'PQGen[RV]', interval: 'float' = 0.1, timeout: 'float | None' = None) -> 'RV'"
)


def _check_psycopg() -> None:
    found = str(inspect.signature(AsyncConnection.wait))
    if found != _WAIT_SIGNATURE:
        raise ImportError(
            f"psycopg's AsyncConnection.wait is now {found}, ReadingConnection overrides "
            f"{_WAIT_SIGNATURE}: check postgres_reading.py against this psycopg version"
        )


_check_psycopg()


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

        timer = _Ticker(loop, interval, woken)
        try:
            try:
                while state == Wait.R:
                    _watch(loop, socket, woken)
                    readable = loop.create_future()
                    try:
                        await readable
                    finally:
                        readable = None
                    # Woken by the socket or by the timer: reading finds nothing or what
                    # came, or that the connection was closed meanwhile.
                    state = gen.send(Ready.R)
            finally:
                timer.cancel()
                loop.remove_reader(socket)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        except OSError as error:  # as psycopg's own wait: the socket is gone
            raise e.OperationalError("connection socket closed") from error
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit) as interruption:
            # psycopg's wait handles the interruption: it cancels the statement on the
            # server and reads its result, then raises this.
            return await super().wait(_Interrupted(interruption, state, gen), interval)
        return await super().wait(_resumed(state, gen), interval)


class _Ticker:
    """Calls ``woken`` every ``interval`` seconds until cancelled. A closure that scheduled
    itself again held itself (a reference cycle per statement, freed by the cyclic
    collector alone: under load its young collections came every few seconds, each a
    pause of 5-15 ms for every request in flight); once cancelled, this holds no handle."""

    __slots__ = ("_handle", "_interval", "_loop", "_woken")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, interval: float, woken: Callable[[], None]
    ) -> None:
        self._loop = loop
        self._interval = interval
        self._woken = woken
        self._handle: asyncio.TimerHandle | None = loop.call_later(interval, self._tick)

    def _tick(self) -> None:
        self._woken()
        if self._handle is not None:
            self._handle = self._loop.call_later(self._interval, self._tick)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def _watch(loop: asyncio.AbstractEventLoop, socket: int, woken: Any) -> None:
    """Watch ``socket`` for reading: nothing to do if it is watched already, a new watch if
    the loop closed the one it had (uvloop does after a socket error)."""
    try:
        loop.add_reader(socket, woken)
    except RuntimeError:  # uvloop: "the handler is closed"
        loop.remove_reader(socket)
        loop.add_reader(socket, woken)


def _resumed(state: Wait, gen: PQGen[RV]) -> PQGen[RV]:
    """``gen`` as it stood, waiting for ``state``: for psycopg's own wait to go on with."""
    ready = yield state
    try:
        while True:
            ready = yield gen.send(ready)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


class _Interrupted(Generator[Wait, Ready | int, RV]):
    """``gen`` as it stood, waiting for ``state``, after ``interruption``: raises it when
    psycopg's wait first steps it (so that psycopg sees its wait interrupted), then, when
    psycopg steps it again to read what the cancelled statement leaves, goes on with
    ``gen``."""

    def __init__(self, interruption: BaseException, state: Wait, gen: PQGen[RV]) -> None:
        self._interruption: BaseException | None = interruption
        self._state: Wait | None = state
        self._gen = gen

    def send(self, ready: Ready | int | None) -> Wait:
        if self._interruption is not None:
            interruption, self._interruption = self._interruption, None
            raise interruption
        if self._state is not None:
            state, self._state = self._state, None
            return state
        return self._gen.send(ready)  # type: ignore[arg-type]

    def throw(self, *args: Any) -> Wait:
        return self._gen.throw(*args)
