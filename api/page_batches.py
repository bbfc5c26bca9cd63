"""History pages asked for at the same time, answered together: under load a worker's
requests wait for one of its few pool connections; when one frees, every page waiting then
(up to `MOST`) is asked for with one statement (`AsyncDatabase.json_pages`), so PostgreSQL's
and psycopg's cost per statement is shared by the batch instead of paid per page.

Each page is answered as it would be alone: a batch that fails is asked for again page by
page, each on its own loan (so a page's own error is its own, and the others get their
pages); a connection that cannot be had fails the pages waiting for it with its problem
(a 503), as each would have failed waiting for one itself."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from api.problems import Problem
from api.views import ViewsDatabase
from projections.databases.port import JsonPage, JsonQuery

# Pages per statement at most: enough for every request a worker holds under 50 clients.
MOST = 32


# A page's query, written with a database's `param` (how it binds values); it may raise
# (a cursor it never handed out): that page alone fails.
Build = Callable[[Callable[[Any], Any]], JsonQuery]


@dataclass(eq=False)
class _Waiting:
    build: Build
    # Its page; None: ask for it alone.
    answer: asyncio.Future[JsonPage | None]


class PageBatches:
    """Asks for the pages waiting, together, on at most ``runners`` connections at once;
    ``counted`` is told each statement's number of pages."""

    def __init__(
        self, views: ViewsDatabase, runners: int, counted: Callable[[float], None]
    ) -> None:
        self._views = views
        self._runners = runners
        self._counted = counted
        self._running = 0
        self._waiting: deque[_Waiting] = deque()
        self._tasks: set[asyncio.Task[None]] = set()  # held, so none is collected mid-run

    async def page(self, build: Build) -> JsonPage:
        """The page of the query ``build`` writes; the database's failures as `Problem`
        (a 503), ``build``'s own errors as they are."""
        waiting = _Waiting(build, asyncio.get_running_loop().create_future())
        self._waiting.append(waiting)
        self._start()
        page = await waiting.answer
        if page is not None:
            return page
        async with self._views.async_connection() as db:
            query = build(db.param)
            self._counted(1)
            return (await db.json_pages([query]))[0]

    def _start(self) -> None:
        if self._waiting and self._running < self._runners:
            self._running += 1
            task = asyncio.get_running_loop().create_task(self._run())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self) -> None:
        """On one connection, batch after batch while pages wait."""
        batch: list[_Waiting] = []
        try:
            async with self._views.async_connection() as db:
                while self._waiting:
                    taken = [self._waiting.popleft() for _ in range(min(MOST, len(self._waiting)))]
                    batch, queries = _written(taken, db.param)
                    if not queries:
                        continue
                    self._counted(len(queries))
                    pages = await db.json_pages(queries)
                    for waiting, page in zip(batch, pages, strict=True):
                        _answer(waiting, page)
                    batch = []
        except Problem as problem:
            if not batch:  # no connection: every page waiting would have waited in vain
                while self._waiting:
                    _fail(self._waiting.popleft(), _again(problem))
            _retry_alone(batch, problem)
        except Exception as error:
            _retry_alone(batch, error)
        except BaseException as error:  # cancelled (the server stops): nobody waits in vain
            for waiting in [*batch, *self._waiting]:
                _fail(waiting, Problem(503, "the server is stopping"))
            self._waiting.clear()
            raise error
        finally:
            self._running -= 1
            self._start()  # pages that came while this connection was given back


def _written(
    taken: list[_Waiting], param: Callable[[Any], Any]
) -> tuple[list[_Waiting], list[JsonQuery]]:
    """The pages whose query could be written, and their queries; the others fail."""
    batch, queries = [], []
    for waiting in taken:
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


def _fail(waiting: _Waiting, error: BaseException) -> None:
    if not waiting.answer.done():
        waiting.answer.set_exception(error)
