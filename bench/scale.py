"""Scale benchmark: the whole pipeline on N generated upstream events, each stage against a bare
Kafka baseline measured in the same run, with each stage's peak RSS.

Every stage runs as its own process, the product through the `evledger` command as an operator
runs it, the baselines through this script's `--bare-*` modes, so each one's wall time
includes its start-up, its CPU time counts its worker processes (`os.wait4` of the child
includes the children it waited for) and its peak RSS is the largest of its processes' own
peaks (each one's VmHWM; a command that forks workers is as big as its biggest process):

    publish      evledger publish FILE            (no baseline)
    ingest       evledger ingest --until-idle      vs bare-pipe: read_committed consume ->
                                                   transactional produce of the same bytes,
                                                   offsets in the transaction, same batch size
    project      evledger project --until-idle     vs bare-consume: read_committed consume of
    rebuild      evledger replay rebuild --all        the whole ledger topic, same batch size
    verify       evledger audit verify
    history / refunds queries                      (no baseline; wall time of the command)

    .venv/bin/python bench/scale.py --events 200000

Uses a fresh topic prefix, a fresh PostgreSQL database and a scratch data directory, and
removes all three at the end. Needs `scripts/services up`. `--json FILE` also writes the
figures as JSON.

To measure the rebuild again and again without ingesting anew: `--keep FILE` stops after
the projection and keeps the three, described in FILE; `--rebuild-only FILE` then runs the
bare consume and the rebuild against them (as often as wanted), `--project-only FILE` the bare
consume and the projection into a fresh database and data directory (removed after; the
ledger's aggregate index copied in, as ingest left it), and `--remove FILE` removes them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bootstrap.settings import load_settings  # noqa: E402  (after sys.path)
from store.index import index_file  # noqa: E402
from store.reader import POLL_RECORDS  # noqa: E402

BOOTSTRAP = os.environ.get("EVLEDGER_KAFKA_BOOTSTRAP") or "127.0.0.1:9092"
PG_DSN = (
    os.environ.get("EVLEDGER_PG_DSN") or "postgresql://evledger:evledger@127.0.0.1:5433/evledger"
)
EVLEDGER = str(Path(sys.executable).with_name("evledger"))
INGEST_BATCH = 500
# Records per Kafka poll of the projector's and the rebuild's reads; their transactions span
# several polls (projections/batch_size.py).
LEDGER_BATCH = POLL_RECORDS


@dataclass
class Stage:
    """One measured process."""

    name: str
    events: int
    seconds: float
    peak_rss_mib: float
    baseline: str | None = None
    cpu_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def cpu_rate(self) -> float:
        """Events per CPU second (user + system, all threads): per core, and far less
        swayed than wall time by other work on a shared machine."""
        return self.events / self.cpu_seconds if self.cpu_seconds else 0.0


@dataclass
class Measured:
    seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    stdout: str


def stage_of(name: str, events: int, run: Measured, baseline: str | None = None) -> Stage:
    return Stage(name, events, run.seconds, run.peak_rss_mib, baseline, run.cpu_seconds)


def run_measured(argv: list[str], env: dict[str, str], what: str) -> Measured:
    """Run one process to its end; its wall time, CPU time and peak RSS. A failure stops
    the bench.

    The peak is the largest VmHWM of the child and its descendants, read while they run
    (each process's own: the kernel's ru_maxrss of a child also counts the pages it shared
    with this (large) process before its exec)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=err, cwd=ROOT)
        peak_kib = 0
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            peak_kib = max(peak_kib, *map(high_water_kib, process_tree(process.pid)))
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        raise SystemExit(
            f"{what} failed with exit {process.returncode}:\n{stdout[-2000:]}\n{stderr[-4000:]}"
        )
    return Measured(seconds, usage.ru_utime + usage.ru_stime, peak_kib / 1024, stdout)


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (those alive now)."""
    found, index = [pid], 0
    while index < len(found):
        try:
            tasks = Path(f"/proc/{found[index]}/task").iterdir()
            for task in tasks:
                found.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:
            pass
        index += 1
    return found


def high_water_kib(pid: int) -> int:
    """The process's peak resident set so far (0 once it has exited)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# --- the bare baselines (run as child processes of this script) ---------------------------


