"""HTTP API throughput and latency of the payment history endpoints at scale.

Fills a fresh PostgreSQL schema with N payments generated in SQL (generate_series: a
million rows in about a minute), starts a real `evledger serve` on it, and drives it with
C concurrent keep-alive clients (httpx, asyncio) for D seconds: customer pages, station
pages, and the second page through the `next` link. Prints requests/s and p50/p99 per
endpoint, then drops the schema.

    .venv/bin/python bench/api_bench.py --rows 1000000 --clients 50 --duration 30

The clients run on the same machine as the server and share its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import psycopg

from api.keys import Role, create_key
from projections.databases.postgres import PostgresDatabase
from projections.payment_history import PaymentHistory
from projections.refund_status import RefundStatusView

REPO = Path(__file__).resolve().parents[1]
EVLEDGER = str(Path(sys.executable).with_name("evledger"))
DEFAULT_DSN = "postgresql://evledger:evledger@127.0.0.1:5433/evledger"

_FILL = """
INSERT INTO payment_history (
    payment_key, payment_id, session_key, session_id, customer_id, station_id, connector_id,
    session_started_at, session_ended_at, energy_wh, energy_kwh, tariff_id, tariff_version,
    line_items, session_currency, session_subtotal_minor, session_vat_minor,
    session_total_minor, method, currency, authorised_minor, captured_minor, released_minor,
    status, reconciliation, discrepancy_minor, created_at, authorised_at, captured_at)
SELECT
    'pk-' || g, 'P-' || g, 'sk-' || g, 'S-' || g,
    'C-' || (g %% %(customers)s), 'ST-' || (g %% %(stations)s), '1',
    t, t + interval '40 minutes', 20000, 20.000, 'T1', 1,
    '[{"component": "energy", "amount_minor": 780, "quantity": "20", "unit": "kWh"},
      {"component": "session_fee", "amount_minor": 50, "quantity": "1", "unit": "session"}]',
    'EUR', 830, 158, 988, 'card', 'EUR', 2000, 988, 1012,
    'captured', 'exact', 0, t, t, t + interval '41 minutes'
FROM (
    SELECT g, timestamptz '2024-01-01 00:00Z' + g * interval '31 seconds' AS t
    FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS g
) AS rows
"""


def fill(dsn: str, schema: str, rows: int, customers: int, stations: int) -> None:
    db = PostgresDatabase(dsn, schema=schema)
    PaymentHistory(db).create()
    RefundStatusView(db).create()
    db.close()
    chunk = 100_000
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f'SET search_path TO "{schema}"')
        for start in range(1, rows + 1, chunk):
            stop = min(rows, start + chunk - 1)
            connection.execute(
                _FILL,
                {"customers": customers, "stations": stations, "start": start, "stop": stop},
            )
            print(f"  filled {stop:,} payments", file=sys.stderr, flush=True)
        connection.execute("ANALYZE payment_history")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(dsn: str, data_dir: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("EVLEDGER_")}
    env.update({"EVLEDGER_PG_DSN": dsn, "EVLEDGER_DATA_DIR": str(data_dir)})
    process = subprocess.Popen(
        [EVLEDGER, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    process.kill()
    raise SystemExit("evledger serve did not become ready")


async def client_loop(
    client: httpx.AsyncClient,
    *,
    customers: int,
    stations: int,
    until: float,
    samples: dict[str, list[float]],
    errors: list[int],
    seed: int,
) -> None:
    rng = random.Random(seed)
    while time.monotonic() < until:
        if rng.random() < 0.5:
            name, path = "customer page", f"/v1/customers/C-{rng.randrange(customers)}/payments"
        else:
            name, path = "station page", f"/v1/stations/ST-{rng.randrange(stations)}/payments"
        started = time.perf_counter()
        response = await client.get(path, params={"limit": 20})
        samples[name].append(time.perf_counter() - started)
        if response.status_code != 200:
            errors.append(response.status_code)
            continue
        link = response.json().get("next")
        if link and rng.random() < 0.3:
            started = time.perf_counter()
            second = await client.get(link)
            samples["next page"].append(time.perf_counter() - started)
            if second.status_code != 200:
                errors.append(second.status_code)


async def drive(
    url: str, key: str, *, clients: int, seconds: float, customers: int, stations: int
) -> tuple[dict[str, list[float]], list[int], float]:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as c:
        samples: dict[str, list[float]] = defaultdict(list)
        errors: list[int] = []
        started = time.monotonic()
        await asyncio.gather(
            *(
                client_loop(
                    c,
                    customers=customers,
                    stations=stations,
                    until=started + seconds,
                    samples=samples,
                    errors=errors,
                    seed=100 + i,
                )
                for i in range(clients)
            )
        )
        return samples, errors, time.monotonic() - started


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(samples: dict[str, list[float]], errors: list[int], elapsed: float) -> None:
    every = [value for values in samples.values() for value in values]
    print(f"{'endpoint':<16}{'requests':>10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, values in [*sorted(samples.items()), ("all", every)]:
        print(
            f"{name:<16}{len(values):>10}{len(values) / elapsed:>10.0f}"
            f"{statistics.median(values) * 1000:>10.1f}{percentile(values, 0.99) * 1000:>10.1f}"
        )
    print(f"non-200 answers: {len(errors)}")


_HISTORY_ROUTES = ("/v1/customers/{customer_id}/payments", "/v1/stations/{station_id}/payments")


def history_buckets(url: str) -> dict[float, float]:
    """Cumulative latency buckets of the history routes from /metrics (one worker's)."""
    from prometheus_client.parser import text_string_to_metric_families

    buckets: dict[float, float] = defaultdict(float)
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=30).text):
        for sample in family.samples:
            if (
                sample.name == "evledger_api_request_seconds_bucket"
                and sample.labels.get("route") in _HISTORY_ROUTES
            ):
                buckets[float(sample.labels["le"])] += sample.value
    return buckets


