"""Projection throughput against a bare Kafka consumer of the same ledger, and query latency.

Builds a Kafka ledger of about N events from realistic traffic (demo.traffic) through the
real application, then in the same run:
  1. a bare read_committed KafkaConsumer reads the ledger topic from offset 0 (the ceiling);
  2. the projector rebuilds payment history + refund status (PostgreSQL) and analytics
     (DuckDB) from scratch through the store's recorder, with a fresh aggregate index;
  3. history and refund queries at that size, p50/p99.

    .venv/bin/python bench/projections_bench.py --events 20000
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bootstrap import bootstrap
from bootstrap.settings import Settings, load_settings
from consumers.contract import parse_message
from consumers.translate import to_command
from demo.traffic import TrafficShape, generate
from domain.application import BillingApplication
from projections.analytics import Analytics
from projections.databases.duckdb import DuckDatabase
from projections.databases.postgres import PostgresDatabase
from projections.payment_history import HistoryFilter, PaymentHistory, query_history
from projections.refund_status import REFUND_STATUSES, RefundStatusView, query_refunds
from projections.runner import Projector


def build_ledger(settings: Settings, events: int) -> int:
    app = BillingApplication(env=bootstrap(settings).ledger.environment())
    days = 1
    stored = 0
    while stored < events:
        shape = TrafficShape(days=1, start=TrafficShape().start.replace(day=1 + (days - 1) % 28))
        messages = generate(seed=days, shape=shape)
        if days > 1:  # tariffs come once; later days' ids must not collide
            messages = [m for m in messages if m["type"] != "tariff.published"]
        for message in messages:
            for key in ("event_id", "session_id", "payment_id", "refund_id"):
                if key in message:
                    message[key] = f"d{days}-{message[key]}"
        commands = [to_command(parse_message(json.dumps(m).encode())) for m in messages]
        for start in range(0, len(commands), 500):
            app.handle_batch(commands[start : start + 500])
        stored = app.recorder.max_notification_id() or 0
        days += 1
    app.close()
    return stored


def bare_consume(bootstrap: str, topic: str) -> tuple[int, float]:
    from kafka import TopicPartition

    consumer = (
        load_settings()
        .kafka_connection(bootstrap)
        .consumer(
            isolation_level="read_committed",
            enable_auto_commit=False,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
        )
    )
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    started = time.perf_counter()
    consumer.seek_to_beginning(partition)
    end = consumer.end_offsets([partition])[partition]
    records = 0
    while consumer.position(partition) < end:
        for batch in consumer.poll(timeout_ms=1000).values():
            records += len(batch)
    elapsed = time.perf_counter() - started
    consumer.close()
    return records, elapsed


def latencies(action: Callable[[], Any], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument(
        "--pg-dsn", default="postgresql://evledger:evledger@127.0.0.1:5433/evledger"
    )
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="evledger-bench-"))
    prefix = f"bench.projections.{uuid.uuid4().hex[:8]}"
    writer_settings = Settings(
        kafka_bootstrap=args.bootstrap, topic_prefix=prefix, data_dir=work / "writer"
    )
    started = time.perf_counter()
    stored = build_ledger(writer_settings, args.events)
    print(
        f"ledger: {stored} events on {writer_settings.ledger_topic} "
        f"({time.perf_counter() - started:.1f}s to write)"
    )

    records, bare_s = bare_consume(args.bootstrap, writer_settings.ledger_topic)
    bare_rate = records / bare_s
    print(f"bare read_committed consume: {records} records in {bare_s:.2f}s = {bare_rate:,.0f}/s")

    # The projector as a separate process would be: its own data dir, so its own index.
    reader_settings = Settings(
        kafka_bootstrap=args.bootstrap, topic_prefix=prefix, data_dir=work / "projector"
    )
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    pg = PostgresDatabase(args.pg_dsn, schema=schema)
    duck = DuckDatabase(work / "analytics.duckdb")
    models = [PaymentHistory(pg), RefundStatusView(pg), Analytics(duck)]
    with bootstrap(reader_settings).ledger_source() as source:
        projector = Projector(source, models, batch_size=args.batch_size)
        projector.create()
        started, cpu_started = time.perf_counter(), time.process_time()
        progress = projector.run_until_idle()
        projection_s = time.perf_counter() - started
        # This process's CPU (every thread): less at the mercy of a busy machine than the clock.
        projection_cpu_s = time.process_time() - cpu_started
    assert all(p.position == stored for p in progress.values()), progress
    rate = stored / projection_s
    print(
        f"projection (payment history + refund status in PostgreSQL, analytics in DuckDB, "
        f"batch {args.batch_size}): {stored} events in {projection_s:.2f}s = {rate:,.0f}/s"
        f" ({projection_cpu_s:.2f}s CPU in this process)"
    )
    print(f"ratio projector / bare consume: {rate / bare_rate:.3f}")

    customers = [
        r["customer_id"]
        for r in pg.execute(
            "SELECT DISTINCT customer_id FROM payment_history WHERE customer_id IS NOT NULL"
        )
    ]
    stations = [
        r["station_id"]
        for r in pg.execute(
            "SELECT DISTINCT station_id FROM payment_history WHERE station_id IS NOT NULL"
        )
    ]
    payments = pg.execute("SELECT COUNT(*) AS n FROM payment_history")[0]["n"]
    refunds = pg.execute("SELECT COUNT(*) AS n FROM refund_status")[0]["n"]
    rng = random.Random(1)
    print(
        f"read models: {payments} payments, {refunds} refunds, {len(customers)} customers, "
        f"{len(stations)} stations"
    )
    for label, action in (
        (
            "history --customer (50 rows)",
            lambda: query_history(pg, HistoryFilter(customer_id=rng.choice(customers))),
        ),
        (
            "history --station (50 rows)",
            lambda: query_history(pg, HistoryFilter(station_id=rng.choice(stations))),
        ),
        ("refunds --status", lambda: query_refunds(pg, status=rng.choice(REFUND_STATUSES))),
        ("refunds --customer", lambda: query_refunds(pg, customer_id=rng.choice(customers))),
    ):
        p50, p99 = latencies(action, args.queries)
        print(f"{label:32s} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")

    pg.execute(f'DROP SCHEMA "{schema}" CASCADE')
    pg.close()
    duck.close()
    delete_topics(args.bootstrap, writer_settings.ledger_topic)


def delete_topics(bootstrap: str, ledger_topic: str) -> None:

    admin = load_settings().kafka_connection(bootstrap).admin()
    existing = set(admin.list_topics())
    admin.delete_topics([t for t in (ledger_topic, f"{ledger_topic}.snapshots") if t in existing])
    admin.close()


if __name__ == "__main__":
    main()
