"""History pages asked for at the same time, answered together: under load a worker's
requests wait for one of its few pool connections; when one frees, pages waiting then are
asked for with one statement (`AsyncDatabase.json_pages`), so PostgreSQL's and psycopg's
cost per statement is shared by the batch instead of paid per page.

A batch holds pages of one kind (the caller's key for its statement's shape), so the batch
statement's text depends on the kind and the page count only and psycopg keeps it prepared;
at most `MOST` pages and `ROWS` rows, and a burst is split across the idle runners (shares
of at least `SHARE`).

Each page is answered as it would be alone: it waits at most ``wait_s`` (then a 503, as
waiting for a pool connection would give), a queue longer than `MOST_WAITING` answers 503 at
once; a batch that fails is asked for again page by page, each on its own loan (so a page's
own error is its own); a connection that cannot be had fails that runner's batch only."""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from api.problems import Problem
from api.views import ViewsDatabase, busy, unavailable
from projections.databases.port import JsonPage, JsonQuery

LOG = logging.getLogger(__name__)

# Pages per statement at most: enough for every request a worker holds under 50 clients.
MOST = 32
SHARE = 8  # the fewest pages a runner takes when that many wait
# Rows per statement at most, so a short page is not held behind many long ones.
ROWS = 1000
# Pages waiting at most; more are answered 503 at once rather than queued without end.
MOST_WAITING = 8 * MOST


# A page's query, written with a database's `param` (how it binds values); it may raise
# (a cursor it never handed out): that page alone fails.
Build = Callable[[Callable[[Any], Any]], JsonQuery]


@dataclass(eq=False)
class _Waiting:
    build: Build
    rows: int
    kind: Hashable
    # Its page; None: ask for it alone.
    answer: asyncio.Future[JsonPage | None]


class PageBatches:
    """Asks for the pages waiting, together, on at most ``runners`` connections at once;
    ``counted`` is told each statement's number of pages once it has answered."""

    def __init__(
        self,
        views: ViewsDatabase,
        runners: int,
        counted: Callable[[float], None],
        wait_s: float = 5.0,
    ) -> None:
        self._views = views
        self._runners = runners
        self._counted = counted
        self._wait_s = wait_s
        self._running = 0
        self._busy = 0  # runners holding a batch
        self._waiting: deque[_Waiting] = deque()
        self._tasks: set[asyncio.Task[None]] = set()  # held, so none is collected mid-run
        self._logged = ""

    async def page(self, build: Build, rows: int, kind: Hashable) -> JsonPage:
        """The page of the query ``build`` writes (at most ``rows`` rows; pages of one
        ``kind`` share a statement shape); the database's failures and a wait past
        ``wait_s`` as `Problem` (a 503), ``build``'s own errors as they are."""
        if len(self._waiting) >= MOST_WAITING:
            raise busy()
        loop = asyncio.get_running_loop()
        waiting = _Waiting(build, rows, kind, loop.create_future())
        deadline = loop.call_later(self._wait_s, _late, waiting)
        self._waiting.append(waiting)
        self._start()
        try:
            page = await waiting.answer
        except BaseException:  # late, failed or abandoned: never asked for afterwards
            if waiting in self._waiting:
                self._waiting.remove(waiting)
            raise
        finally:
            deadline.cancel()
        if page is not None:
            return page
        async with self._views.async_connection() as db:
            query = build(db.param)
            page = (await db.json_pages([query]))[0]
            self._counted(1)
            return page

    def _start(self) -> None:
        if self._waiting and self._running < self._runners:
            self._running += 1
            task = asyncio.get_running_loop().create_task(self._run())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take(self) -> list[_Waiting]:
        """The next batch: the first live page and the live pages of its kind after it,
        about this runner's share of those waiting (at least `SHARE`), within `MOST` and
        `ROWS`."""
        while self._waiting and self._waiting[0].answer.done():
            self._waiting.popleft()
        if not self._waiting:
            return []
        free = max(1, self._runners - self._busy)
        # At least SHARE: while the CPU is the limit, more statements per page cost pages/s.
        most = min(MOST, max(SHARE, math.ceil(len(self._waiting) / free)))
        first = self._waiting.popleft()
        batch, rows, kept = [first], first.rows, deque[_Waiting]()
        for waiting in self._waiting:
            if waiting.answer.done():
                continue
            if len(batch) < most and waiting.kind == first.kind and rows + waiting.rows <= ROWS:
                batch.append(waiting)
                rows += waiting.rows
            else:
                kept.append(waiting)
        self._waiting = kept
        return batch

    async def _run(self) -> None:
        """On one connection, batch after batch while pages wait; a runner that cannot
        get (or give back) its connection fails its own batch and stops."""
        batch = self._take()
        if not batch:  # the pages went to other runners: no loan for nothing
            self._running -= 1
            return
        asked = False
        self._busy += 1
        try:
            async with self._views.async_connection() as db:
                while batch:
                    batch, queries = _written(batch, db.param)
                    if queries:
                        asked = True
                        pages = await db.json_pages(queries)
                        self._counted(len(queries))
                        for waiting, page in zip(batch, pages, strict=True):
                            _answer(waiting, page)
                    asked = False
                    batch = self._take()
            self._logged = ""
        except Exception as error:
            if asked:
                _retry_alone(batch, error)
            else:  # no connection: this batch would have waited for one in vain
                problem = error if isinstance(error, Problem) else self._unexpected(error)
                for waiting in batch:
                    _fail(waiting, _again(problem))
        except BaseException:  # cancelled (the server stops): nobody waits in vain
            for waiting in [*batch, *self._waiting]:
                _fail(waiting, Problem(503, "the server is stopping"))
            self._waiting.clear()
            raise
        finally:
            self._busy -= 1
            self._running -= 1
        self._start()  # pages that came while this connection was given back

    def _unexpected(self, error: Exception) -> Problem:
        """A loan's error that is no database outage: its type logged (once while it
        repeats; not its text, which may carry anything, customer data included), and a
        503 for the pages, as an outage."""
        if repr(error) != self._logged:
            self._logged = repr(error)
            LOG.error("history pages: lending a connection failed: %s", type(error).__name__)
        return unavailable(RuntimeError("an unexpected error (logged by the server)"))


def _written(
    taken: list[_Waiting], param: Callable[[Any], Any]
) -> tuple[list[_Waiting], list[JsonQuery]]:
    """The pages whose query could be written, and their queries; the others fail."""
    batch, queries = [], []
    for waiting in taken:
        if waiting.answer.done():
            continue
        try:
            queries.append(waiting.build(param))
        except Exception as error:
            _fail(waiting, error)
        else:
            batch.append(waiting)
    return batch, queries


def _retry_alone(batch: list[_Waiting], error: Exception) -> None:
    """A failed batch's pages: one page gets its error, as alone; several, each asked alone."""
    if len(batch) == 1:
        _fail(batch[0], error)
        return
    for waiting in batch:
        _answer(waiting, None)


def _again(problem: Problem) -> Problem:
    """The same problem, for another request (an exception is raised where it is awaited)."""
    return Problem(problem.status, problem.detail, headers=problem.headers, errors=problem.errors)


def _answer(waiting: _Waiting, page: JsonPage | None) -> None:
    if not waiting.answer.done():
        waiting.answer.set_result(page)


def _late(waiting: _Waiting) -> None:
    _fail(waiting, busy())


def _fail(waiting: _Waiting, error: BaseException) -> None:
    if not waiting.answer.done():
        waiting.answer.set_exception(error)
