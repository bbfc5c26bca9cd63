"""Read-side queries at scale: the payment history and refund status queries over N payments
in PostgreSQL, and the analytics views over N sessions in DuckDB.

Fills a fresh PostgreSQL schema and a fresh DuckDB file in SQL (bench/fill.py), then, in
this process, through the read models' own query functions and the read-model database
port (never SQL of its own but `SELECT * FROM <view>`):
  1. history by customer, history by station (first page and the page after it), refunds
     by status and by customer: p50/p99 over Q queries with random ids, measured R times;
     then each query's EXPLAIN (ANALYZE) plan, whose index lines it prints;
  2. every analytics view, R times, read whole as an analyst's tool reads it: as an Arrow
     table (pandas, polars and BI tools read DuckDB through Arrow; columnar, no Python
     object per value), on a read-only duckdb connection with its default threads; views of
     at most READ_AT_MOST rows also as rows through the DuckDB adapter (what `evledger
     analytics query` gets). First the same Arrow read of the whole sessions table itself
     (all its columns), for scale.
Prints each repeat and the medians; drops the schema and the file at the end.

    .venv/bin/python bench/queries_bench.py --rows 1000000 --sessions 1000000

Targets: p99 < 10 ms per query at 1M payments, plans on the indexes, each view
< 500 ms at 1M sessions (its Arrow read). Run it on a quiet machine: other processes' load
shows in p99 and in the views' wall time (their CPU time says what they cost).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fill import REFUND_STATUSES, fill_duckdb, fill_postgres
from projections.analytics import VIEW_NAMES
from projections.databases.duckdb import DuckDatabase
from projections.databases.port import Database, Row
from projections.databases.postgres import POSTGRES, PostgresDatabase, drop_schema
from projections.payment_history import HistoryFilter, query_history
from projections.refund_status import query_refunds

DEFAULT_DSN = "postgresql://evledger:evledger@127.0.0.1:5433/evledger"
# The index each query's plan must scan (by name), with no sort of its own.
EXPECTED_INDEX = {
    "history by customer": "payment_history_by_customer",
    "history by station": "payment_history_by_station",
    "history by station, next page": "payment_history_by_station",
    "refunds by status": "refund_status_by_status",
    "refunds by customer": "refund_status_by_customer",
}


# Views with more rows than this are read as Arrow only: a million Python dicts take tens of
# seconds to build and say nothing of the view.
READ_AT_MOST = 200_000


class Recorder(Database):
    """The port around a PostgreSQL database, keeping the last statement a query sent, so
    that EXPLAIN runs exactly what the query function runs."""

    dialect = POSTGRES

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db
        self.last: tuple[str, list[Any]] = ("", [])

    def transaction(self) -> AbstractContextManager[None]:
        return self.db.transaction()

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        self.last = (statement, list(params))
        return self.db.execute(statement, params)

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        self.db.executemany(statement, rows)

    def close(self) -> None:
        self.db.close()

    def param(self, value: Any) -> Any:
        return self.db.param(value)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def timed(action: Callable[[], Any], runs: int) -> tuple[list[float], float]:
    """Wall milliseconds of each run, and the median CPU milliseconds of this process per
    run (the query's own cost here, whatever else the machine is doing)."""
    samples = []
    cpu_started = time.process_time()
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples, (time.process_time() - cpu_started) * 1000 / runs


def queries(db: Database, customers: int, stations: int) -> dict[str, Callable[[], Any]]:
    rng = random.Random(7)

    def customer() -> str:
        return f"C-{rng.randrange(customers)}"

    def station() -> str:
        return f"ST-{rng.randrange(stations)}"

    def next_page() -> Any:
        chosen = station()
        first = query_history(db, HistoryFilter(station_id=chosen, limit=50))
        assert first.next_cursor is not None, "a station with fewer than 51 payments"
        return query_history(
            db, HistoryFilter(station_id=chosen, limit=50, after=first.next_cursor)
        )

    return {
        "history by customer": lambda: query_history(
            db, HistoryFilter(customer_id=customer(), limit=50)
        ),
        "history by station": lambda: query_history(
            db, HistoryFilter(station_id=station(), limit=50)
        ),
        "history by station, next page": next_page,
        "refunds by status": lambda: query_refunds(db, status=rng.choice(REFUND_STATUSES)),
        "refunds by customer": lambda: query_refunds(db, customer_id=customer()),
    }


def plan(pg: PostgresDatabase, recorder: Recorder, action: Callable[[], Any]) -> list[str]:
    """The EXPLAIN (ANALYZE) of the last statement ``action`` sends."""
    action()
    statement, params = recorder.last
    rows = pg.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {statement}", params)
    return [str(row["QUERY PLAN"]) for row in rows]


def uses_index(lines: list[str], index: str) -> bool:
    """Scans ``index`` in key order: an index (only) scan of it, and no sort node."""
    return f"using {index}" in "\n".join(lines) and not sorts(lines)


def sorts(lines: list[str]) -> bool:
    return any(line.strip().lstrip("-> ").startswith("Sort") for line in lines)


def verdict(lines: list[str], index: str) -> str:
    if uses_index(lines, index):
        return "in index order"
    if index in "\n".join(lines):
        return "on its index, few rows sorted" if sorts(lines) else "on its index"
    return "NOT ON ITS INDEX"


def measure_postgres(
    pg: PostgresDatabase, args: argparse.Namespace, figures: dict[str, Any]
) -> None:
    recorder = Recorder(pg)
    timed_queries = queries(pg, args.customers, args.stations)
    for action in timed_queries.values():  # connection, prepared statements, caches
        timed(action, 20)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in timed_queries}
    for repeat in range(1, args.repeats + 1):
        for name, action in timed_queries.items():
            samples, cpu_ms = timed(action, args.queries)
            if name.endswith("next page"):  # two queries a sample: report one
                samples, cpu_ms = [value / 2 for value in samples], cpu_ms / 2
            run = {
                "p50_ms": statistics.median(samples),
                "p99_ms": percentile(samples, 0.99),
                "cpu_ms": cpu_ms,
            }
            runs[name].append(run)
            print(
                f"  repeat {repeat}: {name:<31} p50 {run['p50_ms']:6.2f} ms"
                f"  p99 {run['p99_ms']:6.2f} ms  CPU {run['cpu_ms']:5.2f} ms"
            )
    print(f"PostgreSQL, {args.queries} queries each, medians of {args.repeats} repeats:")
    explained = queries(recorder, args.customers, args.stations)
    if args.plan_as_large:
        pg.execute("SET enable_seqscan = off")
        pg.execute("SET enable_bitmapscan = off")
    for name in timed_queries:
        lines = plan(pg, recorder, explained[name])
        median = {key: statistics.median(run[key] for run in runs[name]) for key in runs[name][0]}
        figures["queries"][name] = {**median, "runs": runs[name], "plan": lines}
        print(
            f"{name:<31} p50 {median['p50_ms']:6.2f} ms  p99 {median['p99_ms']:6.2f} ms"
            f"  CPU {median['cpu_ms']:5.2f} ms  ({verdict(lines, EXPECTED_INDEX[name])})"
        )
        for line in lines:
            if "Index" in line or "Sort" in line or "Scan" in line or "Execution" in line:
                print(f"    {line.strip()}")


