"""Benchmark: the Kafka ledger store against the library's PostgreSQL module, same workload.

Each backend runs in its own child process (so each RSS figure is that store's alone):
N new aggregates of 3 events each, saved through an eventsourcing Application by T
threads at once (one save per aggregate, so group commit has something to group).

    .venv/bin/python bench/store_bench.py --aggregates 3000 --threads 16
    .venv/bin/python bench/store_bench.py --index-aggregates 1000000   # the index at 1M

Needs `scripts/services up`. Prints one line per backend and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bootstrap.settings import load_settings

KAFKA_BOOTSTRAP = os.environ.get("EVLEDGER_KAFKA_BOOTSTRAP") or "127.0.0.1:9092"
PG_DSN = os.environ.get("EVLEDGER_PG_DSN") or (
    "postgresql://evledger:evledger@127.0.0.1:5433/evledger"
)


def rss_mib() -> float:
    """This process's current resident set size."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_application(env: dict[str, str], name: str) -> Any:
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    class Meter(Aggregate):
        def __init__(self, station: str) -> None:
            self.station = station
            self.wh = 0

        @event("Read")
        def read(self, wh: int) -> None:
            self.wh += wh

    class Meters(Application[uuid.UUID]):
        def open_and_read_twice(self, station: str) -> None:
            meter = Meter(station)
            meter.read(1000)
            meter.read(2500)
            self.save(meter)  # three events, one insert

    Meters.name = name
    return Meters(env=env)


def run_backend(backend: str, aggregates: int, threads: int) -> dict[str, Any]:
    """One backend's run, in this (child) process."""
    suffix = uuid.uuid4().hex[:8]
    name = f"bench_{suffix}"
    if backend == "kafka":
        topic = f"bench.{suffix}.ledger"
        env = {
            "PERSISTENCE_MODULE": "store.factory:KafkaFactory",
            "KAFKA_BOOTSTRAP_SERVERS": KAFKA_BOOTSTRAP,
            "KAFKA_LEDGER_TOPIC": topic,
        }
    else:
        from psycopg.conninfo import conninfo_to_dict

        params = conninfo_to_dict(PG_DSN)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": str(params["dbname"]),
            "POSTGRES_HOST": str(params["host"]),
            "POSTGRES_PORT": str(params.get("port", 5432)),
            "POSTGRES_USER": str(params["user"]),
            "POSTGRES_PASSWORD": str(params.get("password", "")),
            "POSTGRES_POOL_SIZE": str(threads),
        }
    app = make_application(env, name)
    rss_before = rss_mib()
    warmup = min(50, aggregates)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(app.open_and_read_twice, [f"warmup-{i}" for i in range(warmup)]))
        started = time.perf_counter()
        list(pool.map(app.open_and_read_twice, [f"station-{i}" for i in range(aggregates)]))
        elapsed = time.perf_counter() - started
    result: dict[str, Any] = {
        "backend": backend,
        "aggregates": aggregates,
        "events": 3 * aggregates,
        "threads": threads,
        "seconds": round(elapsed, 3),
        "events_per_s": round(3 * aggregates / elapsed),
        "rss_mib": round(rss_mib(), 1),
        "rss_before_mib": round(rss_before, 1),
        "max_notification_id": app.recorder.max_notification_id(),
    }
    if backend == "kafka":
        transactions = app.recorder.ledger.writer.transactions_committed
        result["kafka_transactions"] = transactions
        result["events_per_transaction"] = round((3 * (aggregates + warmup)) / transactions, 1)
        result.update(measure_rebuild(topic))
    app.close()
    cleanup(backend, name, env)
    return result


def measure_rebuild(topic: str) -> dict[str, Any]:
    """How fast a fresh index is rebuilt by reading the whole topic."""
    from store.index import AggregateIndex, index_file
    from store.reader import LedgerReader, RecordCache
    from store.writer import catch_up

    with tempfile.TemporaryDirectory() as directory:
        file = index_file(Path(directory), "rebuild")
        index = AggregateIndex(file.path, synced=file.synced)
        reader = LedgerReader(
            load_settings().kafka_connection(KAFKA_BOOTSTRAP), topic, RecordCache(0)
        )
        started = time.perf_counter()
        catch_up(index, reader)
        elapsed = time.perf_counter() - started
        count = index.count()
        reader.close()
        index.close()
    return {"rebuild_records": count, "rebuild_records_per_s": round(count / elapsed)}


