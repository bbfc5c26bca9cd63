"""A statement run prepared on a psycopg asyncio connection through its libpq connection,
without a cursor (`prepared_rows`): for the batches of history pages (postgres_pages.py),
whose statements are few texts run over and over with text parameters.

A cursor's own Python per statement (the query's conversion, psycopg's prepared-statement
bookkeeping, result checks, a cursor and its loaders made anew) cost the API's worker about
a hundred microseconds a batch, a sixth of the batch; here the statement is prepared once
per connection under a name of its own (kept through errors, closed and prepared anew
only when the server can no longer run it, so a connection holds at most `MOST_PREPARED`
names), then each run is one message out and its result
in, waited for as psycopg waits (`AsyncConnection.wait`, so cancelling still cancels it on
the server) and loaded by psycopg's loaders.

Uses psycopg's documented low-level pieces (`pgconn`, `adapt.Transformer`) and three of its
internal ones (the `execute` generator, `wait`, `errors.error_from_result`), which pyproject
pins to a minor version; postgres_reading.py checks `wait`'s signature at import."""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection, pq
from psycopg import errors as e
from psycopg.adapt import Transformer
from psycopg.generators import execute

# Statements a connection keeps prepared at most; past that, each runs unnamed (parsed and
# planned each time, as psycopg does for a text it has seen only a few times).
MOST_PREPARED = 64
# Names unique in the process, so a name closed after an error is never confused with its
# successor on a connection.
_NUMBERS = itertools.count()
# Each connection's prepared statements: name by statement text.
# SQLSTATEs of a prepared statement the server can no longer run: prepared again, after its
# old name is closed ("cached plan must not change result type"; a name the server lost).
_INVALID_STATEMENT = frozenset({"0A000", "26000"})
_PREPARED: weakref.WeakKeyDictionary[AsyncConnection[Any], dict[bytes, bytes]] = (
    weakref.WeakKeyDictionary()
)


async def prepared_rows(
    connection: AsyncConnection[Any], statement: bytes, params: Sequence[str]
) -> list[tuple[Any, ...]]:
    """The rows of ``statement`` (``$1``, ``$2``... placeholders, bound as text, each cast
    in the statement) with ``params``, run on ``connection`` (autocommit, lent to the
    caller alone); a failure raises psycopg's error for it, as a cursor would."""
    encoding = connection.info.encoding
    values = [param.encode(encoding) for param in params]
    async with connection.lock:
        pgconn = connection.pgconn
        names = _PREPARED.setdefault(connection, {})
        name = names.get(statement)
        if name is None and len(names) < MOST_PREPARED:
            name = b"evledger_pages_%d" % next(_NUMBERS)
            # Counted before the server answers: a prepare cancelled midway may still have
            # created the name there (if not, its first run fails as unknown and closes it).
            names[statement] = name
            pgconn.send_prepare(name, statement)
            try:
                _result(await connection.wait(execute(pgconn)), encoding)
            except e.Error:
                del names[statement]  # refused: the server created nothing
                raise
        if name is None:
            pgconn.send_query_params(statement, values)
        else:
            pgconn.send_query_prepared(name, values)
        try:
            result = _result(await connection.wait(execute(pgconn)), encoding)
        except e.Error as error:
            if name is not None and error.sqlstate in _INVALID_STATEMENT:
                # A statement the server can no longer run (a table replaced with other
                # columns) must not fail every batch after: closed, prepared anew next
                # time. Any other error (a timeout, bad data) leaves it prepared and kept.
                del names[statement]
                pgconn.send_close_prepared(name)
                _result(await connection.wait(execute(pgconn)), encoding)
            raise
    loader = Transformer(connection)
    loader.set_pgresult(result)
    return loader.load_rows(0, result.ntuples, tuple)


def _result(results: list[pq.abc.PGresult], encoding: str) -> pq.abc.PGresult:
    """The statement's one result, or its error raised."""
    (result,) = results
    if result.status == pq.ExecStatus.FATAL_ERROR:
        raise e.error_from_result(result, encoding=encoding)
    if result.status not in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK):
        raise e.InternalError(f"unexpected result status {pq.ExecStatus(result.status).name}")
    return result