def server_side(before: dict[float, float], after: dict[float, float]) -> str:
    """The server's own view: time from request to response inside the process, without
    the clients' queueing; bucket bounds, so approximate."""
    buckets = {le: after[le] - before.get(le, 0.0) for le in after}
    total = buckets.get(float("inf"), 0.0)
    if not total:
        return "server side: no samples"

    def bound(share: float) -> str:
        for le in sorted(buckets):
            if buckets[le] >= share * total:
                return f"<= {le * 1000:.0f} ms" if le != float("inf") else "> 10 s"
        return "?"

    within = buckets.get(0.02, 0.0) / total
    return (
        f"server side (one worker, {total:.0f} history requests): p50 {bound(0.5)}, "
        f"p99 {bound(0.99)}, {within:.0%} answered within 20 ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=1, help="evledger serve --workers")
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--stations", type=int, default=500)
    parser.add_argument("--dsn", default=os.environ.get("EVLEDGER_PG_DSN") or DEFAULT_DSN)
    args = parser.parse_args()

    schema = f"bench_api_{uuid.uuid4().hex[:8]}"
    separator = "&" if "?" in args.dsn else "?"
    dsn = f"{args.dsn}{separator}options=-csearch_path%3D{schema}"
    data_dir = Path(f"/tmp/{schema}")
    process = None
    try:
        started = time.monotonic()
        fill(args.dsn, schema, args.rows, args.customers, args.stations)
        print(f"filled {args.rows:,} payments in {time.monotonic() - started:.0f} s")
        db = PostgresDatabase(dsn)
        key = create_key(db, Role.support, "bench")[0]
        db.close()
        process, url = start_server(dsn, data_dir, args.workers)
        print(
            f"{args.clients} clients for {args.duration:.0f} s against evledger serve "
            f"--workers {args.workers}; {args.customers:,} customers, {args.stations} stations"
        )
        warm = {"clients": args.clients, "customers": args.customers, "stations": args.stations}
        asyncio.run(drive(url, key, seconds=3, **warm))  # connections, pool, caches
        before = history_buckets(url)
        results: Any = asyncio.run(
            drive(
                url,
                key,
                clients=args.clients,
                seconds=args.duration,
                customers=args.customers,
                stations=args.stations,
            )
        )
        report(*results)
        print(server_side(before, history_buckets(url)))
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        with psycopg.connect(args.dsn, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