def cleanup(backend: str, name: str, env: dict[str, str]) -> None:
    if backend == "kafka":
        admin = load_settings().kafka_connection(KAFKA_BOOTSTRAP).admin()
        topic = env["KAFKA_LEDGER_TOPIC"]
        admin.delete_topics([t for t in (topic, f"{topic}.snapshots") if t in admin.list_topics()])
        admin.close()
    else:
        import psycopg

        with psycopg.connect(PG_DSN, autocommit=True) as connection:
            connection.execute(f"DROP TABLE IF EXISTS {name}_events")  # type: ignore[arg-type]


def index_at_scale(aggregates: int) -> dict[str, Any]:
    """Build the aggregate index for synthetic aggregates of 3 events each (no Kafka: this
    measures the index itself; the topic-read rate is measured by measure_rebuild)."""
    from store.index import AggregateIndex, index_file
    from store.records import LedgerRecord

    with tempfile.TemporaryDirectory() as directory:
        file = index_file(Path(directory), "index")
        path = file.path
        index = AggregateIndex(path, synced=file.synced)
        rss_before = rss_mib()
        ids = [str(uuid.uuid4()) for _ in range(aggregates)]
        started = time.perf_counter()
        chunk: list[tuple[int, LedgerRecord]] = []
        notification_id = 0
        fake_hash = bytes(32)
        for originator_id in ids:
            for version in (1, 2, 3):
                notification_id += 1
                record = LedgerRecord(
                    notification_id=notification_id,
                    originator_id=originator_id,
                    originator_version=version,
                    topic="bench:Meter.Read",
                    state=b"",
                    prev_hash=fake_hash,
                    hash=fake_hash,
                )
                chunk.append((notification_id, record))
            if len(chunk) >= 30_000:
                index.apply(chunk, notification_id + 1)
                chunk = []
        index.apply(chunk, notification_id + 1)
        build_s = time.perf_counter() - started

        sample = random.sample(ids, 2000)
        started = time.perf_counter()
        for originator_id in sample:
            index.last_versions([originator_id])
        version_lookup_us = (time.perf_counter() - started) / len(sample) * 1e6
        started = time.perf_counter()
        for originator_id in sample:
            index.events(originator_id)
        events_lookup_us = (time.perf_counter() - started) / len(sample) * 1e6
        started = time.perf_counter()
        for start in random.sample(range(1, notification_id), 2000):
            index.notifications(start, 10)
        notifications_lookup_us = (time.perf_counter() - started) / 2000 * 1e6
        result = {
            "index_aggregates": aggregates,
            "index_events": notification_id,
            "build_s": round(build_s, 1),
            "build_events_per_s": round(notification_id / build_s),
            "file_mib": round(sum(p.stat().st_size for p in Path(directory).iterdir()) / 2**20),
            "rss_mib": round(rss_mib(), 1),
            "rss_before_mib": round(rss_before, 1),
            "ids_list_mib_note": "rss includes the benchmark's own list of 1M id strings",
            "last_version_lookup_us": round(version_lookup_us, 1),
            "aggregate_events_lookup_us": round(events_lookup_us, 1),
            "notifications_page_lookup_us": round(notifications_lookup_us, 1),
        }
        index.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--aggregates", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--run", choices=["kafka", "postgres"], help=argparse.SUPPRESS)
    parser.add_argument(
        "--index-aggregates",
        type=int,
        default=0,
        help="instead: build the aggregate index for this many synthetic aggregates",
    )
    args = parser.parse_args()

    if args.run:
        print(json.dumps(run_backend(args.run, args.aggregates, args.threads)))
        return
    if args.index_aggregates:
        print(json.dumps(index_at_scale(args.index_aggregates), indent=2))
        return

    results = {}
    for backend in ("kafka", "postgres"):
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--run",
                backend,
                "--aggregates",
                str(args.aggregates),
                "--threads",
                str(args.threads),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        results[backend] = json.loads(child.stdout.strip().splitlines()[-1])
        result = results[backend]
        print(
            f"{backend:9} {result['events']} events in {result['seconds']}s: "
            f"{result['events_per_s']} events/s, process RSS {result['rss_mib']} MiB "
            f"({args.threads} threads)"
        )
    kafka, postgres = results["kafka"], results["postgres"]
    print(
        f"kafka group commit: {kafka['kafka_transactions']} transactions, "
        f"{kafka['events_per_transaction']} events per transaction"
    )
    print(f"ratio kafka/postgres events/s: {kafka['events_per_s'] / postgres['events_per_s']:.2f}")
    print(
        f"index rebuild from the topic: {kafka['rebuild_records']} records at "
        f"{kafka['rebuild_records_per_s']} records/s"
    )


if __name__ == "__main__":
    main()
