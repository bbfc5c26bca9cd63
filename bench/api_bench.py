"""HTTP API throughput and latency of the payment history endpoints at scale.

Fills a fresh PostgreSQL schema with N payments generated in SQL (bench/fill.py: a million
rows in about a minute), starts a real `evledger serve --workers W` on it and measures two
load models, each against a fresh server, each run R times (medians printed):

- closed loop (wrk): C keep-alive connections, each sending its next request as soon as
  the previous one is answered, D seconds per endpoint: customer pages, station pages and
  second pages through the `next` link. Requests/s, p50, p99 per endpoint; the server's
  CPU per request and what it means for throughput (Little's law: C clients at p99 < 20 ms
  need more than C / 20 ms requests/s).
- open loop (httpx): C clients each sending `--open-rate` requests/s whatever the answers
  (customer and station pages); latency counted from when each request was due.

Each phase ends with the server-side histogram of the history routes from /metrics.

    scripts/bench-tools        # once: installs wrk (Debian package)
    .venv/bin/python bench/api_bench.py --rows 1000000 --clients 50 --duration 30

The load generator runs on the same machine as the server and PostgreSQL and shares their
cores; wrk is a small C program so that it takes as little of them as it can.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import psycopg
from psycopg.conninfo import conninfo_to_dict

from api.keys import Role, create_key
from bench.cpu_share import Watch
from bench.fill import fill_postgres
from bench.load_wrk import Figures, run_wrk
from projections.databases.postgres import PostgresDatabase, drop_schema

REPO = Path(__file__).resolve().parents[1]
EVLEDGER = str(Path(sys.executable).with_name("evledger"))
DEFAULT_DSN = "postgresql://evledger:evledger@127.0.0.1:5433/evledger"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Server:
    process: subprocess.Popen[bytes]
    url: str
    port: int


@contextmanager
def running(dsn: str, work: Path, workers: int) -> Iterator[Server]:
    """`evledger serve --workers N` on a free port, ready; stopped on leaving."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("EVLEDGER_")}
    env.update({"EVLEDGER_PG_DSN": dsn, "EVLEDGER_DATA_DIR": str(work / "data")})
    process = subprocess.Popen(
        [EVLEDGER, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while not ready(url):
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("evledger serve did not become ready")
            time.sleep(0.3)
        yield Server(process, url, port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def next_links(url: str, key: str, stations: int, count: int) -> list[str]:
    """Second-page links (`next` of station first pages), for the next-page runs."""
    rng = random.Random(5)
    links: list[str] = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as client:
        while len(links) < count:
            path = f"/v1/stations/ST-{rng.randrange(stations)}/payments"
            link = client.get(path, params={"limit": 20}).raise_for_status().json()["next"]
            if link:
                links.append(link)
    return links


async def open_loop(
    url: str, key: str, *, clients: int, rate: float, seconds: float, customers: int, stations: int
) -> dict[str, list[float]]:
    """Each client sends a request every 1/rate s whether or not the last one was answered;
    a latency counts from when the request was due, so queueing in the client counts."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    samples: dict[str, list[float]] = defaultdict(list)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as c:

        async def one(name: str, path: str, due: float) -> None:
            response = await c.get(path, params={"limit": 20})
            samples[name if response.status_code == 200 else "failed"].append(
                time.perf_counter() - due
            )

        async def client(seed: int) -> None:
            rng = random.Random(seed)
            due = time.perf_counter() + rng.random() / rate
            until = time.perf_counter() + seconds
            pending = []
            while due < until:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                if rng.random() < 0.5:
                    name = "customer page"
                    path = f"/v1/customers/C-{rng.randrange(customers)}/payments"
                else:
                    name, path = (
                        "station page",
                        f"/v1/stations/ST-{rng.randrange(stations)}/payments",
                    )
                pending.append(asyncio.create_task(one(name, path, due)))
                due += 1 / rate
            await asyncio.gather(*pending)

        await asyncio.gather(*(client(100 + i) for i in range(clients)))
    return samples


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def row(name: str, requests: float, per_second: float, p50_ms: float, p99_ms: float) -> str:
    return f"{name:<16}{requests:>10.0f}{per_second:>10.0f}{p50_ms:>10.1f}{p99_ms:>10.1f}"


def figures_row(name: str, figures: Figures) -> str:
    return row(name, figures.requests, figures.per_second, figures.p50_ms, figures.p99_ms)


HEADER = f"{'endpoint':<16}{'requests':>10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}"

_HISTORY_ROUTES = ("/v1/customers/{customer_id}/payments", "/v1/stations/{station_id}/payments")


def server_side(url: str) -> str:
    """The server's own view from /metrics: time from request to response inside one
    worker process (whichever answers; each serves a fair share), without the clients'
    queueing; bucket bounds, so approximate. The server is fresh for each phase."""
    from prometheus_client.parser import text_string_to_metric_families

    buckets: dict[float, float] = defaultdict(float)
    batched: dict[str, float] = defaultdict(float)  # pages per statement: sum and count
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=30).text):
        for sample in family.samples:
            if (
                sample.name == "evledger_api_request_seconds_bucket"
                and sample.labels.get("route") in _HISTORY_ROUTES
            ):
                buckets[float(sample.labels["le"])] += sample.value
            elif sample.name.startswith("evledger_api_history_pages_per_statement_"):
                batched[sample.name.rsplit("_", 1)[1]] += sample.value
    total = buckets.get(float("inf"), 0.0)
    if not total:
        return "server side: no samples"

    def bound(share: float) -> str:
        for le in sorted(buckets):
            if buckets[le] >= share * total:
                return f"<= {le * 1000:g} ms" if le != float("inf") else "> 10 s"
        return "?"

    histogram = ", ".join(
        f"<={le * 1000:g}ms {buckets[le] / total:.0%}" for le in sorted(buckets)[:-1]
    )
    per_statement = batched["sum"] / batched["count"] if batched["count"] else 0.0
    return (
        f"server side (/metrics of one worker, {total:.0f} history requests): "
        f"p50 {bound(0.5)}, p99 {bound(0.99)}; cumulative: {histogram}; "
        f"{per_statement:.1f} pages per statement on average"
    )


def cpu_seconds(root: int) -> float:
    """User + system CPU of a process and its children (uvicorn's workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(stat.parent.name) == root or int(fields[1]) == root:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def children_cpu() -> float:
    """User + system CPU of this process's children that have ended (each wrk run: the
    load generator's own share of the cores the server and PostgreSQL run on)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def median_of(runs: list[Figures]) -> Figures:
    return Figures(
        requests=int(statistics.median(run.requests for run in runs)),
        seconds=statistics.median(run.seconds for run in runs),
        p50_ms=statistics.median(run.p50_ms for run in runs),
        p99_ms=statistics.median(run.p99_ms for run in runs),
        max_ms=statistics.median(run.max_ms for run in runs),
        failed=sum(run.failed for run in runs),
    )


def warm_buffers(dsn: str) -> None:
    """Read the payment history once in each page order, so that PostgreSQL's buffers hold
    what a server answering pages for a while holds, not what the fill left there (a
    sequential scan would pass through a small ring of buffers and keep nothing)."""
    started = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")
        conn.execute("SET enable_bitmapscan = off")
        for owner in ("customer_id", "station_id"):
            conn.execute(
                "SELECT count(payment_key) FROM (SELECT payment_key FROM payment_history "
                f"ORDER BY {owner}, created_at DESC, payment_id DESC) AS rows"
            )
        shared = conn.execute("SHOW shared_buffers").fetchone()
    print(
        f"payment history read into PostgreSQL's buffers in {time.monotonic() - started:.1f} s "
        f"(shared_buffers {shared[0] if shared else '?'})"
    )


def closed_loop(server: Server, key: str, args: argparse.Namespace, work: Path) -> None:
    url = server.url
    links = next_links(url, key, args.stations, 300)
    kinds = {"customer page": "customer", "station page": "station", "next page": "next"}
    common = {
        "connections": args.clients,
        "customers": args.customers,
        "stations": args.stations,
        "links": links,
        "work": work,
    }
    run_wrk(url, key, kind="station", seconds=3, **common)  # connections, pool, caches
    print(
        f"closed loop (wrk, 1 thread): {args.clients} connections, each sending its next "
        f"request when the last is answered; {args.duration:g} s per endpoint, "
        f"{args.repeats} repeats"
    )
    runs: dict[str, list[Figures]] = defaultdict(list)
    cpu_per_request: list[float] = []
    for repeat in range(1, args.repeats + 1):
        for name, kind in kinds.items():
            cpu_before = cpu_seconds(server.process.pid)
            wrk_before = children_cpu()
            watch = Watch(server.process.pid, server.port, args.pg_port)
            figures = run_wrk(url, key, kind=kind, seconds=args.duration, seed=repeat, **common)
            cpu_per_request.append(
                (cpu_seconds(server.process.pid) - cpu_before) / figures.requests
            )
            wrk_ms = (children_cpu() - wrk_before) / figures.requests * 1000
            runs[name].append(figures)
            print(f"  repeat {repeat}: {figures_row(name, figures)}  failed {figures.failed}")
            print(f"    {watch.report(figures.seconds, figures.requests)}; wrk {wrk_ms:.2f} ms")
    print(f"medians of {args.repeats} repeats:")
    print(HEADER)
    for name in kinds:
        print(figures_row(name, median_of(runs[name])))
    print(server_side(url))
    cpu_ms = statistics.median(cpu_per_request) * 1000
    cores = os.cpu_count() or 1
    print(
        f"arithmetic: the server spends {cpu_ms:.2f} ms of CPU per request (median), so "
        f"{cores} cores serve at most {cores / cpu_ms * 1000:,.0f} requests/s with nothing "
        f"else running (PostgreSQL and wrk run here too); {args.clients} closed-loop clients "
        f"at p99 < 20 ms need more than {args.clients / 0.020:,.0f} requests/s "
        f"(clients / latency, Little's law)"
    )


def open_loop_report(server: Server, key: str, args: argparse.Namespace) -> None:
    rate = args.open_rate
    print(
        f"open loop (httpx): {args.clients} clients each sending {rate:g} request/s "
        f"({args.clients * rate:g}/s in all) for {args.duration:g} s, whatever the answers; "
        f"latency from when each request was due; {args.repeats} repeats"
    )
    runs: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    load = {
        "clients": args.clients,
        "rate": rate,
        "customers": args.customers,
        "stations": args.stations,
    }
    asyncio.run(open_loop(server.url, key, seconds=3, **load))  # the pool's connections
    for _ in range(args.repeats):
        samples = asyncio.run(open_loop(server.url, key, seconds=args.duration, **load))
        for name, values in sorted(samples.items()):
            runs[name].append(
                (len(values), statistics.median(values) * 1000, percentile(values, 0.99) * 1000)
            )
    print(f"medians of {args.repeats} repeats:")
    print(HEADER)
    for name, figures in runs.items():
        requests = statistics.median(f[0] for f in figures)
        p50 = statistics.median(f[1] for f in figures)
        p99 = statistics.median(f[2] for f in figures)
        print(row(name, requests, requests / args.duration, p50, p99))
    print(server_side(server.url))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--stations", type=int, default=500)
    parser.add_argument(
        "--open-rate",
        type=float,
        default=1.0,
        help="requests/s per client of the open-loop phase (0: no open-loop phase)",
    )
    parser.add_argument(
        "--closed", action=argparse.BooleanOptionalAction, default=True, help="closed-loop phase"
    )
    parser.add_argument(
        "--schema", help="a schema to fill once and keep (default: a new one, dropped)"
    )
    parser.add_argument("--dsn", default=os.environ.get("EVLEDGER_PG_DSN") or DEFAULT_DSN)
    args = parser.parse_args()

    args.pg_port = int(conninfo_to_dict(args.dsn).get("port") or 5432)
    schema = args.schema or f"bench_api_{uuid.uuid4().hex[:8]}"
    separator = "&" if "?" in args.dsn else "?"
    dsn = f"{args.dsn}{separator}options=-csearch_path%3D{schema}"
    with tempfile.TemporaryDirectory(prefix="evledger-api-bench-") as work:
        try:
            if not filled(args.dsn, schema):
                started = time.monotonic()
                fill_postgres(args.dsn, schema, args.rows, args.customers, args.stations)
                print(f"filled {args.rows:,} payments in {time.monotonic() - started:.0f} s")
            db = PostgresDatabase(dsn)
            key = create_key(db, Role.support, "bench")[0]
            db.close()
            print(
                f"evledger serve --workers {args.workers} on {os.cpu_count()} cores; "
                f"{args.customers:,} customers, {args.stations} stations; pages of 20"
            )
            warm_buffers(dsn)
            # A fresh server per phase, so that its /metrics holds that phase alone.
            if args.closed:
                with running(dsn, Path(work), args.workers) as server:
                    closed_loop(server, key, args, Path(work))
            if args.open_rate > 0:
                with running(dsn, Path(work), args.workers) as server:
                    open_loop_report(server, key, args)
        finally:
            if args.schema is None:
                drop_schema(args.dsn, schema)


def filled(dsn: str, schema: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as connection:
        found = connection.execute(
            "SELECT 1 FROM information_schema.tables"
            " WHERE table_schema = %s AND table_name = 'payment_history'",
            [schema],
        ).fetchone()
    return found is not None


if __name__ == "__main__":
    main()