def bare_pipe(source: str, target: str, expected: int, batch: int) -> None:
    """Kafka's consume -> transactional produce with no work in it: the ingest baseline."""
    from kafka import TopicPartition
    from kafka.structs import OffsetAndMetadata

    from store.admin import TopicSpec, ensure_topic

    ensure_topic(load_settings().kafka_connection(BOOTSTRAP), TopicSpec(target))
    consumer = (
        load_settings()
        .kafka_connection(BOOTSTRAP)
        .consumer(
            source,
            group_id=f"{target}.group",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=batch,
        )
    )
    producer = (
        load_settings()
        .kafka_connection(BOOTSTRAP)
        .producer(transactional_id=f"{target}.tx", acks="all")
    )
    producer.init_transactions()
    copied = 0
    while copied < expected:
        polled = consumer.poll(timeout_ms=500, max_records=batch)
        if not polled:
            continue
        producer.begin_transaction()
        offsets = {}
        for partition, records in polled.items():
            for record in records:
                producer.send(target, key=record.key, value=record.value, headers=record.headers)
                copied += 1
            offsets[TopicPartition(partition.topic, partition.partition)] = OffsetAndMetadata(
                records[-1].offset + 1, "", -1
            )
        producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
        producer.commit_transaction()
    consumer.close()
    producer.close()
    print(copied)


def bare_consume(topic: str, batch: int) -> None:
    """A read_committed consume of a whole topic: the projection, rebuild and verify baseline."""
    from kafka import TopicPartition

    consumer = (
        load_settings()
        .kafka_connection(BOOTSTRAP)
        .consumer(
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            max_poll_records=batch,
        )
    )
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    ends = consumer.end_offsets(partitions)
    read = 0
    while any(consumer.position(p) < ends[p] for p in partitions):
        for records in consumer.poll(timeout_ms=500, max_records=batch).values():
            read += len(records)
    consumer.close()
    print(read)


# --- the run ------------------------------------------------------------------------------


