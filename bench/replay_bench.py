"""Rebuild throughput: `evledger replay rebuild --projection all` against a bare Kafka consumer of
the same ledger and against the live projector's own first build, in the same run.

Builds a Kafka ledger of about N events from realistic traffic through the real
application, projects it live (PostgreSQL views + DuckDB analytics), then rebuilds every
read model beside the live ones, compares checksums and swaps.

    .venv/bin/python bench/replay_bench.py --events 20000

Needs `scripts/services up`. Cleans up its schema, files and topics.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from projections_bench import bare_consume, build_ledger, delete_topics

from bootstrap import bootstrap
from bootstrap.settings import Settings
from projections.databases.postgres import drop_schema
from replay.rebuild import rebuild


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument(
        "--pg-dsn", default="postgresql://evledger:evledger@127.0.0.1:5433/evledger"
    )
    parser.add_argument("--batch-size", type=int, default=10_000)
    args = parser.parse_args()

    import psycopg
    from psycopg.conninfo import make_conninfo

    schema = f"bench_replay_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.pg_dsn, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    with tempfile.TemporaryDirectory() as directory:
        settings = Settings(
            kafka_bootstrap=args.bootstrap,
            pg_dsn=make_conninfo(args.pg_dsn, options=f"-c search_path={schema}"),
            topic_prefix=f"bench.replay.{uuid.uuid4().hex[:8]}",
            data_dir=Path(directory),
        )
        try:
            events = build_ledger(settings, args.events)
            print(f"ledger: {events} events in {settings.ledger_topic}")
            records, bare_s = bare_consume(args.bootstrap, settings.ledger_topic)
            print(f"bare consumer:   {records / bare_s:10,.0f} records/s ({bare_s:.2f}s)")
            started = time.perf_counter()
            with bootstrap(settings).projector(batch_size=args.batch_size) as runner:
                runner.run_until_idle()
            live_s = time.perf_counter() - started
            print(f"live projector:  {events / live_s:10,.0f} events/s ({live_s:.2f}s)")
            started = time.perf_counter()
            report = rebuild(bootstrap(settings), ["payment_history", "refund_status", "analytics"])
            total_s = time.perf_counter() - started
            assert report.all_swapped, "checksums differ"
            print(
                f"rebuild replay:  {report.events_per_second:10,.0f} events/s "
                f"({report.seconds:.2f}s for {report.events} events)"
            )
            print(
                f"rebuild total:   {events / total_s:10,.0f} events/s ({total_s:.2f}s incl. "
                "checksums of live and rebuilt, catch-up and swap)"
            )
            versus_bare = report.events_per_second / (records / bare_s)
            versus_live = report.events_per_second / (events / live_s)
            print(
                f"ratios: rebuild replay / bare consumer = {versus_bare:.2f}; "
                f"rebuild replay / live projector = {versus_live:.2f}"
            )
        finally:
            drop_schema(args.pg_dsn, schema)
            delete_topics(args.bootstrap, settings.ledger_topic)


if __name__ == "__main__":
    main()
