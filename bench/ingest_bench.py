"""Benchmark: ingest (validate, domain, ledger) against a bare kafka-python pass-through.

Both read the same N upstream messages from the same ingest topic, in the same run, with
the same batch size. The bare pass-through is Kafka's own exactly-once pattern with no
work in it: a read_committed consumer and a transactional producer that copies each batch
to another topic and commits its offsets in the transaction. Ingest does everything the
product does: parse and validate, apply through the domain, write the ledger (several
events per message, in its own fenced transaction), then dead letters + offsets.

    .venv/bin/python bench/ingest_bench.py --messages 20000 --repeats 3

Needs `scripts/services up`. Prints each repeat, then the medians and their ratio, per wall
second and per CPU second (this process, all threads: far less swayed than wall time by
other work on a shared machine), and ingest's CPU per message by thread (main: contract,
domain, events; writer: chain, records; writer network: the producer's sends; consumer:
fetches; with a second core the writer runs in a process of its own, "writer process", whose
CPU counts in the per-CPU rates, and "writer answers" is this process's share of it).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bootstrap import Root, bootstrap
from bootstrap.settings import Settings, load_settings
from consumers.ingest import IngestConfig, KafkaIngest, ShardTask, StopFlag
from consumers.producer import publish_file
from demo.traffic import TrafficShape, generate
from store.admin import TopicSpec, ensure_topic

BOOTSTRAP = os.environ.get("EVLEDGER_KAFKA_BOOTSTRAP") or "127.0.0.1:9092"
KAFKA = load_settings().kafka_connection(BOOTSTRAP)
BATCH = 500


def traffic(messages: int) -> list[dict[str, Any]]:
    """At least `messages` upstream messages, cut to exactly that many."""
    days = 1
    while True:
        generated = generate(seed=3, shape=TrafficShape(stations=12, customers=2000, days=days))
        if len(generated) >= messages:
            return generated[:messages]
        days = days * 2


class Rate:
    """Messages per wall second and per CPU second of one measured run."""

    def __init__(self, messages: int, wall_s: float, cpu_s: float) -> None:
        self.wall = messages / wall_s
        self.cpu = messages / cpu_s


def bare_pass_through(source: str, target: str, expected: int) -> Rate:
    from kafka import TopicPartition
    from kafka.structs import OffsetAndMetadata

    consumer = KAFKA.consumer(
        source,
        group_id=f"{target}.group",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=BATCH,
    )
    producer = KAFKA.producer(transactional_id=f"{target}.tx", acks="all")
    producer.init_transactions()
    copied = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    while copied < expected:
        polled = consumer.poll(timeout_ms=500, max_records=BATCH)
        if not polled:
            continue
        producer.begin_transaction()
        offsets = {}
        for partition, records in polled.items():
            for record in records:
                producer.send(target, key=record.key, value=record.value)
                copied += 1
            offsets[TopicPartition(partition.topic, partition.partition)] = OffsetAndMetadata(
                records[-1].offset + 1, "", -1
            )
        producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
        producer.commit_transaction()
    rate = Rate(copied, time.perf_counter() - started, time.process_time() - cpu_started)
    consumer.close()
    producer.close()
    return rate


class _OneShard:
    """The one shard's task, its writer started before the consumer joins the group (as
    `evledger ingest` does)."""

    def __init__(self, root: Root) -> None:
        self.root = root

    def open(self, shard: int) -> ShardTask:
        application = self.root.application(shard)
        writer = self.root.ledger.kafka_writer(application)
        writer.start_writing()
        return ShardTask(shard, application, writer)

    def close(self, shard: int) -> None:
        self.root.close_shard(shard)


THREAD_ROLES = (
    ("writer network", "writer-network-thread"),
    ("writer answers", "ledger-writer-answers-"),
    ("writer", "ledger-writer-"),
    ("consumer", "ingest-consumer"),
    ("main", "MainThread"),
)


def thread_cpu() -> dict[str, float]:
    """CPU seconds of this process's threads so far, summed by role (THREAD_ROLES), and of
    its ledger writer process (store/writer_process.py), where there is one."""
    seconds: dict[str, float] = {}
    for child in multiprocessing.active_children():
        if child.name.startswith("evledger-ledger-writer-") and child.pid is not None:
            seconds["writer process"] = seconds.get("writer process", 0.0) + process_cpu(child.pid)
    for thread in threading.enumerate():
        role = next((r for r, part in THREAD_ROLES if part in thread.name), "other")
        if thread.ident is None:
            continue
        try:
            clock = time.pthread_getcpuclockid(thread.ident)
            seconds[role] = seconds.get(role, 0.0) + time.clock_gettime(clock)
        except OSError:  # the thread ended meanwhile
            continue
    return seconds


def cpu_seconds(threads: dict[str, float]) -> float:
    """This process's CPU seconds so far and its ledger writer process's."""
    return time.process_time() + threads.get("writer process", 0.0)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux's /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:  # it ended meanwhile
        return 0.0
    # utime and stime are the 14th and 15th fields; the split starts at the 3rd.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ingest(
    prefix: str, source: str, expected: int, data_dir: Path
) -> tuple[Rate, int, dict[str, float]]:
    settings = Settings(kafka_bootstrap=BOOTSTRAP, topic_prefix=prefix, data_dir=data_dir)
    ensure_topic(KAFKA, TopicSpec(settings.dead_letter_topic))
    root = bootstrap(settings)
    application = root.application()
    config = IngestConfig(
        connection=KAFKA,
        ingest_topic=source,
        dead_letter_topic=settings.dead_letter_topic,
        group_id=f"{prefix}.ingest",
        instance_id=f"{prefix}.ingest.consumer",
        batch_size=BATCH,
    )
    consumer = KafkaIngest(_OneShard(root), config)
    threads_before = thread_cpu()
    started, cpu_started = time.perf_counter(), cpu_seconds(threads_before)
    counters = consumer.run(StopFlag(), until_idle=True)
    threads = thread_cpu()
    rate = Rate(
        counters.consumed, time.perf_counter() - started, cpu_seconds(threads) - cpu_started
    )
    per_message = {
        role: (seconds - threads_before.get(role, 0.0)) / counters.consumed * 1e6
        for role, seconds in threads.items()
    }
    consumer.close()
    events = application.recorder.max_notification_id() or 0
    root.close()
    assert counters.consumed == expected, counters
    return rate, events, per_message


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    messages = traffic(args.messages)
    run = uuid.uuid4().hex[:8]
    source = f"bench-{run}.upstream"
    ensure_topic(KAFKA, TopicSpec(source))
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "upstream.jsonl"
        path.write_text("".join(json.dumps(m) + "\n" for m in messages))
        publish_file(path, KAFKA, source)
        print(f"{len(messages)} upstream messages on {source}, batches of {BATCH}")
        bare_rates: list[Rate] = []
        ingest_rates: list[Rate] = []
        thread_us: dict[str, list[float]] = {}
        for repeat in range(args.repeats):
            target = f"bench-{run}.copy{repeat}"
            ensure_topic(KAFKA, TopicSpec(target))
            bare = bare_pass_through(source, target, len(messages))
            rate, events, per_message = ingest(
                f"bench-{run}-{repeat}", source, len(messages), Path(scratch) / f"data{repeat}"
            )
            bare_rates.append(bare)
            ingest_rates.append(rate)
            for role, us in per_message.items():
                thread_us.setdefault(role, []).append(us)
            print(
                f"repeat {repeat + 1}: bare pass-through {bare.wall:,.0f} msg/s "
                f"({bare.cpu:,.0f} /cpu-s), ingest {rate.wall:,.0f} msg/s "
                f"({rate.cpu:,.0f} /cpu-s, {events:,} ledger events), "
                f"ratio {rate.wall / bare.wall:.2f} (per cpu-s {rate.cpu / bare.cpu:.2f})"
            )
    for unit, of in (("msg/s", lambda r: r.wall), ("msg/cpu-s", lambda r: r.cpu)):
        bare_median = statistics.median(of(r) for r in bare_rates)
        ingest_median = statistics.median(of(r) for r in ingest_rates)
        print(
            f"median: bare {bare_median:,.0f} {unit}, ingest {ingest_median:,.0f} {unit}, "
            f"ingest/bare = {ingest_median / bare_median:.2f}"
        )
    roles = sorted(thread_us, key=lambda role: -statistics.median(thread_us[role]))
    print(
        "median ingest CPU per message: "
        + ", ".join(f"{role} {statistics.median(thread_us[role]):.0f} us" for role in roles)
    )


if __name__ == "__main__":
    main()