def traffic(messages: int, path: Path) -> int:
    """Write exactly `messages` generated upstream messages to path, a line each: the first
    ones of a traffic of as many days as it takes, generated once and streamed."""
    from demo.traffic import TrafficShape, stream

    shape = TrafficShape(stations=40, customers=max(200, messages // 20), days=UNBOUNDED_DAYS)
    written = 0
    with path.open("w") as file:
        for message in itertools.islice(stream(seed=3, shape=shape), messages):
            file.write(json.dumps(message, separators=(",", ":")) + "\n")
            written += 1
    if written != messages:
        raise SystemExit(f"the traffic ran out at {written:,} of {messages:,} messages")
    return messages


# Far more days than any run needs: the stream is cut at the messages asked for.
UNBOUNDED_DAYS = 100_000


def new_database() -> str:
    """A new PostgreSQL database's DSN."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"bench_scale_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_DSN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return make_conninfo("", **{**conninfo_to_dict(PG_DSN), "dbname": name})


@contextmanager
def fresh_database() -> Iterator[str]:
    from psycopg.conninfo import conninfo_to_dict

    dsn = new_database()
    try:
        yield dsn
    finally:
        from projections.databases.postgres import drop_database

        drop_database(PG_DSN, str(conninfo_to_dict(dsn)["dbname"]))


@contextmanager
def topics_removed_after(prefix: str) -> Iterator[None]:
    try:
        yield
    finally:
        admin = load_settings().kafka_connection(BOOTSTRAP).admin()
        try:
            mine = [t for t in admin.list_topics() if t.startswith(prefix)]
            if mine:
                admin.delete_topics(mine)
        finally:
            admin.close()


def ledger_events(dsn: str) -> int:
    """The lowest position the projector recorded in PostgreSQL: the events projected."""
    import psycopg

    with psycopg.connect(dsn) as connection:
        rows = connection.execute("SELECT min(notification_id) FROM projection_tracking").fetchall()
    return int(rows[0][0] or 0)


def pick_query_ids(path: Path) -> tuple[str, str]:
    """A customer and a station that appear in the traffic."""
    with path.open() as lines:
        for line in lines:
            message = json.loads(line)
            if message["type"] == "session.started":
                return str(message["customer_id"]), str(message["station_id"])
    raise SystemExit("the traffic has no session")


@dataclass
class Kept:
    """A run's topic prefix, PostgreSQL database and scratch directory, kept by ``--keep``."""

    prefix: str
    dsn: str
    scratch: str

    def env(self) -> dict[str, str]:
        """The environment of the `evledger` commands run against them."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("EVLEDGER_")}
        env.update(
            EVLEDGER_KAFKA_BOOTSTRAP=BOOTSTRAP,
            EVLEDGER_PG_DSN=self.dsn,
            EVLEDGER_TOPIC_PREFIX=self.prefix,
            EVLEDGER_DATA_DIR=str(Path(self.scratch) / "data"),
        )
        return env

    @staticmethod
    def load(path: Path) -> Kept:
        return Kept(**json.loads(path.read_text()))


class Reporter:
    """The stages measured so far, each printed as it is added."""

    def __init__(self) -> None:
        self.stages: list[Stage] = []

    def __call__(self, stage: Stage) -> None:
        self.stages.append(stage)
        print(format_stage(stage, self.stages), flush=True)


def measure(events: int, keep: Path | None = None) -> list[Stage]:
    prefix = f"bench-scale-{uuid.uuid4().hex[:8]}"
    me = [sys.executable, str(Path(__file__).resolve())]
    report = Reporter()
    stages = report.stages

    with ExitStack() as cleanup:
        scratch = tempfile.mkdtemp(prefix="evledger-scale-")
        if keep is None:
            cleanup.callback(shutil.rmtree, scratch, ignore_errors=True)
            dsn = cleanup.enter_context(fresh_database())
            cleanup.enter_context(topics_removed_after(prefix))
        else:
            dsn = new_database()
        kept = Kept(prefix, dsn, scratch)
        upstream = Path(scratch) / "upstream.jsonl"
        messages = traffic(events, upstream)
        customer, station = pick_query_ids(upstream)
        print(f"{messages:,} upstream messages, topic prefix {prefix}", flush=True)
        env = kept.env()
        ingest_topic, ledger_topic = f"{prefix}.ingest", f"{prefix}.ledger"

        run = run_measured([EVLEDGER, "publish", str(upstream)], env, "publish")
        report(stage_of("publish", messages, run))

        argv = [*me, "--bare-pipe", ingest_topic, f"{prefix}.bare-copy", str(messages)]
        run = run_measured(argv, env, "bare pipe")
        report(stage_of("bare-pipe", messages, run))
        argv = [EVLEDGER, "ingest", "--until-idle", "--batch-size", str(INGEST_BATCH)]
        run = run_measured([*argv, "--format", "json"], env, "ingest")
        counters = json.loads(run.stdout[run.stdout.index("[") :])[0]
        if counters["consumed"] != messages:
            raise SystemExit(f"ingest consumed {counters['consumed']} of {messages}")
        report(stage_of("ingest", messages, run, "bare-pipe"))

        run = run_measured([*me, "--bare-consume", ledger_topic], env, "bare consume")
        ledger = int(run.stdout.split()[-1])
        report(stage_of("bare-consume", ledger, run))
        run = run_measured([EVLEDGER, "project", "--until-idle"], env, "project")
        report(stage_of("project", ledger, run, "bare-consume"))
        projected = ledger_events(dsn)
        if projected != ledger:
            raise SystemExit(f"projected {projected} events of a ledger of {ledger} records")
        if keep is not None:
            keep.write_text(json.dumps(asdict(kept)))
            print(f"kept in {keep}: --rebuild-only {keep}, then --remove {keep}", flush=True)
            return stages

        run = run_measured(REBUILD, env, "replay rebuild")
        report(stage_of("rebuild", ledger, run, "bare-consume"))
        run = run_measured([EVLEDGER, "audit", "verify"], env, "audit verify")
        report(stage_of("verify", ledger, run, "bare-consume"))

        queries = {
            "history-customer": ["history", "--customer", customer],
            "history-station": ["history", "--station", station],
            "refunds-requested": ["refunds", "--status", "requested"],
        }
        for name, query in queries.items():
            run = run_measured([EVLEDGER, *query, "--format", "json"], env, name)
            if not json.loads(run.stdout) and name.startswith("history"):
                raise SystemExit(f"{name} returned nothing")
            report(stage_of(name, 1, run))
    return stages


REBUILD = [EVLEDGER, "replay", "rebuild", "--projection", "all", "--no-progress"]


def kept_bare_consume(kept: Kept, report: Reporter) -> int:
    """The bare consume of a kept run's ledger, reported; the ledger's events."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--bare-consume"]
    run = run_measured([*argv, f"{kept.prefix}.ledger"], kept.env(), "bare consume")
    ledger = int(run.stdout.split()[-1])
    report(stage_of("bare-consume", ledger, run))
    return ledger


def rebuild_only(path: Path) -> list[Stage]:
    """The bare consume and the rebuild against a run kept by ``--keep``."""
    kept = Kept.load(path)
    report = Reporter()
    ledger = kept_bare_consume(kept, report)
    run = run_measured(REBUILD, kept.env(), "replay rebuild")
    report(stage_of("rebuild", ledger, run, "bare-consume"))
    return report.stages


def project_only(path: Path) -> list[Stage]:
    """The bare consume and the projection of a run kept by ``--keep``, into a fresh
    database and data directory (removed after), so that it can run again and again."""
    kept = Kept.load(path)
    report = Reporter()
    ledger = kept_bare_consume(kept, report)
    with fresh_database() as dsn, tempfile.TemporaryDirectory(prefix="evledger-scale-") as data:
        # The ledger's aggregate index as ingest left it, as in the whole run: a projector
        # that found none would first index the whole ledger, which is not projecting.
        index = Path(kept.scratch) / "data" / "index"
        if index.is_dir():
            shutil.copytree(index, Path(data) / "index")
            if not index_file(Path(data) / "index", f"{kept.prefix}.ledger").path.exists():
                print(
                    "the machine restarted since this run was kept: its ledger index is of an "
                    "earlier boot, so the projection measured indexes the whole ledger first",
                    file=sys.stderr,
                )
        env = {**kept.env(), "EVLEDGER_PG_DSN": dsn, "EVLEDGER_DATA_DIR": data}
        run = run_measured([EVLEDGER, "project", "--until-idle"], env, "project")
        report(stage_of("project", ledger, run, "bare-consume"))
        projected = ledger_events(dsn)
    if projected != ledger:
        raise SystemExit(f"projected {projected} events of a ledger of {ledger} records")
    return report.stages


def remove_kept(path: Path) -> None:
    """Remove what ``--keep`` kept, then its description."""
    from psycopg.conninfo import conninfo_to_dict

    kept = Kept.load(path)
    with ExitStack() as cleanup:
        cleanup.callback(path.unlink)
        cleanup.callback(shutil.rmtree, kept.scratch, ignore_errors=True)
        cleanup.enter_context(topics_removed_after(kept.prefix))
        from projections.databases.postgres import drop_database

        drop_database(PG_DSN, str(conninfo_to_dict(kept.dsn)["dbname"]))


def format_stage(stage: Stage, stages: list[Stage]) -> str:
    if stage.events == 1:
        return (
            f"{stage.name:<18} one query, whole command {stage.seconds * 1000:>6.0f} ms"
            f"  peak RSS {stage.peak_rss_mib:>6.0f} MiB"
        )
    line = (
        f"{stage.name:<18} {stage.events:>10,} events {stage.seconds:>8.2f} s "
        f"{stage.rate:>8,.0f} /s  {stage.cpu_rate:>8,.0f} /cpu-s  "
        f"peak RSS {stage.peak_rss_mib:>5.0f} MiB"
    )
    if stage.baseline is not None:
        base = next(s for s in stages if s.name == stage.baseline)
        line += (
            f"  ratio to {stage.baseline} {stage.rate / base.rate:.2f}"
            f" (per cpu-s {stage.cpu_rate / base.cpu_rate:.2f})"
        )
    return line


def ratios(stage: Stage, stages: list[Stage]) -> dict[str, float]:
    if stage.baseline is None:
        return {}
    base = next(s for s in stages if s.name == stage.baseline)
    return {"ratio": stage.rate / base.rate, "cpu_ratio": stage.cpu_rate / base.cpu_rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="upstream messages")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--bare-pipe", nargs=3, metavar=("SOURCE", "TARGET", "N"))
    parser.add_argument("--bare-consume", metavar="TOPIC")
    parser.add_argument("--keep", type=Path, metavar="FILE", help="stop after project, keep")
    parser.add_argument("--rebuild-only", type=Path, metavar="FILE", help="rebuild a kept run")
    parser.add_argument("--project-only", type=Path, metavar="FILE", help="project a kept run")
    parser.add_argument("--remove", type=Path, metavar="FILE", help="remove a kept run")
    args = parser.parse_args()
    if args.bare_pipe:
        source, target, expected = args.bare_pipe
        bare_pipe(source, target, int(expected), INGEST_BATCH)
        return
    if args.bare_consume:
        bare_consume(args.bare_consume, LEDGER_BATCH)
        return
    if shutil.which(EVLEDGER) is None:
        raise SystemExit(f"no evledger command at {EVLEDGER}: run `make venv` first")
    if args.remove:
        remove_kept(args.remove)
        return
    if args.rebuild_only:
        stages = rebuild_only(args.rebuild_only)
    elif args.project_only:
        stages = project_only(args.project_only)
    else:
        stages = measure(args.events, args.keep)
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {**asdict(stage), "rate": stage.rate, "cpu_rate": stage.cpu_rate}
                    | ratios(stage, stages)
                    for stage in stages
                ],
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