def arrow_read(analyst: Any, relation: str, repeats: int) -> tuple[float, float, int]:
    """Median wall and CPU ms (DuckDB's threads included) of ``repeats`` reads of the whole
    of ``relation`` as an Arrow table, and its rows."""
    wall: list[float] = []
    cpu: list[float] = []
    count = 0
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        count = analyst.sql(f"SELECT * FROM {relation}").to_arrow_table().num_rows
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
    return statistics.median(wall), statistics.median(cpu), count


def measure_duckdb(path: Path, repeats: int, figures: dict[str, Any]) -> None:
    import duckdb

    print(
        f"DuckDB views, medians of {repeats} repeats: read whole as Arrow (wall ms, and CPU ms"
        " of DuckDB's threads), and as rows through the adapter (wall ms) when at most"
        f" {READ_AT_MOST:,} rows (a million dicts take seconds and say nothing of the view)"
    )
    # Configured as the adapter's read-only connection, which DuckDB requires of a second one.
    analyst = duckdb.connect(str(path), read_only=True, config={"enable_external_access": False})
    db = DuckDatabase(path, read_only=True)
    try:
        # For scale: the whole sessions table, every column, read as the views are.
        wall, cpu, count = arrow_read(analyst, "fact_sessions", repeats)
        figures["sessions_read"] = {"rows": count, "arrow_ms": wall, "arrow_cpu_ms": cpu}
        print(
            f"  {'(fact_sessions, no view)':<28}{count:>10,} rows  arrow {wall:6.0f}"
            f"  CPU {cpu:6.0f}  rows       -"
        )
        for view in VIEW_NAMES:
            wall, cpu, count = arrow_read(analyst, view, repeats)
            read: list[float] = []
            for _ in range(repeats if count <= READ_AT_MOST else 0):
                started = time.perf_counter()
                db.execute(f"SELECT * FROM {view}")
                read.append((time.perf_counter() - started) * 1000)
            figures["views"][view] = {
                "rows": count,
                "arrow_ms": wall,
                "arrow_cpu_ms": cpu,
                "read_ms": statistics.median(read) if read else None,
            }
            print(
                f"  {view:<28}{count:>10,} rows  arrow {wall:6.0f}  CPU {cpu:6.0f}  rows "
                + (f"{statistics.median(read):7.0f}" if read else "      -")
            )
    finally:
        db.close()
        analyst.close()


@contextmanager
def scratch(dsn: str) -> Iterator[tuple[str, Path]]:
    schema = f"bench_queries_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="evledger-queries-") as work:
        try:
            yield schema, Path(work) / "analytics.duckdb"
        finally:
            drop_schema(dsn, schema)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="payments in PostgreSQL")
    parser.add_argument("--sessions", type=int, default=1_000_000, help="sessions in DuckDB")
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--stations", type=int, default=500)
    parser.add_argument("--queries", type=int, default=1000, help="queries per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--plan-as-large",
        action="store_true",
        help="plan with sequential and bitmap scans off, as for a large table (a small one"
        " is read whole, or its few matches sorted, which says nothing of the indexes)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--dsn", default=os.environ.get("EVLEDGER_PG_DSN") or DEFAULT_DSN)
    args = parser.parse_args()

    figures: dict[str, Any] = {"queries": {}, "views": {}}
    with scratch(args.dsn) as (schema, duck_path):
        started = time.monotonic()
        fill_postgres(args.dsn, schema, args.rows, args.customers, args.stations)
        print(f"filled {args.rows:,} payments in {time.monotonic() - started:.0f} s")
        pg = PostgresDatabase(args.dsn, schema=schema)
        try:
            measure_postgres(pg, args, figures)
        finally:
            pg.close()
        started = time.monotonic()
        fill_duckdb(duck_path, args.sessions, args.customers, args.stations)
        print(f"filled {args.sessions:,} sessions in {time.monotonic() - started:.0f} s")
        measure_duckdb(duck_path, args.repeats, figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
