"""CPU of the API pool's wait for a result: psycopg's own asyncio connection against
`ReadingConnection` (projections/databases/postgres_reading.py), on uvloop as the server runs.

Four clients read a 100 kB result (about a batch of ten history pages, sent by PostgreSQL
in 8 kB pieces) through a pool of four, N statements per run; the process's CPU per
statement, the two connections alternated, median of R runs:

    .venv/bin/python bench/reading_wait.py --statements 1500 --repeats 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any

import psycopg
import uvloop
from psycopg_pool import AsyncConnectionPool

from projections.databases.postgres_reading import ReadingConnection

RESULT = "SELECT n, repeat('x', 1000) FROM generate_series(1, 100) AS n"
DEFAULT_DSN = "postgresql://evledger:evledger@127.0.0.1:5433/evledger"


async def cpu_per_statement(dsn: str, cls: type[psycopg.AsyncConnection[Any]], n: int) -> float:
    """Microseconds of this process's CPU per statement read through a pool of ``cls``."""
    async with AsyncConnectionPool(
        dsn, min_size=4, max_size=4, connection_class=cls, kwargs={"autocommit": True}
    ) as pool:
        await pool.wait()

        async def client(statements: int) -> None:
            for _ in range(statements):
                async with pool.connection() as connection:
                    await (await connection.execute(RESULT, prepare=True)).fetchall()

        await asyncio.gather(*(client(20) for _ in range(4)))  # prepared, warm
        started = time.process_time()
        await asyncio.gather(*(client(n // 4) for _ in range(4)))
        return (time.process_time() - started) / (n // 4 * 4) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=1500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dsn", default=os.environ.get("EVLEDGER_PG_DSN") or DEFAULT_DSN)
    args = parser.parse_args()
    connections: dict[str, type[psycopg.AsyncConnection[Any]]] = {
        "psycopg's AsyncConnection": psycopg.AsyncConnection,
        "ReadingConnection": ReadingConnection,
    }
    runs: dict[str, list[float]] = {name: [] for name in connections}
    for repeat in range(args.repeats):
        for name, cls in connections.items():
            runs[name].append(uvloop.run(cpu_per_statement(args.dsn, cls, args.statements)))
        print(f"run {repeat + 1}/{args.repeats}", flush=True)
    for name, found in runs.items():
        each = " ".join(f"{value:.0f}" for value in found)
        print(f"{name:26s} {statistics.median(found):5.0f} us CPU per 100 kB statement ({each})")


if __name__ == "__main__":
    main()
